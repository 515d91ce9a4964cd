"""Small building blocks shared by the VQ-VAE-2 and PixelSNAIL modules.

Nothing here draws from torch's global random state: layers are created without initialisation
(``skip_init`` or ``torch.empty``) and :func:`init_weights_` fills them from a ``torch.Generator``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def seeded(generator: torch.Generator | None) -> torch.Generator:
    """``generator``, or a fresh CPU generator seeded 0 (deterministic default initialisation)."""
    return generator if generator is not None else torch.Generator().manual_seed(0)


def _uniform_(tensor: torch.Tensor, bound: float, generator: torch.Generator) -> None:
    if tensor.is_meta:  # shape-only modules (e.g. to list a state dict's keys) skip the draw
        return
    with torch.no_grad():
        values = torch.rand(tensor.shape, generator=generator, dtype=torch.float32, device="cpu")
        tensor.copy_((values * 2 - 1) * bound)


class WNParams(nn.Module):
    """The parameters of one weight-normed conv or linear layer, under the reference's key names.

    ``weight_v`` (out, in[, kh, kw]), ``weight_g`` (out, 1[, 1, 1]) and ``bias`` (out), with
    ``W = g * v / ||v||`` (norm over every dimension but 0). ``mask`` (a non-persistent buffer, the
    shape of ``weight_v``) zeroes taps before the norm: that is how causal convs stay causal even
    when a checkpoint carries non-zero values in masked positions.
    """

    def __init__(self, out_ch: int, in_ch: int, kernel: tuple[int, int] | None = None,
                 bias: bool = True, mask: torch.Tensor | None = None):
        super().__init__()
        shape = (out_ch, in_ch, *kernel) if kernel is not None else (out_ch, in_ch)
        self.weight_g = nn.Parameter(torch.ones(out_ch, *([1] * (len(shape) - 1))))
        self.weight_v = nn.Parameter(torch.zeros(shape))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.register_buffer("mask", mask, persistent=False)

    def weight(self) -> torch.Tensor:
        """The folded weight ``g * v / ||v||`` (masked taps removed first)."""
        v = self.weight_v if self.mask is None else self.weight_v * self.mask
        norm = v.flatten(1).norm(dim=1).clamp_min(1e-12).view_as(self.weight_g)
        return self.weight_g * v / norm

    def reset_from(self, generator: torch.Generator) -> None:
        fan_in = self.weight_v[0].numel()
        bound = 1.0 / math.sqrt(fan_in)
        _uniform_(self.weight_v, bound, generator)
        with torch.no_grad():
            v = self.weight_v if self.mask is None else self.weight_v * self.mask
            self.weight_g.copy_(v.flatten(1).norm(dim=1).view_as(self.weight_g))
        if self.bias is not None:
            _uniform_(self.bias, bound, generator)


class _ELU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = torch.exp(x.clamp(max=0)).sub_(1).add_(x.clamp(min=0))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (out,) = ctx.saved_tensors
        return torch.ops.aten.elu_backward(grad, 1.0, 1.0, 1.0, True, out)


def elu(x: torch.Tensor) -> torch.Tensor:
    """``F.elu(x)`` (alpha 1). While training (a tensor that needs a gradient) it is computed as
    ``exp(min(x, 0)) - 1 + max(x, 0)``, the same values to a rounding (6e-8 in fp32), with torch's
    own ELU gradient: on CPUs where torch's ``expm1`` kernel is not vectorised (the 2-core AMD
    machine of docs/benchmarks.md) that is 2x (fp32) to 6x (bf16) faster, and the prior's ELUs were
    an eighth of its training step. Without a gradient it is ``F.elu`` itself, so inference gives
    the reference code's outputs exactly."""
    if x.requires_grad and torch.is_grad_enabled():
        return _ELU.apply(x)
    return F.elu(x)


class ELU(nn.Module):
    """:func:`elu` as a module (no parameters: state dicts are unchanged)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return elu(x)


class Dropout(nn.Module):
    """Dropout whose mask comes from ``self.generator`` (set by the trainer; drawn on the CPU).

    Without a generator it falls back to :func:`torch.nn.functional.dropout`.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0:
            return x
        if self.generator is None:
            return F.dropout(x, self.p, training=True)
        keep = torch.rand(x.shape, generator=self.generator, device="cpu") >= self.p
        return x * keep.to(device=x.device, dtype=x.dtype) / (1 - self.p)


def set_dropout_generator(module: nn.Module, generator: torch.Generator | None) -> None:
    """Make every :class:`Dropout` inside ``module`` draw its masks from ``generator``."""
    for sub in module.modules():
        if isinstance(sub, Dropout):
            sub.generator = generator


def init_weights_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """(Re-)initialise every layer of ``module`` from ``generator``, in module order.

    Torch convs / linears get torch's default scheme (uniform, bound ``1/sqrt(fan_in)``);
    modules with a ``reset_from(generator)`` method (weight-normed layers, quantizers) use it.
    """
    for sub in module.modules():
        if isinstance(sub, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(sub.weight)
            bound = 1.0 / math.sqrt(max(fan_in, 1))
            _uniform_(sub.weight, bound, generator)
            if sub.bias is not None:
                _uniform_(sub.bias, bound, generator)
        elif hasattr(sub, "reset_from"):
            sub.reset_from(generator)
    return module
