"""StyleGAN2 networks in plain PyTorch: the mapping + synthesis generator and the residual
discriminator (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN").

The modules use the parameter names and nesting of rosinality/stylegan2-pytorch (see
``docs/compat.md``), so that a state dict of that implementation loads into them unchanged; the
code is our own. What the files do not store is a constructor argument here: the channel count per
resolution (``channels``), the mapping network's learning-rate multiplier (``lr_mlp``) and the
number of image channels (1 for gray data, 3 for RGB).

* **Equalised learning rate**: every weight is stored as a unit-variance draw and multiplied at run
  time by ``1 / sqrt(fan_in)`` (times ``lr_mul`` for the mapping network, whose raw weights are
  drawn with standard deviation ``1 / lr_mul``; biases are multiplied by ``lr_mul``).
* **Modulated convolutions**: a style vector scales the input channels of the conv weight
  (``modulation``, an equalised linear layer whose bias starts at 1), and the result is
  demodulated: each output channel's weight is divided by its L2 norm (plus 1e-8) so activations
  keep unit scale. We scale activations instead of building one weight per sample (mathematically
  the same, and faster on CPUs); the tests check it against the per-sample weight.
* **Noise injection** per layer with a learned per-layer strength (``noise.weight``, starts at 0).
* **Skip generator**: each resolution adds its to-RGB output to the upsampled image so far (FIR
  upsampling with the ``[1, 3, 3, 1]`` kernel); upsampling convs are a stride-2 transposed conv
  followed by the same blur.
* **Residual discriminator** with blur-then-stride-2 downsampling, the minibatch standard
  deviation feature (groups of up to 4) and a 2-layer head.

No module draws from torch's global random state: weights are created empty and filled by
:func:`init_weights_` from a ``torch.Generator`` (seed 0 when none is given).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from lagaug.plugins.stylegan2.ops import (
    downsample_pads,
    fused_leaky_relu,
    make_kernel,
    skip_upsample_pads,
    upfirdn2d,
    upsample_pads,
)

# -- initialisation ----------------------------------------------------------------------------


def _fill_normal_(tensor: torch.Tensor, generator: torch.Generator, std: float = 1.0) -> None:
    if tensor.is_meta:  # shape-only modules (e.g. to list a state dict's keys) skip the draw
        return
    with torch.no_grad():
        values = torch.randn(tensor.shape, generator=generator, dtype=torch.float32, device="cpu")
        tensor.copy_(values * std)


def _fill_(tensor: torch.Tensor, value: float) -> None:
    if not tensor.is_meta:
        with torch.no_grad():
            tensor.fill_(value)


def init_weights_(module: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """(Re-)initialise every StyleGAN2 layer of ``module`` from ``generator`` (seed 0 if None),
    in module order, so the same seed gives the same weights."""
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    for sub in module.modules():
        reset = getattr(sub, "reset_parameters_", None)
        if reset is not None:
            reset(generator)
    return module


# -- layers ------------------------------------------------------------------------------------


class PixelNorm(nn.Module):
    """Normalise each vector to unit root-mean-square over dimension 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate; ``activate`` fuses bias + scaled leaky ReLU."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_dim, in_dim))
        self.bias = nn.Parameter(torch.empty(out_dim)) if bias else None
        self.bias_init = float(bias_init)
        self.lr_mul = float(lr_mul)
        self.scale = self.lr_mul / math.sqrt(in_dim)
        self.activate = activate

    def reset_parameters_(self, generator: torch.Generator) -> None:
        _fill_normal_(self.weight, generator, 1.0 / self.lr_mul)
        if self.bias is not None:
            _fill_(self.bias, self.bias_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        if self.activate:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)


class EqualConv2d(nn.Module):
    """Conv layer with equalised learning rate (weight scaled by ``1 / sqrt(in * k * k)``)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_ch)) if bias else None
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size**2)
        self.stride, self.padding = stride, padding

    def reset_parameters_(self, generator: torch.Generator) -> None:
        _fill_normal_(self.weight, generator)
        if self.bias is not None:
            _fill_(self.bias, 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class FusedLeakyReLU(nn.Module):
    """Per-channel bias, leaky ReLU (0.2), gain sqrt(2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.empty(channels))

    def reset_parameters_(self, generator: torch.Generator) -> None:
        _fill_(self.bias, 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class Blur(nn.Module):
    """FIR filter with the ``[1, 3, 3, 1]`` kernel (times ``gain``) and the given pads."""

    def __init__(self, pad: tuple[int, int], gain: float = 1.0):
        super().__init__()
        self.register_buffer("kernel", make_kernel() * gain)
        self.pad = tuple(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """FIR upsampling by 2 (zero insertion, then the ``[1, 3, 3, 1]`` kernel times 4)."""

    def __init__(self, factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel() * factor**2)
        self.pad = skip_upsample_pads(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Style-modulated (and optionally demodulated) conv; ``upsample`` doubles the side.

    ``weight`` is stored ``(1, out, in, k, k)`` as in the reference files.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.weight = nn.Parameter(torch.empty(1, out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size**2)
        self.padding = kernel_size // 2
        self.demodulate = demodulate
        self.upsample = upsample
        if upsample:
            self.blur = Blur(upsample_pads(kernel_size), gain=4.0)

    def reset_parameters_(self, generator: torch.Generator) -> None:
        _fill_normal_(self.weight, generator)

    def demodulation(self, styles: torch.Tensor) -> torch.Tensor:
        """``(N, out)`` factors ``1 / sqrt(sum_{i,k} (w[o, i, k] * s[n, i])^2 + 1e-8)``."""
        energy = (self.weight[0] * self.scale).pow(2).sum(dim=(2, 3))  # (out, in)
        return torch.rsqrt(styles.pow(2) @ energy.t() + 1e-8)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        styles = self.modulation(style)  # (N, in)
        weight = self.weight[0] * self.scale
        x = x * styles.view(n, -1, 1, 1)
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            out = out * self.demodulation(styles).view(n, -1, 1, 1)
        return out


class NoiseInjection(nn.Module):
    """``x + weight * noise`` with one learned strength (``weight``, shape (1,), starts at 0)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(1))

    def reset_parameters_(self, generator: torch.Generator) -> None:
        _fill_(self.weight, 0.0)

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + self.weight * noise


class ConstantInput(nn.Module):
    """The learned 4x4 input of the synthesis network."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.empty(1, channels, size, size))

    def reset_parameters_(self, generator: torch.Generator) -> None:
        _fill_normal_(self.input, generator)

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    """Modulated conv -> noise -> bias + leaky ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel_size, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nn.Module):
    """Modulated 1x1 conv to image channels (no demodulation) + bias, added to the upsampled skip."""

    def __init__(self, in_ch: int, style_dim: int, img_channels: int = 3, upsample: bool = True):
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(in_ch, img_channels, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.empty(1, img_channels, 1, 1))

    def reset_parameters_(self, generator: torch.Generator) -> None:
        _fill_(self.bias, 0.0)

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


# -- channel tables ----------------------------------------------------------------------------


def log2_size(size: int) -> int:
    """``log2(size)`` for a power of two of at least 8; ``ValueError`` otherwise."""
    if size < 8 or size & (size - 1):
        raise ValueError(f"StyleGAN2 needs a power-of-two image side of at least 8, got {size}")
    return size.bit_length() - 1


def resolutions(size: int) -> list[int]:
    """4, 8, ..., size."""
    return [2**i for i in range(2, log2_size(size) + 1)]


def scaled_channels(size: int, channel_base: int, channel_max: int, channel_min: int = 1) -> dict[int, int]:
    """``min(channel_max, channel_base // res)`` per resolution (at least ``channel_min``)."""
    return {r: max(channel_min, min(channel_max, channel_base // r)) for r in resolutions(size)}


def reference_channels(size: int, channel_multiplier: int, base: int = 512) -> dict[int, int]:
    """The channel table of rosinality/stylegan2-pytorch: ``base`` up to 32 px, then
    ``base * 32 / res * channel_multiplier`` (256·cm at 64 px for base 512, 128·cm at 128, ...)."""
    return {r: base if r <= 32 else base * 32 // r * channel_multiplier for r in resolutions(size)}


# -- generator ---------------------------------------------------------------------------------


class Generator(nn.Module):
    """Mapping network (``style``: PixelNorm + ``n_mlp`` equalised layers with ``lr_mlp``) and
    synthesis network (constant 4x4 input, two styled convs per resolution, skip to-RGB outputs).

    ``n_latent`` style vectors drive the synthesis (``2 * log2(size) - 2``); ``num_layers`` noise
    maps feed it (``2 * log2(size) - 3``), stored as ``noises.noise_i`` buffers (the fixed noise).
    """

    def __init__(self, size: int, style_dim: int, n_mlp: int, channels: Mapping[int, int],
                 img_channels: int = 3, lr_mlp: float = 0.01, generator: torch.Generator | None = None):
        super().__init__()
        self.size, self.style_dim, self.n_mlp = size, style_dim, n_mlp
        self.img_channels, self.lr_mlp = img_channels, lr_mlp
        log = log2_size(size)
        self.channels = {r: int(channels[r]) for r in resolutions(size)}
        self.style = nn.Sequential(PixelNorm(), *[
            EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activate=True) for _ in range(n_mlp)])
        ch = self.channels
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], 3, style_dim)
        self.to_rgb1 = ToRGB(ch[4], style_dim, img_channels, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = ch[4]
        for res in resolutions(size)[1:]:
            self.convs.append(StyledConv(in_ch, ch[res], 3, style_dim, upsample=True))
            self.convs.append(StyledConv(ch[res], ch[res], 3, style_dim))
            self.to_rgbs.append(ToRGB(ch[res], style_dim, img_channels))
            in_ch = ch[res]
        self.num_layers = 2 * log - 3
        self.n_latent = 2 * log - 2
        self.noises = nn.Module()
        for i, side in enumerate(self.noise_sides()):
            self.noises.register_buffer(f"noise_{i}", torch.empty(1, 1, side, side))
        init_weights_(self, generator)

    def reset_parameters_(self, generator: torch.Generator) -> None:
        for i in range(self.num_layers):
            _fill_normal_(getattr(self.noises, f"noise_{i}"), generator)

    def noise_sides(self) -> list[int]:
        """The side of each noise map: 4, then two per resolution 8 ... size."""
        return [4] + [r for r in resolutions(self.size)[1:] for _ in range(2)]

    def fixed_noise(self) -> list[torch.Tensor]:
        return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]

    def random_noise(self, batch: int, generator: torch.Generator, device=None) -> list[torch.Tensor]:
        """Fresh unit-normal noise maps ``(batch, 1, side, side)`` drawn from ``generator``."""
        device = device if device is not None else self.input.input.device
        return [randn((batch, 1, s, s), generator, device) for s in self.noise_sides()]

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z ``(N, style_dim)`` -> w ``(N, style_dim)``."""
        return self.style(z)

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """w ``(N, D)`` -> ``(N, n_latent, D)``; an ``(N, n_latent, D)`` input is returned as is."""
        if w.dim() == 2:
            return w.unsqueeze(1).expand(-1, self.n_latent, -1)
        if w.dim() != 3 or w.shape[1] != self.n_latent:
            raise ValueError(f"expected w of shape (N, {self.style_dim}) or (N, {self.n_latent}, "
                             f"{self.style_dim}), got {tuple(w.shape)}")
        return w

    def synthesis(self, w: torch.Tensor, noise: Sequence[torch.Tensor] | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """Images in the model range (about ``[-1, 1]``) from w (``(N, D)``, or per layer ``(N,
        n_latent, D)`` for W+).

        ``noise``: one map per layer (``(N or 1, 1, side, side)``); when None, fresh noise from
        ``generator`` if given, else the stored fixed noise.
        """
        ws = self.broadcast(w)
        n = ws.shape[0]
        if noise is None:
            noise = (self.random_noise(n, generator, ws.device) if generator is not None
                     else self.fixed_noise())
        if len(noise) != self.num_layers:
            raise ValueError(f"expected {self.num_layers} noise maps, got {len(noise)}")
        out = self.conv1(self.input(n), ws[:, 0], noise[0])
        skip = self.to_rgb1(out, ws[:, 1])
        for j, to_rgb in enumerate(self.to_rgbs):
            i = 2 * j + 1
            out = self.convs[2 * j](out, ws[:, i], noise[i])
            out = self.convs[2 * j + 1](out, ws[:, i + 1], noise[i + 1])
            skip = to_rgb(out, ws[:, i + 2], skip)
        return skip

    def forward(self, z: torch.Tensor, noise: Sequence[torch.Tensor] | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        return self.synthesis(self.mapping(z), noise=noise, generator=generator)


def randn(shape, generator: torch.Generator, device) -> torch.Tensor:
    """Unit normals drawn from ``generator`` (a CPU or a device generator), placed on ``device``."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    if gen_device.type == torch.device(device).type:
        return torch.randn(shape, generator=generator, device=device)
    return torch.randn(shape, generator=generator, device=gen_device).to(device)


# -- discriminator -----------------------------------------------------------------------------


class ConvLayer(nn.Sequential):
    """(blur ->) equalised conv (stride 2 when downsampling) (-> bias + leaky ReLU)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, downsample: bool = False,
                 bias: bool = True, activate: bool = True):
        layers: list[nn.Module] = []
        if downsample:
            layers.append(Blur(downsample_pads(kernel_size)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_ch, out_ch, kernel_size, stride, padding, bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_ch))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Two 3x3 convs (the second downsamples) plus a 1x1 downsampling skip, summed / sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True)
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, bias=False, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2.0)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append one channel: the standard deviation over a group of samples, averaged over the
    features and pixels. Samples ``i`` and ``j`` share a group when ``i ≡ j (mod N / G)``; the
    group size ``G`` is the largest divisor of the batch size not above ``group_size``."""
    n, c, h, w = x.shape
    g = max(d for d in range(1, min(group_size, n) + 1) if n % d == 0)
    grouped = x.view(g, n // g, c, h, w)
    std = torch.sqrt(grouped.var(dim=0, unbiased=False) + 1e-8).mean(dim=(1, 2, 3))  # (N / G,)
    feature = std.view(1, n // g, 1, 1, 1).expand(g, -1, 1, h, w).reshape(n, 1, h, w)
    return torch.cat([x, feature], dim=1)


class Discriminator(nn.Module):
    """From-RGB 1x1 conv, one residual block per halving down to 4x4, minibatch stddev, 3x3 conv,
    two equalised linear layers to one logit."""

    def __init__(self, size: int, channels: Mapping[int, int], img_channels: int = 3,
                 stddev_group: int = 4, generator: torch.Generator | None = None):
        super().__init__()
        log = log2_size(size)
        ch = {r: int(channels[r]) for r in resolutions(size)}
        self.size, self.channels, self.img_channels = size, ch, img_channels
        blocks: list[nn.Module] = [ConvLayer(img_channels, ch[size], 1)]
        in_ch = ch[size]
        for i in range(log, 2, -1):
            blocks.append(ResBlock(in_ch, ch[2 ** (i - 1)]))
            in_ch = ch[2 ** (i - 1)]
        self.convs = nn.Sequential(*blocks)
        self.stddev_group = stddev_group
        self.final_conv = ConvLayer(in_ch + 1, ch[4], 3)
        self.final_linear = nn.Sequential(EqualLinear(ch[4] * 16, ch[4], activate=True),
                                          EqualLinear(ch[4], 1))
        init_weights_(self, generator)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activations after the from-RGB layer and after each residual block (every one
        depends on its own image only; used as a perceptual feature space by the projector)."""
        out, feats = x, []
        for block in self.convs:
            out = block(out)
            feats.append(out)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs(x)
        out = self.final_conv(minibatch_stddev(out, self.stddev_group))
        return self.final_linear(out.flatten(1))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
