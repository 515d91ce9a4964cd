"""The embedded default dataset: procedurally generated surface-inspection images.

In the spirit of the vial data of Høj & Møgelmoose (2023): grayscale close-ups of a manufactured
surface (brushed metal, ground metal or glass) under uneven light, in two classes, ``ok`` (0) and
``defect`` (1). Defects are scratches (thin straight or curved lines), cracks (jagged, branching
random walks) and chips (small dark or bright blobs at the edge of the part). Defects are rare, and
many are hard: a fifth of them are faint or tiny, and every surface, defective or not, may carry
benign marks that look defect-like (long tool streaks, dust specks, glints).

Every defect image comes with its mask (where the defect changed the surface), so the default data
shows what masks do: the region a generator must keep.

Every image is a pure function of ``(seed, split, label, index)``, so the same seed gives
bit-identical data and the unlabelled pool of ``ok`` images (:class:`SyntheticPool`) renders its
batches on demand instead of holding them. Images are drawn at twice the requested size (up to 64 px)
and averaged down, which keeps thin lines anti-aliased.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from lagaug.core.data.dataset import DataSplits, ImageSet, SquarePool

CLASS_NAMES = ["ok", "defect"]
_SPLIT_CODES = {"train": 1, "val": 2, "test": 3, "unlabeled": 4}
_SURFACES = ("brushed", "ground", "glass")
_DEFECTS = ("scratch", "crack", "chip")
HARD_SEVERITY = 0.25  # defects below this severity count as hard (faint or tiny)
HARD_SHARE = 0.2  # the share of defects that are hard


# -- drawing primitives (all coordinates in [0, 1], sizes in working pixels) ------------------------


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(y, x)`` in ``[0, 1]`` for a ``size`` x ``size`` image."""
    c = (np.arange(size, dtype=np.float64) + 0.5) / size
    return c[:, None], c[None, :]


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Zero-mean, unit-scale noise that varies smoothly over ``cells`` cells (bilinear)."""
    coarse = rng.standard_normal((cells + 1, cells + 1))
    t = np.linspace(0, cells, size, endpoint=False) + cells / (2 * size)
    i = np.minimum(t.astype(int), cells - 1)
    f = t - i
    rows = coarse[i] * (1 - f)[:, None] + coarse[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def _segments_distance(pts: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Distance (in coordinate units) from each pixel ``(y, x)`` to the polyline ``pts`` (n, 2)."""
    a, b = pts[:-1, :, None, None], pts[1:, :, None, None]
    d = b - a
    length2 = np.maximum((d**2).sum(1), 1e-12)
    t = np.clip(((y - a[:, 0]) * d[:, 0] + (x - a[:, 1]) * d[:, 1]) / length2, 0, 1)
    dist2 = (y - a[:, 0] - t * d[:, 0]) ** 2 + (x - a[:, 1] - t * d[:, 1]) ** 2
    return np.sqrt(dist2.min(0))


def _draw_polyline(img: np.ndarray, pts: np.ndarray, width_px: float, contrast: float) -> None:
    """Add a soft line of ``contrast`` along ``pts`` to ``img`` in place (only near the line)."""
    size = img.shape[0]
    pad = (3 * width_px + 2) / size
    lo = np.clip(((pts.min(0) - pad) * size).astype(int), 0, size)
    hi = np.clip(((pts.max(0) + pad) * size).astype(int) + 1, 0, size)
    if (hi <= lo).any():
        return
    y, x = _grid(size)
    y, x = y[lo[0] : hi[0]], x[:, lo[1] : hi[1]]
    dist_px = _segments_distance(pts, y, x) * size
    img[lo[0] : hi[0], lo[1] : hi[1]] += contrast * np.exp(-((dist_px / width_px) ** 2))


def _draw_blob(img, rng, centre, radii, angle, contrast, rim=0.0, rough=0.25) -> None:
    """Add an ellipse (a chip, a speck, a glint), ``rough``-edged, with an optional rim, in place."""
    y, x = _grid(img.shape[0])
    dy, dx = y - centre[0], x - centre[1]
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / radii[0]
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / radii[1]
    wobble = 1 + rough * np.sin(3 * np.arctan2(v, u) + rng.uniform(0, 2 * np.pi))
    r = np.sqrt(u**2 + v**2) / wobble
    soft = 0.12 * max(1.0, 1.5 / (radii[0] * img.shape[0]))
    inside = 0.5 * (1 - np.tanh((r - 1) / (2 * soft)))
    img += contrast * inside + rim * np.exp(-(((r - 1) / 0.15) ** 2))


# -- the surface ------------------------------------------------------------------------------------


def _surface(rng: np.random.Generator, noise: np.random.Generator, size: int) -> tuple[np.ndarray, float]:
    """A defect-free surface: base tone, lighting, texture. Returns it and the brushing angle.

    ``rng`` draws the layout (same at every size), ``noise`` the per-pixel texture.
    """
    y, x = _grid(size)
    kind = _SURFACES[rng.choice(3, p=[0.45, 0.3, 0.25])]
    brush = rng.uniform(0, np.pi)
    light = rng.uniform(0, 2 * np.pi)
    img = rng.uniform(0.35, 0.6) + rng.uniform(0.0, 0.25) * (
        (x - 0.5) * np.cos(light) + (y - 0.5) * np.sin(light)
    )
    img = img + rng.uniform(0.01, 0.05) * _smooth_noise(rng, size, 3)
    if kind == "glass" or rng.random() < 0.35:  # a specular band, as on a vial
        axis = (x - rng.uniform(0.15, 0.85)) * np.cos(brush) + (y - 0.5) * np.sin(brush)
        img = img + rng.uniform(0.05, 0.25) * np.exp(-((axis / rng.uniform(0.05, 0.2)) ** 2))
    if kind == "brushed":  # fine parallel grooves: a 1-D profile across the brushing direction
        across = (y * np.cos(brush) - x * np.sin(brush) + 1.5) / 3.0  # in [0, 1]
        n = 3 * size
        profile = noise.standard_normal(n + 1)
        profile = (profile[:-1] + profile[1:]) / 2
        grooves = profile[np.minimum((across * n).astype(int), n - 1)]
        img = img + rng.uniform(0.025, 0.06) * grooves * (1 + 0.4 * _smooth_noise(rng, size, 2))
    elif kind == "ground":  # isotropic grain
        grain = noise.standard_normal((size, size))
        grain = (grain + np.roll(grain, 1, 0) + np.roll(grain, 1, 1)) / 3
        img = img + rng.uniform(0.03, 0.06) * grain
    img = img + rng.uniform(0.008, 0.03) * noise.standard_normal((size, size))  # sensor noise
    return img, brush


def _benign_marks(img: np.ndarray, rng: np.random.Generator, brush: float) -> list[str]:
    """Add harmless defect-like marks (streaks, specks, glints) to some surfaces; name them."""
    size, marks = img.shape[0], []
    if rng.random() < 0.2:  # a long tool streak along the brushing direction, soft and wide
        c, d = rng.uniform(0.2, 0.8, 2), np.array([np.sin(brush), np.cos(brush)])
        pts = np.stack([c - 1.5 * d, c + 1.5 * d])
        width = rng.uniform(1.2, 2.5) * size / 32
        _draw_polyline(img, pts, width, rng.choice([-1, 1]) * rng.uniform(0.03, 0.1))
        marks.append("streak")
    if rng.random() < 0.2:  # dust specks anywhere
        for _ in range(rng.integers(1, 4)):
            r = rng.uniform(0.5, 1.1) / 32
            contrast = rng.choice([-1, 1]) * rng.uniform(0.05, 0.2)
            _draw_blob(img, rng, rng.uniform(0.1, 0.9, 2), (r, r), 0.0, contrast, rough=0.05)
        marks.append("specks")
    if rng.random() < 0.1:  # a short bright glint
        c, a = rng.uniform(0.15, 0.85, 2), rng.uniform(0, np.pi)
        radii = (rng.uniform(0.05, 0.12), rng.uniform(0.01, 0.02))
        _draw_blob(img, rng, c, radii, a, rng.uniform(0.06, 0.15), rough=0.0)
        marks.append("glint")
    return marks


# -- the defects ------------------------------------------------------------------------------------


def _scratch(img: np.ndarray, rng: np.random.Generator, severity: float) -> None:
    """A thin straight or gently curved line of random direction and partial length."""
    size = img.shape[0]
    length = (0.15 + 0.55 * severity) * rng.uniform(0.7, 1.3)
    start, angle = rng.uniform(0.15, 0.85, 2), rng.uniform(0, 2 * np.pi)
    d = np.array([np.sin(angle), np.cos(angle)])
    bend = rng.normal(0, 0.15) * length * np.array([d[1], -d[0]])
    t = np.linspace(0, 1, 12)[:, None]
    pts = start + t * length * d + 4 * t * (1 - t) * bend
    width = rng.uniform(0.5, 0.9) * size / 32
    sign = rng.choice([-1, 1], p=[0.4, 0.6])
    _draw_polyline(img, pts, width, sign * (0.05 + 0.4 * severity) * rng.uniform(0.8, 1.2))


def _crack(img: np.ndarray, rng: np.random.Generator, severity: float) -> None:
    """A dark, jagged random walk with a branch or two."""
    size = img.shape[0]
    steps, step = int(6 + 14 * severity), rng.uniform(0.025, 0.04)
    width = rng.uniform(0.45, 0.8) * size / 32
    contrast = -(0.06 + 0.3 * severity) * rng.uniform(0.8, 1.2)
    walks = [(rng.uniform(0.2, 0.8, 2), rng.uniform(0, 2 * np.pi), steps)]
    while walks:
        pos, heading, n = walks.pop()
        pts = [pos]
        for _ in range(n):
            heading += rng.normal(0, 0.6)
            pts.append(pts[-1] + step * np.array([np.sin(heading), np.cos(heading)]))
            if n > 4 and rng.random() < 0.08 and len(walks) < 3:
                walks.append((pts[-1], heading + rng.choice([-1, 1]) * 0.8, n // 2))
        _draw_polyline(img, np.array(pts), width, contrast)


def _chip(img: np.ndarray, rng: np.random.Generator, severity: float) -> None:
    """A small blob at the edge of the part: missing material, dark or bright, with a glinting rim."""
    edge, along = rng.integers(4), rng.uniform(0.15, 0.85)
    depth = rng.uniform(0.0, 0.08)
    centre = [(depth, along), (1 - depth, along), (along, depth), (along, 1 - depth)][edge]
    r = (0.035 + 0.1 * severity) * rng.uniform(0.8, 1.2)
    radii = (r, r * rng.uniform(0.5, 1.0))
    sign = rng.choice([-1, 1], p=[0.7, 0.3])
    contrast = sign * (0.07 + 0.4 * severity) * rng.uniform(0.8, 1.2)
    _draw_blob(img, rng, centre, radii, rng.uniform(0, np.pi), contrast, abs(contrast) * 0.4)


_DRAW = {"scratch": _scratch, "crack": _crack, "chip": _chip}


# -- images, sets, the pool -------------------------------------------------------------------------


def _rngs(seed: int, split: str, label: int, index: int) -> list[np.random.Generator]:
    """Two independent streams for one image: its layout and its pixel noise."""
    entropy = np.random.SeedSequence([seed, _SPLIT_CODES[split], label, index])
    return [np.random.default_rng(s) for s in entropy.spawn(2)]


MASK_LEVEL = 0.2  # a pixel belongs to the defect's mask where the defect changes it by this share of its peak


def render_image(image_size: int, seed: int, split: str, label: int, index: int) -> tuple[np.ndarray, dict]:
    """Render one image as ``uint8 (image_size, image_size)``, with notes on what it shows.

    ``split`` is ``"train"``, ``"val"``, ``"test"`` or ``"unlabeled"``; ``label`` 0 (ok) or 1
    (defect). The notes: ``defect`` (kind or ``None``), ``severity`` in ``[0, 1]`` (``None`` for ok;
    below :data:`HARD_SEVERITY` is faint or tiny) and ``marks`` (benign marks on the surface).
    :func:`render_mask` gives the defect's mask.
    """
    img, notes, _ = _render(image_size, seed, split, label, index)
    return img, notes


def render_mask(image_size: int, seed: int, split: str, label: int, index: int) -> np.ndarray:
    """The defect mask of :func:`render_image`'s image, bool ``(image_size, image_size)``: the pixels
    the defect changes by at least :data:`MASK_LEVEL` of its strongest change (all false for ok)."""
    return _render(image_size, seed, split, label, index)[2]


def _render(image_size: int, seed: int, split: str, label: int, index: int) -> tuple[np.ndarray, dict, np.ndarray]:
    rng, noise = _rngs(seed, split, label, index)
    factor = 2 if image_size <= 64 else 1
    size = image_size * factor
    img, brush = _surface(rng, noise, size)
    marks = _benign_marks(img, rng, brush)
    notes = {"defect": None, "severity": None, "marks": marks}
    mask = np.zeros((image_size, image_size), dtype=bool)
    if label == 1:
        kind = _DEFECTS[rng.choice(3, p=[0.4, 0.3, 0.3])]
        hard = rng.random() < HARD_SHARE
        severity = float(rng.uniform(0, HARD_SEVERITY) if hard else rng.uniform(HARD_SEVERITY, 1))
        state = rng.bit_generator.state
        _DRAW[kind](img, rng, severity)
        rng.bit_generator.state = state  # the same defect again, alone: where it lies
        layer = np.zeros_like(img)
        _DRAW[kind](layer, rng, severity)
        change = np.abs(layer)
        on = change >= MASK_LEVEL * change.max() if change.max() > 0 else change > 0
        mask = on.reshape(image_size, factor, image_size, factor).any((1, 3))
        notes.update(defect=kind, severity=severity)
    img = img.reshape(image_size, factor, image_size, factor).mean((1, 3))
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8), notes, mask


def _make_set(image_size: int, seed: int, split: str, n_ok: int, n_defect: int) -> tuple[ImageSet, list[dict]]:
    """A labelled split: ``n_ok`` ok images then ``n_defect`` defect images, and their notes."""
    images, labels, ids, notes, masks = [], [], [], [], []
    for label, count in ((0, n_ok), (1, n_defect)):
        for i in range(count):
            img, note, mask = _render(image_size, seed, split, label, i)
            images.append(img)
            labels.append(label)
            ids.append(f"default/{split}/{CLASS_NAMES[label]}/{i:05d}")
            notes.append(note)
            masks.append(mask)
    stacked = torch.from_numpy(np.stack(images)[:, None]) if images else torch.zeros(
        (0, 1, image_size, image_size), dtype=torch.uint8
    )
    stacked_masks = torch.from_numpy(np.stack(masks)) if masks else torch.zeros(
        (0, image_size, image_size), dtype=torch.bool)
    return ImageSet(stacked, torch.tensor(labels, dtype=torch.int64), list(CLASS_NAMES), ids,
                    masks=stacked_masks), notes


@dataclass
class SyntheticPool(SquarePool):
    """An :class:`~lagaug.core.data.dataset.ImagePool` of ``ok`` surfaces rendered per batch.

    Image ``i`` is rendered from ``(seed, i)`` when a batch asks for it; nothing is cached.
    ``channels=3`` repeats the gray image (to pair the pool with an RGB dataset).
    """

    size: int
    image_side: int = 32
    seed: int = 0
    n_channels: int = 1

    def __len__(self) -> int:
        return self.size

    def render(self, indices) -> torch.Tensor:
        """Images ``indices`` as float32 ``(B, C, H, W)`` in ``[0, 1]``."""
        imgs = [render_image(self.image_side, self.seed, "unlabeled", 0, int(i))[0] for i in indices]
        batch = torch.from_numpy(np.stack(imgs)[:, None]).float() / 255.0
        return batch.expand(-1, self.n_channels, -1, -1).contiguous()

    images_at = render  # the pool's random access (see ImagePool)

    def id_of(self, i: int) -> str:
        return f"pool:{int(i)}"

    def iter_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        order = torch.randperm(self.size, generator=generator)
        for start in range(0, self.size, batch_size):
            yield self.render(order[start : start + batch_size].tolist())


def make_default_splits(
    image_size: int = 32,
    seed: int = 0,
    *,
    n_unlabeled: int = 2000,
    train: tuple[int, int] = (200, 40),
    val: tuple[int, int] = (60, 15),
    test: tuple[int, int] = (300, 60),
) -> DataSplits:
    """The embedded default: train / val / test as ``(n_ok, n_defect)`` and a pool of ok images.

    Same ``seed``, same images, bit for bit. ``extra["notes"][split]`` holds, per image, what it
    shows (see :func:`render_image`); ``n_unlabeled=0`` gives no pool.
    """
    sets, notes = {}, {}
    for name, (n_ok, n_defect) in (("train", train), ("val", val), ("test", test)):
        sets[name], notes[name] = _make_set(image_size, seed, name, n_ok, n_defect)
    pool = SyntheticPool(n_unlabeled, image_size, seed) if n_unlabeled > 0 else None
    return DataSplits(
        train=sets["train"],
        val=sets["val"],
        test=sets["test"],
        unlabeled=pool,
        description=(
            f"embedded default: synthetic surface inspection, {image_size}px gray, ok/defect, "
            f"seed {seed}; train {train[0]}+{train[1]}, val {val[0]}+{val[1]}, "
            f"test {test[0]}+{test[1]}, unlabeled {n_unlabeled} ok"
        ),
        # flips and 90-degree turns of a surface close-up keep its class; "ok" surfaces carry no defect
        extra={"notes": notes, "source": "embedded default", "carved": [], "split_seed": seed,
               "orientation_invariant": True, "normal_classes": ["ok"]},
    )
