"""VQ-VAE-2 with two levels (Razavi et al. 2019), laid out like rosinality/vq-vae-2-pytorch.

The module and buffer names, the ``nn.Sequential`` indices and the tensor shapes follow the
reference implementation (see ``docs/compat.md``), so a reference state dict loads 1:1:

* ``enc_b`` downsamples the image by 4, ``enc_t`` by 2 more: the bottom (local) map is 1/4 of the
  image, the top (structural) map 1/8 (``bottom_stride=2``, not in the reference: ``enc_b`` and
  ``dec`` down- and upsample by 2 only, so the bottom map is 1/2 of the image and the top 1/4 —
  finer detail per code at four times the positions; ``bottom_stride=1``: no downsampling, the
  bottom map at the image's resolution — the method's default for 32-px images);
* ``quantize_t`` / ``quantize_b`` are EMA codebooks (``embed`` is ``(dim, n_embed)``, one code per
  column) with Laplace smoothing and a straight-through gradient;
* ``dec_t`` feeds the top latents into the bottom quantizer, ``upsample_t`` + ``dec`` decode both.

Images enter and leave in ``[-1, 1]``.

**Borders.** The reference pads every conv with zeros, and its 4x4 / stride-2 transposed convs
give the outermost output row and column one kernel tap where the rows inside get two: a
checkerboard band along the borders that training never quite removes. ``border="replicate"``
(what lagaug fits with) pads every spatial conv by repeating the edge, and feeds each transposed
conv an edge-replicated input whose extra output is cropped, so a border pixel is computed like
any other. The weights and their names are the same either way; ``border="zero"`` is the
reference's arithmetic (imported checkpoints and generators saved before the option existed).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import skip_init

from lagaug.plugins.vqvae2.layers import init_weights_, seeded


def conv(cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> nn.Conv2d:
    """An uninitialised conv (:func:`init_weights_` fills it from a generator)."""
    return skip_init(nn.Conv2d, cin, cout, k, stride=stride, padding=padding,
                     device=torch.get_default_device())


BORDERS = ("replicate", "zero")


class UpConv(nn.ConvTranspose2d):
    """A 4x4 / stride-2 transposed conv (upsample by 2) with a border mode (see the module doc):
    ``"zero"`` as torch computes it, ``"replicate"`` on an edge-replicated input, cropped."""

    border: str = "zero"

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if self.border == "zero":
            return super().forward(x)
        y = F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.weight, self.bias,
                               stride=2, padding=1)
        return y[..., 2:-2, 2:-2]


def upconv(cin: int, cout: int) -> UpConv:
    return skip_init(UpConv, cin, cout, 4, stride=2, padding=1, device=torch.get_default_device())


def set_border(module: nn.Module, border: str) -> None:
    """Pad every spatial conv inside ``module`` by ``border`` (``"replicate"`` or ``"zero"``)."""
    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}, got {border!r}")
    for sub in module.modules():
        if isinstance(sub, UpConv):
            sub.border = border
        elif isinstance(sub, nn.Conv2d) and max(sub.padding) > 0:
            sub.padding_mode = "replicate" if border == "replicate" else "zeros"


class Quantizer(nn.Module):
    """Nearest-code vector quantizer with an exponential-moving-average codebook.

    Buffers (reference names): ``embed`` ``(dim, n_embed)``, ``cluster_size`` ``(n_embed,)``,
    ``embed_avg`` ``(dim, n_embed)``. In training mode every call moves the codebook towards the
    mean of the vectors assigned to each code (decay ``decay``, Laplace smoothing ``eps``).
    """

    def __init__(self, dim: int, n_embed: int, decay: float = 0.99, eps: float = 1e-5):
        super().__init__()
        self.dim, self.n_embed, self.decay, self.eps = dim, n_embed, decay, eps
        self.register_buffer("embed", torch.zeros(dim, n_embed))
        self.register_buffer("cluster_size", torch.ones(n_embed))
        self.register_buffer("embed_avg", torch.zeros(dim, n_embed))
        self.last_input: torch.Tensor | None = None  # training only: for restart_dead_codes

    def reset_from(self, generator: torch.Generator) -> None:
        """A random normal codebook, as in the reference."""
        if self.embed.is_meta:
            return
        embed = torch.randn(self.dim, self.n_embed, generator=generator, device="cpu")
        self.set_codebook(embed.to(self.embed.device))

    def set_codebook(self, embed: torch.Tensor) -> None:
        """Replace the codebook (``(dim, n_embed)``) and restart its moving averages."""
        self.embed.copy_(embed)
        self.embed_avg.copy_(embed)
        self.cluster_size.fill_(1.0)

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code (squared L2) for every row of ``flat`` ``(M, dim)``."""
        dist = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.embed
                + self.embed.pow(2).sum(0, keepdim=True))
        return dist.argmin(1)

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """Code vectors of ``ids`` (any shape) -> ``(*ids.shape, dim)``."""
        return F.embedding(ids, self.embed.t())

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``z`` channels-last ``(..., dim)`` -> (quantized with straight-through gradient,
        commitment term ``mean((sg[q] - z)^2)``, code ids ``z.shape[:-1]``). Always in float32 (under
        mixed precision too: the nearest code and the codebook's averages need it)."""
        with torch.autocast(z.device.type, enabled=False):
            return self._quantize(z.float())

    def _quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flat = z.reshape(-1, self.dim)
        ids = self.nearest(flat.detach())
        quant = self.lookup(ids).view_as(z)
        if self.training:
            self._ema_update(flat.detach(), ids)
            self.last_input = flat.detach()
        commitment = (quant.detach() - z).pow(2).mean()
        quant = z + (quant - z).detach()
        return quant, commitment, ids.view(z.shape[:-1])

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, ids: torch.Tensor) -> None:
        onehot = F.one_hot(ids, self.n_embed).type(flat.dtype)
        self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(flat.t() @ onehot, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.n_embed * self.eps) * n
        self.embed.copy_(self.embed_avg / smoothed.unsqueeze(0))


    @torch.no_grad()
    def restart_dead_codes(self, generator: torch.Generator, threshold: float = 1.0) -> int:
        """Move codes whose moving-average use fell below ``threshold`` onto random inputs of the
        last training batch (so a code that lost all its vectors gets a new chance); returns how
        many moved. Not in the reference; it only changes buffer values, never the format."""
        if self.last_input is None:
            return 0
        dead = (self.cluster_size < threshold).nonzero().flatten()
        if len(dead):
            pick = torch.randint(0, self.last_input.shape[0], (len(dead),), generator=generator)
            fresh = self.last_input[pick.to(self.last_input.device)].t()
            self.embed[:, dead] = fresh
            self.embed_avg[:, dead] = fresh * threshold
            self.cluster_size[dead] = threshold
        self.last_input = None
        return len(dead)


class ResBlock(nn.Module):
    """``x + conv1x1(relu(conv3x3(relu(x))))`` (keys ``conv.1``, ``conv.3``)."""

    def __init__(self, channel: int, res_channel: int):
        super().__init__()
        self.conv = nn.Sequential(nn.ReLU(), conv(channel, res_channel, 3, padding=1),
                                  nn.ReLU(), conv(res_channel, channel, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class Encoder(nn.Module):
    """Downsample by ``stride`` (4 or 2) with 4x4/2 convs, a 3x3 conv, residual blocks, ReLU."""

    def __init__(self, cin: int, channel: int, n_res_block: int, res_channel: int, stride: int):
        super().__init__()
        if stride == 4:
            layers = [conv(cin, channel // 2, 4, 2, 1), nn.ReLU(),
                      conv(channel // 2, channel, 4, 2, 1), nn.ReLU(),
                      conv(channel, channel, 3, padding=1)]
        elif stride == 2:
            layers = [conv(cin, channel // 2, 4, 2, 1), nn.ReLU(),
                      conv(channel // 2, channel, 3, padding=1)]
        elif stride == 1:
            layers = [conv(cin, channel // 2, 3, padding=1), nn.ReLU(),
                      conv(channel // 2, channel, 3, padding=1)]
        else:
            raise ValueError(f"encoder stride must be 1, 2 or 4, got {stride}")
        layers += [ResBlock(channel, res_channel) for _ in range(n_res_block)]
        self.blocks = nn.Sequential(*layers, nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class Decoder(nn.Module):
    """A 3x3 conv, residual blocks, ReLU, then upsample by ``stride`` with 4x4/2 transposed convs."""

    def __init__(self, cin: int, cout: int, channel: int, n_res_block: int, res_channel: int,
                 stride: int):
        super().__init__()
        layers = [conv(cin, channel, 3, padding=1)]
        layers += [ResBlock(channel, res_channel) for _ in range(n_res_block)]
        layers.append(nn.ReLU())
        if stride == 4:
            layers += [upconv(channel, channel // 2), nn.ReLU(), upconv(channel // 2, cout)]
        elif stride == 2:
            layers.append(upconv(channel, cout))
        elif stride == 1:
            layers.append(conv(channel, cout, 3, padding=1))
        else:
            raise ValueError(f"decoder stride must be 1, 2 or 4, got {stride}")
        self.blocks = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class VQVAE2(nn.Module):
    """Two-level VQ-VAE. Defaults are the reference's (and the paper's) sizes and arithmetic
    (``border="zero"``; lagaug's own fits use ``"replicate"``, see the module doc).

    Weights are initialised from ``generator`` (default: a generator seeded 0).
    """

    def __init__(self, in_channel: int = 3, channel: int = 128, n_res_block: int = 2,
                 n_res_channel: int = 32, embed_dim: int = 64, n_embed: int = 512,
                 decay: float = 0.99, generator: torch.Generator | None = None, border: str = "zero",
                 bottom_stride: int = 4):
        super().__init__()
        self.n_embed = n_embed
        self.bottom_stride = bottom_stride
        self.enc_b = Encoder(in_channel, channel, n_res_block, n_res_channel, stride=bottom_stride)
        self.enc_t = Encoder(channel, channel, n_res_block, n_res_channel, stride=2)
        self.quantize_conv_t = conv(channel, embed_dim, 1)
        self.quantize_t = Quantizer(embed_dim, n_embed, decay)
        self.dec_t = Decoder(embed_dim, embed_dim, channel, n_res_block, n_res_channel, stride=2)
        self.quantize_conv_b = conv(embed_dim + channel, embed_dim, 1)
        self.quantize_b = Quantizer(embed_dim, n_embed, decay)
        self.upsample_t = upconv(embed_dim, embed_dim)
        self.dec = Decoder(2 * embed_dim, in_channel, channel, n_res_block, n_res_channel, stride=bottom_stride)
        init_weights_(self, seeded(generator))
        self.border = border
        set_border(self, border)

    def set_border(self, border: str) -> None:
        self.border = border
        set_border(self, border)

    def encode(self, x: torch.Tensor):
        """``x`` in ``[-1, 1]`` -> (quant_t, quant_b, commitment, top ids, bottom ids)."""
        enc_b = self.enc_b(x)
        enc_t = self.enc_t(enc_b)
        quant_t, diff_t, id_t = self.quantize_t(self.quantize_conv_t(enc_t).permute(0, 2, 3, 1))
        quant_t = quant_t.permute(0, 3, 1, 2)
        joint = torch.cat([self.dec_t(quant_t), enc_b], 1)
        quant_b, diff_b, id_b = self.quantize_b(self.quantize_conv_b(joint).permute(0, 2, 3, 1))
        return quant_t, quant_b.permute(0, 3, 1, 2), diff_t + diff_b, id_t, id_b

    def decode(self, quant_t: torch.Tensor, quant_b: torch.Tensor) -> torch.Tensor:
        """Quantized latents (channels-first) -> image (unclamped; ~[-1, 1])."""
        return self.dec(torch.cat([self.upsample_t(quant_t), quant_b], 1))

    def decode_codes(self, id_t: torch.Tensor, id_b: torch.Tensor) -> torch.Tensor:
        """Top and bottom code ids (``(N, H/8, W/8)`` and ``(N, H/4, W/4)`` with
        ``bottom_stride=4``) -> image (unclamped)."""
        quant_t = self.quantize_t.lookup(id_t).permute(0, 3, 1, 2)
        quant_b = self.quantize_b.lookup(id_b).permute(0, 3, 1, 2)
        return self.decode(quant_t, quant_b)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        quant_t, quant_b, diff, _, _ = self.encode(x)
        return self.decode(quant_t, quant_b), diff


def perplexity(ids: torch.Tensor, n_embed: int) -> float:
    """``exp(entropy)`` of the code-usage histogram: ``n_embed`` when every code is used equally,
    1 when a single code is used (collapse)."""
    counts = torch.bincount(ids.reshape(-1).cpu(), minlength=n_embed).double()
    p = counts / counts.sum().clamp_min(1)
    return float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))
