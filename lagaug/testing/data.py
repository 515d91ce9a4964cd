"""Tiny image sets that a tiny classifier learns in seconds — but not perfectly — and the ensemble
setting that does it.

Tests that compare figures (determinism, resume, arms) need classifiers whose figures can differ:
an ensemble that learns nothing reports AUC 1.0 or 0.5 whatever it is given. The images are 16x16
gray, three classes, every image a pure function of ``(seed, split, index)``:

* ``ok`` (the majority): a noisy gray surface;
* ``spot``: the same with a bright 4x4 square somewhere;
* ``line``: the same with a dark one-pixel line across it, horizontal or vertical.

:data:`TEST_ENSEMBLE` learns :func:`learnable_splits` in about a second per member (macro-F1 and
balanced accuracy far above chance, validation loss falling, the kept epoch not the first) and the
fainter :func:`learnable_npz` well but not perfectly (at 16 px test AUC about 0.94-0.97).
"""

from __future__ import annotations

from pathlib import Path

import torch

from lagaug.core.data.dataset import DataSplits, ImageSet

CLASS_NAMES = ["ok", "spot", "line"]
SPLIT_COUNTS = {"train": (40, 8, 8), "val": (10, 4, 4), "test": (30, 15, 15)}

#: Overrides of the ``cpu`` ensemble preset for test-size ensembles.
TEST_ENSEMBLE: dict = dict(members=2, epochs=10, batch_size=16, min_epoch_size=64, warmup_epochs=1,
                           lr=5e-3, aug="light")


def test_ensemble_config(**overrides):
    """The ``cpu`` preset with :data:`TEST_ENSEMBLE` and then ``overrides`` applied."""
    from lagaug.core.classifier.config import resolve_ensemble_config

    return resolve_ensemble_config("cpu", {**TEST_ENSEMBLE, **overrides}, source="test ensemble")


test_ensemble_config.__test__ = False  # not a pytest test, despite its name


def learnable_images(labels: torch.Tensor, generator: torch.Generator, size: int = 16,
                     contrast: float = 0.45) -> torch.Tensor:
    """Float images ``(N, 1, size, size)`` in ``[0, 1]`` of the classes ``labels`` (0, 1, 2); the
    spot and the line differ from the surface by ``contrast`` (its noise has s.d. 0.12)."""
    n = len(labels)
    x = 0.5 + 0.12 * torch.randn(n, 1, size, size, generator=generator)
    for i, label in enumerate(labels.tolist()):
        if label == 1:
            r, c = torch.randint(0, size - 4, (2,), generator=generator).tolist()
            x[i, :, r : r + 4, c : c + 4] += contrast
        elif label == 2:
            at = int(torch.randint(2, size - 2, (1,), generator=generator))
            if torch.rand(1, generator=generator) < 0.5:
                x[i, :, at, :] -= contrast
            else:
                x[i, :, :, at] -= contrast
    return x.clamp(0, 1)


def learnable_set(counts: int | tuple[int, ...] = SPLIT_COUNTS["train"], seed: int = 0, split: str = "train",
                  size: int = 16, contrast: float = 0.45, classes: int = 3, prefix: str | None = None) -> ImageSet:
    """``counts[c]`` images of class ``c`` (an integer: that many, shared out over ``classes``), in
    class order, drawn from ``seed`` and ``split``; ids ``PREFIX/NNNN`` (prefix: the split)."""
    if isinstance(counts, int):
        counts = tuple(counts // classes + (1 if c < counts % classes else 0) for c in range(classes))
    g = torch.Generator().manual_seed(seed * 1000 + ("train", "val", "test").index(split))
    labels = torch.cat([torch.full((k,), c) for c, k in enumerate(counts)]).long()
    images = learnable_images(labels, g, size, contrast)
    return ImageSet(images=images, labels=labels, class_names=CLASS_NAMES[: len(counts)],
                    ids=[f"{prefix or split}/{i:04d}" for i in range(len(labels))])


def learnable_splits(seed: int = 0, size: int = 16, contrast: float = 0.45, train: tuple[int, ...] | None = None,
                     val: tuple[int, ...] | None = None, test: tuple[int, ...] | None = None) -> DataSplits:
    """Train (default 40/8/8), validation (10/4/4) and test (30/15/15) sets of the classes."""
    counts = {"train": train or SPLIT_COUNTS["train"], "val": val or SPLIT_COUNTS["val"],
              "test": test or SPLIT_COUNTS["test"]}
    parts = {s: learnable_set(counts[s], seed, s, size, contrast) for s in counts}
    return DataSplits(parts["train"], parts["val"], parts["test"], description="lagaug.testing learnable set",
                      extra={"source": "lagaug.testing", "carved": [], "split_seed": seed})


def learnable_npz(path: str | Path, seed: int = 0, size: int = 16, contrast: float = 0.25,
                  counts: tuple[int, ...] = (60, 15, 15), test: tuple[int, ...] = SPLIT_COUNTS["test"]) -> Path:
    """A learnable set as an ``.npz`` that ``load_data`` reads (for CLI and loop tests): ``x_train``
    holds ``counts`` images per class (``load_data`` carves 20% of each for validation),
    ``x_test`` ``test``. Fainter than :func:`learnable_splits` (``contrast`` 0.25) so that
    :data:`TEST_ENSEMBLE` learns it well but not perfectly: at ``image_size=16`` test AUC
    0.94-0.97 and macro-F1 0.82-0.90 (at 32 px nearly perfect)."""
    import numpy as np

    train = learnable_set(counts, seed, "train", size, contrast)
    evaluation = learnable_set(test, seed, "test", size, contrast)
    np.savez(path, x_train=(train.images[:, 0]).numpy(), y_train=train.labels.numpy(),
             x_test=(evaluation.images[:, 0]).numpy(), y_test=evaluation.labels.numpy(),
             class_names=np.array(train.class_names))
    return Path(path)


DEFECT_CLASSES = ["ok", "defect"]


def defect_set(n_ok: int = 24, n_defect: int = 12, seed: int = 0, size: int = 16, split: str = "train",
               contrast: float = 0.5) -> ImageSet:
    """Surfaces with a drawn defect and its mask: class ``ok`` (a smooth, noisy surface) and
    ``defect`` (the same with a dark line, horizontal or vertical, 1 px wide and 4 to 8 px long, or
    a bright 3x3 blob, at a random place). ``masks`` mark exactly the drawn pixels."""
    g = torch.Generator().manual_seed(seed * 1000 + ("train", "val", "test", "pool").index(split))
    n = n_ok + n_defect
    ramp = torch.linspace(-0.1, 0.1, size)
    x = (0.5 + ramp.view(1, 1, size, 1) * torch.rand(n, 1, 1, 1, generator=g)
         + 0.04 * torch.randn(n, 1, size, size, generator=g))
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    for i in range(n_ok, n):
        if torch.rand(1, generator=g) < 0.5:
            length = int(torch.randint(4, 9, (1,), generator=g))
            r = int(torch.randint(1, size - 1, (1,), generator=g))
            c = int(torch.randint(0, size - length, (1,), generator=g))
            if torch.rand(1, generator=g) < 0.5:
                masks[i, r, c : c + length] = True
            else:
                masks[i, c : c + length, r] = True
            x[i, 0][masks[i]] -= contrast
        else:
            r, c = torch.randint(1, size - 4, (2,), generator=g).tolist()
            masks[i, r : r + 3, c : c + 3] = True
            x[i, 0][masks[i]] += contrast
    labels = torch.tensor([0] * n_ok + [1] * n_defect)
    return ImageSet(images=x.clamp(0, 1), labels=labels, class_names=list(DEFECT_CLASSES),
                    ids=[f"{split}/{i:04d}" for i in range(n)], masks=masks)


def defect_npz(path: str | Path, seed: int = 0, size: int = 16, train: tuple[int, int] = (40, 16),
               test: tuple[int, int] = (20, 10), pool: int = 0) -> Path:
    """:func:`defect_set` images as an ``.npz`` with masks (``m_train``, ``m_test``) and, with
    ``pool``, that many defect-free images as ``x_pool``."""
    import numpy as np

    tr = defect_set(*train, seed=seed, size=size, split="train")
    te = defect_set(*test, seed=seed, size=size, split="test")
    arrays = dict(x_train=tr.images[:, 0].numpy(), y_train=tr.labels.numpy(), m_train=tr.masks.numpy().astype(np.uint8),
                  x_test=te.images[:, 0].numpy(), y_test=te.labels.numpy(), m_test=te.masks.numpy().astype(np.uint8),
                  class_names=np.array(DEFECT_CLASSES))
    if pool:
        arrays["x_pool"] = defect_set(pool, 0, seed=seed, size=size, split="pool").images[:, 0].numpy()
    np.savez(path, **arrays)
    return Path(path)


DISK_CLASSES = ["small", "big"]


def disk_images(n: int, seed: int, size: int = 32, radius: tuple[float, float] = (0.15, 0.15),
                base: float = 0.2, contrast: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Bright disks of random place and size on a textured background: images ``(n, 1, size, size)``
    in [0, 1] and each disk's radius in pixels. ``radius``: (smallest, spread) as fractions of
    ``size``; ``base`` the background's level, ``contrast`` the disk's brightness above it."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    cy, cx = (torch.rand(2, n, 1, 1, generator=g) * 0.5 + 0.25) * size
    r = (torch.rand(n, 1, 1, generator=g) * radius[1] + radius[0]) * size
    disk = (((yy - cy) ** 2 + (xx - cx) ** 2) < r**2).float()
    texture = torch.nn.functional.avg_pool2d(torch.rand(n, 1, size, size, generator=g), 3, 1, 1)[:, 0]
    images = (base + contrast * disk + 0.3 * (texture - 0.5)).clamp(0, 1).unsqueeze(1)
    return images, r.flatten()


def disk_set(n: int, seed: int, size: int = 32, **shape) -> ImageSet:
    """:func:`disk_images` as an image set labelled ``big`` (radius over 0.22 of the side) or
    ``small``: the generators' test data (a VQ-VAE or a GAN learns it in a few dozen steps)."""
    images, r = disk_images(n, seed, size, **shape)
    return ImageSet(images=images, labels=(r > 0.22 * size).long(), class_names=list(DISK_CLASSES),
                    ids=[f"img{seed}/{i}" for i in range(n)])

