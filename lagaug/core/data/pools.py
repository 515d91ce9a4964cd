"""Unlabelled pools for generator pre-training, streamed a batch at a time: image folders,
``.npz`` arrays, and the embedded default's synthetic ``ok`` surfaces."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from lagaug.core.data.dataset import ImagePool, SquarePool
from lagaug.core.data.depth import finish as finish_depth
from lagaug.core.data.images import IMAGE_EXTENSIONS, BadImageWarning, _BadImage, _read_image, _report_bad, _resize, _stack
from lagaug.core.data.npz import _npz_images, _npz_scale, _open_npz
from lagaug.core.data.synthetic import SyntheticPool
from lagaug.core.errors import DataError

DEFAULT_POOL_SIZE = 2000


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

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, path: Path) -> np.ndarray | None:
        try:
            image = _read_image(path, self.image_side, "L" if self.n_channels == 1 else "RGB")
            return finish_depth([image], self.full_scale)[0][0]
        except _BadImage as bad:
            _report_bad(path, str(bad), self.bad_images)
            return None

    def images_at(self, indices) -> torch.Tensor:
        """Images ``indices`` as float32 ``(B, C, H, W)`` in ``[0, 1]`` (an unreadable file: a DataError)."""
        images = []
        for i in indices:
            img = self._load(self.files[int(i)])
            if img is None:
                raise DataError(f"unlabeled image {self.files[int(i)]} cannot be read")
            images.append(img)
        return _stack(images, self.n_channels).float() / 255.0

    def id_of(self, index: int) -> str:
        return f"pool:{self.files[int(index)].name}"

    def iter_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """Batches in a seeded order; unreadable files are skipped (or raise, by ``bad_images``)."""
        order = torch.randperm(len(self.files), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            images = [self._load(self.files[i]) for i in order[start : start + batch_size]]
            images = [img for img in images if img is not None]
            if images:
                yield _stack(images, self.n_channels).float() / 255.0


@dataclass
class ArrayPool(SquarePool):
    """An :class:`ImagePool` over a uint8 image array, resized a batch at a time."""

    images: np.ndarray  # uint8 (N, H, W) or (N, H, W, 3)
    image_side: int
    n_channels: int

    def __len__(self) -> int:
        return len(self.images)

    def images_at(self, indices) -> torch.Tensor:
        """Images ``indices`` as float32 ``(B, C, H, W)`` in ``[0, 1]``."""
        mode = "L" if self.n_channels == 1 else "RGB"
        batch = [np.asarray(_resize(Image.fromarray(self.images[int(i)]).convert(mode), self.image_side))
                 for i in indices]
        return _stack(batch, self.n_channels).float() / 255.0

    def id_of(self, index: int) -> str:
        return f"pool:{int(index)}"

    def iter_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        order = torch.randperm(len(self.images), generator=generator).tolist()
        mode = "L" if self.n_channels == 1 else "RGB"
        for start in range(0, len(order), batch_size):
            batch = [
                np.asarray(_resize(Image.fromarray(self.images[i]).convert(mode), self.image_side))
                for i in order[start : start + batch_size]
            ]
            yield _stack(batch, self.n_channels).float() / 255.0


def load_unlabeled(
    source: str | Path, *, image_size: int = 32, channels: int = 1, seed: int = 0, bad_images: str = "warn",
    full_scale: float | None = None,
) -> ImagePool:
    """An unlabelled pool: ``"default"`` (synthetic ok surfaces), a folder (recursive), or an ``.npz``.

    Images come out as ``channels`` channels at ``image_size``, to match the labelled data; wide
    (16-bit, float) images are scaled by ``full_scale`` (the labelled data's), when given.
    """
    if str(source) == "default":
        return SyntheticPool(DEFAULT_POOL_SIZE, image_size, seed, channels)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"unlabeled data path {path} does not exist; give an image folder, an .npz file or 'default'")
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
        return FolderPool(images, image_size, channels, bad_images, full_scale)
    if path.suffix.lower() == ".npz":
        arrays = _open_npz(path)
        key = "x" if "x" in arrays else "x_train" if "x_train" in arrays else None
        if key is None:
            have = ", ".join(sorted(arrays)) or "no arrays"
            raise DataError(f"{path} has no array 'x' or 'x_train' (it has: {have}); store the unlabeled images as x")
        scale = _npz_scale([arrays[key]])
        if full_scale:
            scale["iu"] = full_scale
        return ArrayPool(_npz_images(arrays[key], key, path, scale), image_size, channels)
    raise DataError(f"unlabeled data {path} is neither a folder nor an .npz file; give one of those or 'default'")
