"""Per-image measurements of a resampled image against its source: did it keep the structure,
and did its detail change?

* ``structure_error``: mean squared difference of the two images after a Gaussian blur
  (``sigma`` pixels) — the low-frequency content. Small means the structure was kept.
* ``detail_change``: mean squared difference of what the blur removes (image minus its blur) —
  the high-frequency content. Larger means new detail.

Both are in ``[0, 1]``-pixel units squared.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` with edge replication."""
    radius = max(1, math.ceil(2.5 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def structure_and_detail(new: torch.Tensor, source: torch.Tensor, sigma: float
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(structure_error, detail_change)``, each ``(N,)``, for images in ``[0, 1]``."""
    low_new, low_src = gaussian_blur(new, sigma), gaussian_blur(source, sigma)
    structure = (low_new - low_src).pow(2).flatten(1).mean(1)
    detail = ((new - low_new) - (source - low_src)).pow(2).flatten(1).mean(1)
    return structure, detail
