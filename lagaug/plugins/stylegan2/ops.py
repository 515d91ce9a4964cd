"""The low-level operations of StyleGAN2 in plain PyTorch (no compiled CUDA/C++ code).

The reference implementations ship custom kernels for two operations; both are small enough to
express with ordinary tensor ops, which is what we do so that a CPU machine works and nothing is
compiled at import:

* :func:`upfirdn2d` — upsample by zero insertion, pad (or crop, for negative pads), filter with a
  2-D FIR kernel (a true convolution: the kernel is flipped), downsample by keeping every
  ``down``-th sample. With the normalised ``[1, 3, 3, 1]`` kernel it is the "blur" of StyleGAN2.
* :func:`fused_leaky_relu` — add a per-channel bias, leaky ReLU with slope 0.2, multiply by
  sqrt(2) (keeps the activations' second moment roughly unchanged).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch.nn import functional as F

DEFAULT_TAPS = (1, 3, 3, 1)
LEAKY_SLOPE = 0.2
LEAKY_GAIN = math.sqrt(2.0)


def make_kernel(taps: Sequence[float] = DEFAULT_TAPS) -> torch.Tensor:
    """A 2-D FIR kernel summing to 1: the outer product of ``taps`` with itself (or ``taps``
    itself when it is already 2-D), divided by its sum."""
    k = torch.as_tensor(taps, dtype=torch.float32)
    if k.dim() == 1:
        k = torch.outer(k, k)
    return k / k.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample, FIR-filter and downsample every channel of ``x`` ``(N, C, H, W)`` on its own.

    ``pad = (before, after)`` applies to both axes, after upsampling; negative values crop. The
    output side is ``(H * up + before + after - k + 1) // down`` (rounded up), ``k`` the kernel side.
    """
    n, c, h, w = x.shape
    if up > 1:
        spread = x.new_zeros(n, c, h * up, w * up)
        spread[:, :, ::up, ::up] = x
        x = spread
    p0, p1 = int(pad[0]), int(pad[1])
    if p0 or p1:
        x = F.pad(x, [p0, p1, p0, p1])
    kh, kw = kernel.shape
    weight = torch.flip(kernel, [0, 1]).to(dtype=x.dtype, device=x.device)
    weight = weight.view(1, 1, kh, kw).expand(c, 1, kh, kw)
    return F.conv2d(x, weight, stride=down, groups=c)


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None,
                     slope: float = LEAKY_SLOPE, gain: float = LEAKY_GAIN) -> torch.Tensor:
    """``leaky_relu(x + bias, slope) * gain`` with ``bias`` broadcast over dimension 1."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.dim() - 2)))
    return F.leaky_relu(x, slope) * gain


def upsample_pads(kernel_size: int, factor: int = 2, taps: int = len(DEFAULT_TAPS)) -> tuple[int, int]:
    """Pads of the blur that follows a stride-``factor`` transposed conv of side ``kernel_size``,
    so that the output is exactly ``factor`` times the input side."""
    p = (taps - factor) - (kernel_size - 1)
    return (p + 1) // 2 + factor - 1, p // 2 + 1


def downsample_pads(kernel_size: int, factor: int = 2, taps: int = len(DEFAULT_TAPS)) -> tuple[int, int]:
    """Pads of the blur that precedes a stride-``factor`` conv of side ``kernel_size`` (no padding
    of its own), so that the output is exactly the input side divided by ``factor``."""
    p = (taps - factor) + (kernel_size - 1)
    return (p + 1) // 2, p // 2


def skip_upsample_pads(factor: int = 2, taps: int = len(DEFAULT_TAPS)) -> tuple[int, int]:
    """Pads of the plain FIR upsampler of the to-RGB skip connections (output = factor x input)."""
    p = taps - factor
    return (p + 1) // 2 + factor - 1, p // 2
