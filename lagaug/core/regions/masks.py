"""Mask arithmetic and the data checks of masks.

Masks are bool tensors ``(N, H, W)``. Normal (defect-free) classes are named by the user
(``--normal-class``), declared by the data (the embedded default: ``ok``), or recognised by name.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from lagaug.core.errors import ConfigError, DataError

#: class names taken to be defect-free when neither the user nor the data says which are
NORMAL_NAMES = ("ok", "good", "normal", "defect-free", "defect_free", "no_defect", "nodefect", "pass")


def resolve_normal_classes(names: Sequence[str] | None, class_names: list[str],
                           declared: Sequence[str] | None = None) -> list[int]:
    """The indices of the normal (defect-free) classes: ``names`` (``--normal-class``; ``"none"``
    for no class), else what the data ``declared``, else the classes named like
    :data:`NORMAL_NAMES`. An unknown name lists the classes."""
    if names:
        if [n.lower() for n in names] == ["none"]:
            return []
        out = []
        for name in names:
            if name not in class_names:
                raise ConfigError(f"--normal-class {name!r} is not a class; classes are: {', '.join(class_names)}")
            out.append(class_names.index(name))
        return sorted(set(out))
    if declared:
        return sorted(class_names.index(n) for n in declared if n in class_names)
    return [i for i, n in enumerate(class_names) if n.lower() in NORMAL_NAMES]


def check_masks(parts: dict, normal: list[int], where: str) -> None:
    """A mask on an image of a normal class is a DataError naming the image (``parts``: split
    name -> ImageSet)."""
    for split, part in parts.items():
        if part is None or part.masks is None or not normal:
            continue
        on = part.masks.flatten(1).any(1) & torch.isin(part.labels, torch.tensor(normal))
        if bool(on.any()):
            i = int(torch.nonzero(on)[0])
            name = part.class_names[int(part.labels[i])]
            raise DataError(
                f"{where}: {int(on.sum())} {split} image(s) of class {name!r} have a defect mask (e.g. {part.ids[i]}); "
                f"class {name!r} is defect-free (--normal-class); clear those masks or name the normal classes "
                "with --normal-class")


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """``mask`` ``(N, H, W)`` grown by ``radius`` pixels (a square neighbourhood)."""
    if radius <= 0 or mask.numel() == 0:
        return mask.clone()
    x = mask[:, None].float()
    return F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius)[:, 0] > 0


def to_grid(mask: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """``mask`` ``(N, H, W)`` on a coarser ``shape`` grid: a cell is on when any pixel in it is."""
    if tuple(mask.shape[-2:]) == tuple(shape):
        return mask.clone()
    return F.adaptive_max_pool2d(mask[:, None].float(), shape)[:, 0] > 0


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` with edge replication (``sigma`` in pixels)."""
    if sigma <= 0:
        return x
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def feather(mask: torch.Tensor, radius: int = 1, sigma: float = 1.0) -> torch.Tensor:
    """A soft weight ``(N, 1, H, W)`` in ``[0, 1]``: 1 on ``mask`` grown by ``radius``, falling off
    over about ``2 sigma`` pixels outside it."""
    grown = dilate(mask, radius)[:, None].float()
    return torch.maximum(gaussian_blur(grown, sigma), mask[:, None].float()).clamp(0, 1)


def blend_region(made: torch.Tensor, source: torch.Tensor, mask: torch.Tensor, radius: int = 1,
                 sigma: float = 1.0) -> torch.Tensor:
    """``made`` with the ``source`` pixels under ``mask`` (grown and feathered) put back:
    ``w * source + (1 - w) * made``."""
    w = feather(mask, radius, sigma).to(made.dtype)
    return w * source.to(made.dtype) + (1 - w) * made
