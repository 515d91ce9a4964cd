"""PixelSNAIL (Chen et al. 2018) as the autoregressive prior over VQ-VAE-2 code maps.

Structure, key names and shapes follow rosinality/vq-vae-2-pytorch (``docs/compat.md``):

* an input stem of two causal convs over the one-hot codes (``horizontal``, ``vertical``),
* ``blocks``: each a stack of gated residual blocks with weight-normed causal convs, then either
  causal attention (top prior) or a 1x1 conv over the features and two coordinate channels
  (``background``),
* for the bottom prior, ``cond_resnet`` turns the one-hot top codes into a condition map that every
  residual block adds (through a bias-free 1x1 conv) before its gate,
* ``out``: 1x1 gated residual blocks, ELU and a 1x1 conv to per-code logits.

This module computes one teacher-forced pass (every position at once): it is what training uses
and what :mod:`lagaug.plugins.vqvae2.sampler` must reproduce position by position.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from lagaug.plugins.vqvae2.layers import ELU, Dropout, WNParams, elu, init_weights_, seeded


def embed_conv(codes: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, pad: tuple[int, int, int, int],
               n_class: int) -> torch.Tensor:
    """``conv2d(pad(one_hot(codes)), weight, bias)`` without building the one-hot map: a conv over
    one-hot codes is, per tap, a lookup of the code's column of the weight. ``pad`` is
    ``(left, right, top, bottom)`` as for ``F.pad``; padded positions are all-zero (no code).
    Same values as the conv (up to the order of the sums), at a fraction of the cost."""
    o, _, kh, kw = weight.shape
    left, right, top, bottom = pad
    padded = F.pad(codes, (left, right, top, bottom), value=n_class)  # n_class: the zero row
    tables = torch.cat([weight.permute(2, 3, 1, 0), weight.new_zeros(kh, kw, 1, o)], 2)  # (kh, kw, n+1, o)
    h, w = padded.shape[1] - kh + 1, padded.shape[2] - kw + 1
    out = None
    for ky in range(kh):
        for kx in range(kw):
            tap = F.embedding(padded[:, ky : ky + h, kx : kx + w], tables[ky, kx])
            out = tap if out is None else out + tap
    if bias is not None:
        out = out + bias
    return out.permute(0, 3, 1, 2)


class WNConv2d(nn.Module):
    """Weight-normed conv (keys ``conv.weight_g``, ``conv.weight_v``, ``conv.bias``)."""

    def __init__(self, cin: int, cout: int, kernel, padding=0, bias: bool = True,
                 mask: torch.Tensor | None = None):
        super().__init__()
        kernel = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
        self.padding = padding
        self.conv = WNParams(cout, cin, kernel, bias=bias, mask=mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.conv.weight(), self.conv.bias, padding=self.padding)


class CausalConv2d(nn.Module):
    """A conv that sees only earlier positions in raster order (keys ``conv.conv.*``).

    ``padding``: ``"downright"`` pads left ``kw-1`` and top ``kh-1``; ``"down"`` pads ``kw//2`` on
    both sides and ``kh-1`` on top; ``"causal"`` is ``"down"`` plus a mask over the current row's
    taps at and right of the centre, so an output never sees its own position.
    """

    def __init__(self, cin: int, cout: int, kernel, padding: str = "downright"):
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
        self.kernel = (kh, kw)
        if padding == "downright":
            self.pad = (kw - 1, 0, kh - 1, 0)
        elif padding in ("down", "causal"):
            self.pad = (kw // 2, kw // 2, kh - 1, 0)
        else:
            raise ValueError(f"unknown causal padding {padding!r}")
        self.causal = kw // 2 if padding == "causal" else 0
        mask = None
        if self.causal:
            mask = torch.ones(cout, cin, kh, kw)
            mask[:, :, -1, self.causal:] = 0
        self.conv = WNConv2d(cin, cout, (kh, kw), mask=mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pad))

    def forward_codes(self, codes: torch.Tensor, n_class: int) -> torch.Tensor:
        """The same as ``forward(one_hot(codes))`` (``codes`` ``(B, H, W)``), by lookup."""
        return embed_conv(codes, self.conv.conv.weight(), self.conv.conv.bias, self.pad, n_class)


class GatedResBlock(nn.Module):
    """``x + GLU(conv2(drop(elu(conv1(elu(x)) [+ aux_conv(elu(aux))]))) [+ condition(cond)])``.

    ``conv`` is ``"wn"`` (same-padded weight-normed conv) or ``"causal"``.
    """

    def __init__(self, cin: int, channel: int, kernel: int, conv: str = "wn",
                 dropout: float = 0.1, aux_channel: int = 0, condition_dim: int = 0):
        super().__init__()
        if conv == "causal":
            make = lambda i, o: CausalConv2d(i, o, kernel, padding="causal")  # noqa: E731
        else:
            make = lambda i, o: WNConv2d(i, o, kernel, padding=kernel // 2)  # noqa: E731
        self.conv1 = make(cin, channel)
        if aux_channel > 0:
            self.aux_conv = WNConv2d(aux_channel, channel, 1)
        self.dropout = Dropout(dropout)
        self.conv2 = make(channel, cin * 2)
        if condition_dim > 0:
            self.condition = WNConv2d(condition_dim, cin * 2, 1, bias=False)

    def forward(self, x, aux=None, condition=None):
        out = self.conv1(elu(x))
        if aux is not None:
            out = out + self.aux_conv(elu(aux))
        out = self.conv2(self.dropout(elu(out)))
        if condition is not None:
            out = out + self.condition(condition)
        return F.glu(out, 1) + x


class CausalAttention(nn.Module):
    """Multi-head attention where position p attends only to positions before p (raster order).

    The first position attends to nothing and outputs zeros. Keys ``query``/``key``/``value``
    are weight-normed linears.
    """

    def __init__(self, query_channel: int, key_channel: int, channel: int, n_head: int = 8,
                 dropout: float = 0.1):
        super().__init__()
        self.query = WNParams(channel, query_channel)
        self.key = WNParams(channel, key_channel)
        self.value = WNParams(channel, key_channel)
        self.n_head, self.dim_head = n_head, channel // n_head
        self.dropout = Dropout(dropout)

    def heads(self, x: torch.Tensor, proj: WNParams) -> torch.Tensor:
        """``(B, L, C_in)`` -> projected ``(B, n_head, L, dim_head)``."""
        y = F.linear(x, proj.weight(), proj.bias)
        return y.view(x.shape[0], x.shape[1], self.n_head, self.dim_head).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        b, _, h, w = key.shape
        q = self.heads(query.flatten(2).transpose(1, 2), self.query)
        k = self.heads(key.flatten(2).transpose(1, 2), self.key)
        v = self.heads(key.flatten(2).transpose(1, 2), self.value)
        scores = q @ k.transpose(2, 3) / math.sqrt(self.dim_head)
        n = h * w
        earlier = torch.ones(n, n, dtype=torch.bool, device=key.device).tril(-1)
        attn = torch.softmax(scores.masked_fill(~earlier, -1e4), dim=3)
        attn = attn * (torch.arange(n, device=key.device) > 0).to(attn.dtype).unsqueeze(1)
        out = self.dropout(attn) @ v  # (B, heads, n, dim_head)
        return out.transpose(1, 2).reshape(b, h, w, -1).permute(0, 3, 1, 2)


class PixelBlock(nn.Module):
    """Causal gated residual blocks, then attention (with ``key_resblock``, ``query_resblock``,
    ``causal_attention``, ``out_resblock``) or a 1x1 ``out`` conv over features + coordinates."""

    def __init__(self, channel: int, res_channel: int, kernel: int, n_res_block: int,
                 attention: bool = True, dropout: float = 0.1, condition_dim: int = 0):
        super().__init__()
        self.resblocks = nn.ModuleList(
            GatedResBlock(channel, res_channel, kernel, conv="causal", dropout=dropout,
                          condition_dim=condition_dim)
            for _ in range(n_res_block)
        )
        self.attention = attention
        if attention:
            self.key_resblock = GatedResBlock(channel * 2 + 2, channel, 1, dropout=dropout)
            self.query_resblock = GatedResBlock(channel + 2, channel, 1, dropout=dropout)
            self.causal_attention = CausalAttention(channel + 2, channel * 2 + 2, channel // 2,
                                                    dropout=dropout)
            self.out_resblock = GatedResBlock(channel, channel, 1, aux_channel=channel // 2,
                                              dropout=dropout)
        else:
            self.out = WNConv2d(channel + 2, channel, 1)

    def forward(self, x, background, condition=None):
        out = x
        for block in self.resblocks:
            out = block(out, condition=condition)
        if not self.attention:
            return self.out(torch.cat([out, background], 1))
        key = self.key_resblock(torch.cat([x, out, background], 1))
        query = self.query_resblock(torch.cat([out, background], 1))
        return self.out_resblock(out, self.causal_attention(query, key))


class CondResNet(nn.Module):
    """A same-padded conv then non-causal gated residual blocks (``blocks.N``)."""

    def __init__(self, cin: int, channel: int, kernel: int, n_res_block: int):
        super().__init__()
        self.blocks = nn.Sequential(
            WNConv2d(cin, channel, kernel, padding=kernel // 2),
            *[GatedResBlock(channel, channel, kernel) for _ in range(n_res_block)],
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


def shift_down(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (0, 0, 1, 0))[:, :, : x.shape[2]]


def shift_right(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (1, 0, 0, 0))[:, :, :, : x.shape[3]]


class PixelSNAIL(nn.Module):
    """The prior over a ``shape = (H, W)`` map of ``n_class`` codes.

    Arguments follow the reference constructor. The reference top prior is
    ``PixelSNAIL([32, 32], 512, 256, 5, 4, 4, 256, dropout=0.1)``; the bottom prior
    ``PixelSNAIL([64, 64], 512, 256, 5, 4, 4, 256, attention=False, dropout=0.1,
    n_cond_res_block=3, cond_res_channel=256)``. Weights are initialised from ``generator``.
    """

    def __init__(self, shape, n_class: int, channel: int, kernel_size: int, n_block: int,
                 n_res_block: int, res_channel: int, attention: bool = True,
                 dropout: float = 0.1, n_cond_res_block: int = 0, cond_res_channel: int = 0,
                 cond_res_kernel: int = 3, n_out_res_block: int = 0,
                 generator: torch.Generator | None = None):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"PixelSNAIL kernel_size must be odd, got {kernel_size}")
        height, width = int(shape[0]), int(shape[1])
        self.shape, self.n_class, self.channel = (height, width), n_class, channel
        self.kernel_size = kernel_size
        self.horizontal = CausalConv2d(n_class, channel, [kernel_size // 2, kernel_size], "down")
        self.vertical = CausalConv2d(n_class, channel, [(kernel_size + 1) // 2, kernel_size // 2],
                                     "downright")
        rows = ((torch.arange(height).float() - height / 2) / height).view(1, 1, height, 1)
        cols = ((torch.arange(width).float() - width / 2) / width).view(1, 1, 1, width)
        self.register_buffer("background", torch.cat(
            [rows.expand(1, 1, height, width), cols.expand(1, 1, height, width)], 1))
        self.blocks = nn.ModuleList(
            PixelBlock(channel, res_channel, kernel_size, n_res_block, attention=attention,
                       dropout=dropout, condition_dim=cond_res_channel if n_cond_res_block else 0)
            for _ in range(n_block)
        )
        self.conditioned = n_cond_res_block > 0
        if self.conditioned:
            self.cond_resnet = CondResNet(n_class, cond_res_channel, cond_res_kernel,
                                          n_cond_res_block)
        self.out = nn.Sequential(
            *[GatedResBlock(channel, res_channel, 1) for _ in range(n_out_res_block)],
            ELU(), WNConv2d(channel, n_class, 1),
        )
        init_weights_(self, seeded(generator))

    def condition_map(self, condition: torch.Tensor) -> torch.Tensor:
        """Top codes ``(B, H/2, W/2)`` -> condition features ``(B, cond_res_channel, H, W)``."""
        first, *rest = self.cond_resnet.blocks
        p = first.padding
        x = embed_conv(condition, first.conv.weight(), first.conv.bias, (p, p, p, p), self.n_class)
        for block in rest:
            x = block(x)
        return F.interpolate(x, scale_factor=2, mode="nearest")

    def forward(self, codes: torch.Tensor, condition: torch.Tensor | None = None,
                cond_map: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, n_class, h, W)`` for codes ``(B, h, W)`` (``h <= H``: the first rows).

        The bottom prior needs ``condition`` (top codes) or a precomputed ``cond_map``.
        """
        b, h, w = codes.shape
        out = (shift_down(self.horizontal.forward_codes(codes, self.n_class))
               + shift_right(self.vertical.forward_codes(codes, self.n_class)))
        background = self.background[:, :, :h].expand(b, 2, h, w)
        if self.conditioned:
            if cond_map is None:
                if condition is None:
                    raise ValueError("this PixelSNAIL is conditioned: pass the top codes")
                cond_map = self.condition_map(condition)
            cond_map = cond_map[:, :, :h]
        else:
            cond_map = None
        for block in self.blocks:
            out = block(out, background, condition=cond_map)
        return self.out(out)

    def loss(self, codes: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Mean negative log-likelihood per code (nats), teacher-forced."""
        return F.cross_entropy(self(codes, condition), codes)
