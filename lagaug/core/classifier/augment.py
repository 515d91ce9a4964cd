"""Label-preserving augmentation of the real training images, for the classifier only.

Two levels (``EnsembleConfig.aug``):

* ``light``: every image is shifted by a whole number of pixels, up to 1/16 of its side (at least
  one pixel) in each direction, the edge rows and columns repeated into the gap. Small enough that
  a digit stays that digit and a defect stays inside the image.
* ``dihedral``: ``light``, then one of the 8 symmetries of the square (4 quarter turns, each
  mirrored or not), for data whose labels do not depend on orientation.

Every image gets its own draw from the ``torch.Generator`` passed in; the same generator state
gives the same batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SHIFT_FRACTION = 1 / 16


def max_shift(side: int) -> int:
    """Largest shift in pixels for an image side of ``side`` pixels."""
    return max(1, round(side * SHIFT_FRACTION))


def random_shift(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift each image of ``(N, C, H, W)`` by its own integer offset, the edge repeated."""
    n, _, h, w = images.shape
    py, px = max_shift(h), max_shift(w)
    padded = F.pad(images, (px, px, py, py), mode="replicate")
    dy = torch.randint(0, 2 * py + 1, (n,), generator=generator).tolist()
    dx = torch.randint(0, 2 * px + 1, (n,), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


def random_dihedral(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Turn each image by its own multiple of 90 degrees, and mirror half of them (square images)."""
    n = images.shape[0]
    turns = torch.randint(0, 4, (n,), generator=generator).tolist()
    mirror = torch.randint(0, 2, (n,), generator=generator).tolist()
    out = []
    for i in range(n):
        img = torch.rot90(images[i], turns[i], dims=(-2, -1))
        out.append(img.flip(-1) if mirror[i] else img)
    return torch.stack(out)


class ClassifierAugment:
    """``transform(images, generator)`` for ``level`` ``light`` or ``dihedral`` (see the module)."""

    def __init__(self, level: str):
        if level not in ("light", "dihedral"):
            raise ValueError(f"augmentation level must be light or dihedral, got {level!r}")
        self.level = level

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if images.shape[0] == 0:
            return images
        out = random_shift(images, generator)
        if self.level == "dihedral" and images.shape[-1] == images.shape[-2]:
            out = random_dihedral(out, generator)
        return out

    def __repr__(self) -> str:
        return f"ClassifierAugment({self.level!r})"


def classifier_augment(level: str) -> ClassifierAugment | None:
    """The transform for a resolved level (``none`` gives ``None``)."""
    return None if level == "none" else ClassifierAugment(level)
