"""Unlabelled pools, streamed a batch at a time: image folders, ``.npz`` arrays (a file's ``x`` /
``x_pool`` / ``x_train``, or any array named as ``FILE.npz:KEY``), and the embedded default's
synthetic ``ok`` surfaces.

Every pool also gives random access by index (``images_at``) and a stable id per image
(``id_of``: ``"pool:17"``, or ``"pool:"`` and the file's path relative to the pool's folder), so
that what is made from a pool image can name it; :func:`indexed_batches` streams ``(indices,
images)`` in index order, and :func:`check_pool_disjoint` refuses a pool that holds test images.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from lagaug.core.data.dataset import ImagePool, SquarePool, to_uint8
from lagaug.core.data.depth import finish as finish_depth
from lagaug.core.data.images import (
    IMAGE_EXTENSIONS,
    BadImageWarning,
    _BadImage,
    _read_image,
    _report_bad,
    _resize,
    _stack,
)
from lagaug.core.data.npz import _npz_images, _npz_scale, _open_npz
from lagaug.core.data.splits import image_digests
from lagaug.core.data.synthetic import SyntheticPool
from lagaug.core.errors import DataError

DEFAULT_POOL_SIZE = 2000
POOL_KEYS = ("x", "x_pool", "x_train")  # the array an .npz pool is read from when no key is named


def files_below(folder: Path) -> list[Path]:
    """Every visible file below ``folder`` (recursive), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and visible(p, folder))


def visible(path: Path, root: Path) -> bool:
    """False for hidden files/folders (any part of the path below ``root`` starts with a dot)."""
    rel = path.relative_to(root).parts
    return not any(p.startswith(".") for p in rel) and path.name.lower() not in _IGNORED_NAMES


_IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})


@dataclass
class FolderPool(SquarePool):
    """An :class:`ImagePool` over image files, read a batch at a time (never all at once)."""

    files: list[Path]
    image_side: int
    n_channels: int
    bad_images: str = "warn"
    full_scale: float | None = None  # wide images: the labelled data's full scale, else each batch's own
    root: Path | None = None  # the pool's folder: ids are paths relative to it

    def __len__(self) -> int:
        return len(self.files)

    def id_of(self, i: int) -> str:
        path = self.files[int(i)]
        rel = path.relative_to(self.root).as_posix() if self.root is not None else path.name
        return f"pool:{rel}"

    def read_at(self, indices: Sequence[int], bad_images: str | None = None) -> tuple[list[int], torch.Tensor | None]:
        """The images ``indices`` that could be read, as float32 ``(B, C, H, W)`` in ``[0, 1]``
        (``None`` when none could), and their indices; an unreadable file is skipped with a
        warning or raises, by ``bad_images`` (default: the pool's)."""
        kept, images = [], []
        for i in indices:
            image = self._load(self.files[int(i)], bad_images or self.bad_images)
            if image is not None:
                kept.append(int(i))
                images.append(image)
        return kept, (_stack(images, self.n_channels).float() / 255.0 if images else None)

    def images_at(self, indices: Sequence[int]) -> torch.Tensor:
        """Images ``indices`` as float32 ``(B, C, H, W)`` in ``[0, 1]``; an unreadable file is a
        one-line :class:`DataError`."""
        _, images = self.read_at(indices, bad_images="error")
        return images if images is not None else torch.zeros(0, self.n_channels, self.image_side, self.image_side)

    def _load(self, path: Path, bad_images: str) -> np.ndarray | None:
        try:
            image = _read_image(path, self.image_side, "L" if self.n_channels == 1 else "RGB")
            return finish_depth([image], self.full_scale)[0][0]
        except _BadImage as bad:
            _report_bad(path, str(bad), bad_images)
            return None

    def iter_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """Batches in a seeded order; unreadable files are skipped (or raise, by ``bad_images``)."""
        order = torch.randperm(len(self.files), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            _, images = self.read_at(order[start : start + batch_size])
            if images is not None:
                yield images


@dataclass
class ArrayPool(SquarePool):
    """An :class:`ImagePool` over a uint8 image array, resized a batch at a time."""

    images: np.ndarray  # uint8 (N, H, W) or (N, H, W, 3)
    image_side: int
    n_channels: int

    def __len__(self) -> int:
        return len(self.images)

    def id_of(self, i: int) -> str:
        return f"pool:{int(i)}"

    def images_at(self, indices: Sequence[int]) -> torch.Tensor:
        """Images ``indices`` as float32 ``(B, C, H, W)`` in ``[0, 1]``, resized."""
        mode = "L" if self.n_channels == 1 else "RGB"
        batch = [np.asarray(_resize(Image.fromarray(self.images[int(i)]).convert(mode), self.image_side))
                 for i in indices]
        if not batch:
            return torch.zeros(0, self.n_channels, self.image_side, self.image_side)
        return _stack(batch, self.n_channels).float() / 255.0

    def iter_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        order = torch.randperm(len(self.images), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            yield self.images_at(order[start : start + batch_size])


def split_source(source: str | Path) -> tuple[Path, str | None]:
    """``FILE.npz:KEY`` -> ``(FILE.npz, KEY)``; anything else (a path that exists as given, a
    folder, a plain ``.npz``) -> ``(path, None)``."""
    text = str(source)
    if ":" in text and not Path(text).expanduser().exists():
        head, _, key = text.rpartition(":")
        if head.lower().endswith(".npz") and key:
            return Path(head).expanduser(), key
    return Path(text).expanduser(), None


def load_unlabeled(
    source: str | Path, *, image_size: int = 32, channels: int = 1, seed: int = 0, bad_images: str = "warn",
    full_scale: float | None = None,
) -> ImagePool:
    """An unlabelled pool: ``"default"`` (synthetic ok surfaces), a folder (recursive), an ``.npz``
    (its array ``x``, else ``x_pool``, else ``x_train``) or one array of an ``.npz`` named as
    ``FILE.npz:KEY`` (e.g. ``data.npz:x_pool``: the labelled data and its pool in one file).

    Images come out as ``channels`` channels at ``image_size``, to match the labelled data; wide
    (16-bit, float) images are scaled by ``full_scale`` (the labelled data's), when given.
    """
    if str(source) == "default":
        return SyntheticPool(DEFAULT_POOL_SIZE, image_size, seed, channels)
    path, key = split_source(source)
    if not path.exists():
        raise DataError(f"unlabeled data path {path} does not exist; give an image folder, an .npz file "
                        "(FILE.npz:KEY for one of its arrays) or 'default'")
    if path.is_dir():
        files = files_below(path)
        images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
        if not images:
            raise DataError(f"unlabeled folder {path} holds no image files (.png, .jpg, ...); add some")
        if len(images) < len(files):
            others = [p.name for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS]
            warnings.warn(
                f"ignoring {len(others)} non-image file(s) in {path} (e.g. {others[0]})", BadImageWarning, stacklevel=2
            )
        return FolderPool(images, image_size, channels, bad_images, full_scale, root=path)
    if path.suffix.lower() == ".npz":
        arrays = _open_npz(path)
        have = ", ".join(sorted(arrays)) or "no arrays"
        if key is not None and key not in arrays:
            raise DataError(f"{path} has no array {key!r} (it has: {have}); name one of them after the colon")
        key = key or next((k for k in POOL_KEYS if k in arrays), None)
        if key is None:
            raise DataError(f"{path} has no array 'x', 'x_pool' or 'x_train' (it has: {have}); store the "
                            f"unlabeled images as x, or name the array: {path}:KEY")
        scale = _npz_scale([arrays[key]])
        if full_scale:
            scale["iu"] = full_scale
        return ArrayPool(_npz_images(arrays[key], key, path, scale), image_size, channels)
    raise DataError(f"unlabeled data {path} is neither a folder nor an .npz file; give one of those or 'default'")


def indexed_batches(pool: ImagePool, batch_size: int,
                    indices: Sequence[int] | None = None) -> Iterator[tuple[list[int], torch.Tensor]]:
    """``(indices, images)`` of ``pool`` in index order, ``batch_size`` at a time (all images, or
    ``indices``); a folder pool skips (or stops at, by its ``bad_images``) unreadable files."""
    order = list(range(len(pool))) if indices is None else [int(i) for i in indices]
    read_at = getattr(pool, "read_at", None)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        kept, images = read_at(chunk) if read_at is not None else (chunk, pool.images_at(chunk))
        if kept:
            yield kept, images


def check_pool_disjoint(pool: ImagePool | None, test, batch_size: int = 512) -> None:
    """Refuse, with one line, a pool that holds an image pixel-identical to a ``test`` image (an
    :class:`~lagaug.core.data.dataset.ImageSet`), compared as the uint8 images the run sees: no
    test image may reach a generator or a pseudo-label. Streams the pool once."""
    if pool is None or not len(pool) or test is None or not len(test):
        return
    if pool.channels != test.channels or tuple(pool.image_size) != tuple(test.image_size):
        return  # images of another shape cannot be identical (usable_pool refuses such a pool anyway)
    seen = dict(zip(image_digests(test.images), test.ids))
    shared, first = 0, None
    for kept, images in indexed_batches(pool, batch_size):
        for i, digest in zip(kept, image_digests(to_uint8(images))):
            if digest in seen:
                shared += 1
                first = first or (pool.id_of(i), seen[digest])
    if shared:
        raise DataError(f"unlabeled pool: {shared} of its {len(pool)} images are pixel-identical to test images "
                        f"(e.g. {first[0]} = test image {first[1]}); a pool must not hold test images: remove them")
