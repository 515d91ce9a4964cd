"""Sampling code maps from a :class:`~lagaug.plugins.vqvae2.pixelsnail.PixelSNAIL` prior.

Two samplers with one interface, ``sample(model, codes, mask=..., condition=..., temperature=...,
generator=...)``:

* :func:`sample` — the **cached** sampler. Every PixelSNAIL layer only ever looks at earlier
  positions (in raster order) of the layer below, through causal convs whose taps split into the
  rows *above* and the pixels to the *left* in the current row. So the sampler keeps, per conv, a
  rolling window of its input's last ``k`` rows; at the start of each row it computes the
  rows-above part of every conv for the whole row at once (one conv per layer per row), and for
  each pixel it computes only that pixel, through every layer, from the left taps. Attention
  keeps a key/value cache. Each layer is thus evaluated once per position — no more work than
  the next pixel needs — instead of once per position *per sampled pixel*.
* :func:`naive_sample` — the reference's method: re-run the whole network on every row so far for
  every pixel. Slow; the tests' and the benchmark's yardstick.

Both sample only where ``mask`` is true (a box or any boolean map; everything else keeps its code)
and draw the same Gumbel noise from the CPU ``generator`` in the same order, so given the same
seed they return the same codes. Sampling is ``argmax(logits / T + Gumbel)``, i.e. a draw from
``softmax(logits / T)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from lagaug.plugins.vqvae2.pixelsnail import CausalConv2d, GatedResBlock, PixelSNAIL


def box_mask(shape: tuple[int, int], box: tuple[int, int, int, int]) -> torch.Tensor:
    """Boolean ``(H, W)`` map, true inside ``box = (y0, x0, y1, x1)`` (half-open, like slices)."""
    y0, x0, y1, x1 = box
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _full_mask(codes: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``mask`` broadcast to ``codes``'s ``(B, H, W)``, on the CPU (``None`` means everything)."""
    if mask is None:
        return torch.ones(codes.shape, dtype=torch.bool)
    mask = mask.to("cpu", torch.bool)
    if mask.shape[-2:] != codes.shape[-2:]:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not fit the code map "
                         f"{tuple(codes.shape[-2:])}")
    return mask.expand(codes.shape).clone()


def _gumbel(n_steps: int, batch: int, n_class: int, generator: torch.Generator | None):
    """Gumbel noise ``(n_steps, B, n_class)`` from the CPU ``generator``."""
    u = torch.rand(n_steps, batch, n_class, generator=generator, dtype=torch.float64, device="cpu")
    return (-torch.log(-torch.log(u.clamp(1e-20, 1 - 1e-12)))).float()


def _check(model: PixelSNAIL, codes: torch.Tensor, condition, temperature: float) -> None:
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if tuple(codes.shape[1:]) != model.shape:
        raise ValueError(f"code map {tuple(codes.shape[1:])} does not match the prior's {model.shape}")
    if model.conditioned and condition is None:
        raise ValueError("this prior is conditioned on top codes: pass condition=")


# -- the naive sampler -------------------------------------------------------------------------


@torch.no_grad()
def naive_sample(model: PixelSNAIL, codes: torch.Tensor, mask: torch.Tensor | None = None,
                 condition: torch.Tensor | None = None, temperature: float = 1.0,
                 generator: torch.Generator | None = None, return_logits: bool = False):
    """Sample like the reference: a full forward pass over rows ``0..i`` for every pixel.

    ``rows``-restricted timing is possible by passing a ``mask`` that covers only those rows.
    Returns the new codes (and, with ``return_logits``, the logits used at every sampled
    position, NaN elsewhere, ``(B, n_class, H, W)``).
    """
    _check(model, codes, condition, temperature)
    model.eval()
    codes = codes.clone()
    mask = _full_mask(codes, mask)
    logits_out = _logit_store(codes, model.n_class, return_logits)
    cond_map = model.condition_map(condition) if model.conditioned else None
    for i in range(codes.shape[1]):
        cols = mask[:, i].any(0).nonzero().flatten().tolist()
        if not cols:
            continue
        noise = _gumbel(len(cols), codes.shape[0], model.n_class, generator).to(codes.device)
        for step, j in enumerate(cols):
            logits = model(codes[:, : i + 1], cond_map=cond_map)[:, :, i, j]
            _draw(codes, logits, noise[step], mask[:, i, j], i, j, temperature, logits_out)
    return (codes, logits_out) if return_logits else codes


def _logit_store(codes, n_class, wanted):
    if not wanted:
        return None
    b, h, w = codes.shape
    return torch.full((b, n_class, h, w), float("nan"), device=codes.device)


def _draw(codes, logits, noise, rows, i, j, temperature, logits_out=None):
    """Write ``argmax(logits / T + noise)`` into ``codes[:, i, j]`` where ``rows`` is true (and
    the logits into ``logits_out`` for those rows)."""
    pick = (logits / temperature + noise).argmax(1)
    rows = rows.to(codes.device)
    codes[:, i, j] = torch.where(rows, pick, codes[:, i, j])
    if logits_out is not None:
        logits_out[:, :, i, j] = torch.where(rows.unsqueeze(1), logits, logits_out[:, :, i, j])


# -- the cached sampler ------------------------------------------------------------------------


@dataclass
class _Conv:
    """A folded causal conv split into its rows-above taps and its current-row (left) taps, with a
    rolling window ``(B, C_in, k, W + 2p)`` (channels-last memory) over its input's last k rows."""

    above: torch.Tensor  # (O, (k-1) * k * I): taps of rows i-k+1 .. i-1, ordered (ky, kx, I)
    left: torch.Tensor  # (O, p * I): taps (i, j-p) .. (i, j-1), ordered (kx, I)
    bias: torch.Tensor
    k: int
    window: torch.Tensor

    @classmethod
    def of(cls, conv: CausalConv2d, batch: int, width: int) -> "_Conv":
        params = conv.conv.conv
        w = params.weight().detach()  # masked and folded
        o, i, k, _ = w.shape
        window = torch.zeros(batch, i, k, width + 2 * (k // 2), device=w.device, dtype=w.dtype)
        return cls(
            above=w[:, :, : k - 1].permute(0, 2, 3, 1).reshape(o, -1).contiguous(),
            left=w[:, :, k - 1, : k // 2].permute(0, 2, 1).reshape(o, -1).contiguous(),
            bias=params.bias.detach(),
            k=k,
            window=window.contiguous(memory_format=torch.channels_last),
        )

    def start_row(self) -> torch.Tensor:
        """Roll the window one row down; return the rows-above part + bias ``(B, W, O)``
        (as one matrix product over the unfolded rows: faster than a conv this thin)."""
        win, k = self.window, self.k
        win[:, :, :-1] = win[:, :, 1:].clone()
        win[:, :, -1] = 0
        rows = win.permute(0, 2, 3, 1)[:, :-1]  # (B, k-1, W + 2p, I), contiguous in I
        taps = rows.unfold(2, k, 1).permute(0, 2, 1, 4, 3)  # (B, W, k-1, k, I)
        return torch.addmm(self.bias, taps.reshape(-1, self.above.shape[1]), self.above.t()
                           ).view(win.shape[0], -1, self.above.shape[0])

    def left_part(self, x: torch.Tensor, a: int, b: int) -> torch.Tensor:
        """Store input ``x`` ``(B, L, I)`` for columns ``a..b-1`` and return the current-row part
        of the output there ``(B, L, O)`` (which needs the inputs left of each column)."""
        p = self.k // 2
        row = self.window[:, :, -1]  # (B, I, W + 2p), channels-last memory
        row[:, :, a + p : b + p] = x.transpose(1, 2)
        cols = row[:, :, a : b + p - 1].transpose(1, 2)  # (B, L + p - 1, I)
        if b - a == 1:
            taps = cols.reshape(x.shape[0], 1, -1)
        else:
            taps = cols.unfold(1, p, 1).transpose(2, 3).reshape(x.shape[0], b - a, -1)
        return F.linear(taps, self.left)


def _pointwise(block: GatedResBlock):
    """Folded 1x1 weights of a gated residual block."""
    fold = lambda m: (m.conv.weight().detach().flatten(1), m.conv.bias.detach())  # noqa: E731
    aux = fold(block.aux_conv) if hasattr(block, "aux_conv") else None
    return fold(block.conv1), fold(block.conv2), aux


def _gated(weights, x: torch.Tensor, aux: torch.Tensor | None = None) -> torch.Tensor:
    """A 1x1 gated residual block on channels-last features ``(B, L, C)``."""
    (w1, b1), (w2, b2), wa = weights
    h = F.linear(F.elu(x), w1, b1)
    if aux is not None:
        h = h + F.linear(F.elu(aux), *wa)
    return F.glu(F.linear(F.elu(h), w2, b2), -1) + x


class _Res:
    """Cached state of one causal gated residual block."""

    def __init__(self, block: GatedResBlock, batch: int, width: int):
        self.conv1 = _Conv.of(block.conv1, batch, width)
        self.conv2 = _Conv.of(block.conv2, batch, width)
        self.cond = block.condition.conv.weight().detach().flatten(1) if hasattr(block, "condition") else None
        self.row1 = self.row2 = None

    def start_row(self, cond_row: torch.Tensor | None) -> None:
        self.row1 = self.conv1.start_row()
        self.row2 = self.conv2.start_row()
        if self.cond is not None:
            self.row2 = self.row2 + F.linear(cond_row, self.cond)

    def __call__(self, x: torch.Tensor, a: int, b: int) -> torch.Tensor:
        h = self.row1[:, a:b] + self.conv1.left_part(F.elu(x), a, b)
        g = self.row2[:, a:b] + self.conv2.left_part(F.elu(h), a, b)
        return F.glu(g, -1) + x


class _Attention:
    """Cached state of a block's attention: folded weights and the key/value cache."""

    def __init__(self, block, batch: int, n_pos: int):
        att = block.causal_attention
        fold = lambda m: (m.weight().detach(), m.bias.detach())  # noqa: E731
        self.q, self.k, self.v = fold(att.query), fold(att.key), fold(att.value)
        self.key_rb, self.query_rb = _pointwise(block.key_resblock), _pointwise(block.query_resblock)
        self.out_rb = _pointwise(block.out_resblock)
        self.n_head, self.dim_head = att.n_head, att.dim_head
        dev = self.q[0].device
        self.keys = torch.zeros(batch, att.n_head, n_pos, att.dim_head, device=dev)
        self.values = torch.zeros_like(self.keys)

    def _heads(self, x, wb):
        y = F.linear(x, *wb)
        return y.view(x.shape[0], x.shape[1], self.n_head, self.dim_head).transpose(1, 2)

    def __call__(self, inp, out, bg, p0: int) -> torch.Tensor:
        """Attention output for positions ``p0 .. p0+L-1`` (flat raster indices)."""
        n = out.shape[1]
        key = _gated(self.key_rb, torch.cat([inp, out, bg], -1))
        query = _gated(self.query_rb, torch.cat([out, bg], -1))
        self.keys[:, :, p0 : p0 + n] = self._heads(key, self.k)
        self.values[:, :, p0 : p0 + n] = self._heads(key, self.v)
        q = self._heads(query, self.q)
        scores = q @ self.keys[:, :, : p0 + n].transpose(2, 3) / math.sqrt(self.dim_head)
        qpos = torch.arange(p0, p0 + n, device=q.device).unsqueeze(1)
        earlier = torch.arange(p0 + n, device=q.device).unsqueeze(0) < qpos
        attn = torch.softmax(scores.masked_fill(~earlier, -1e4), dim=3)
        attn = attn * (qpos > 0).to(attn.dtype)
        att_out = (attn @ self.values[:, :, : p0 + n]).transpose(1, 2).reshape(out.shape[0], n, -1)
        return _gated(self.out_rb, out, aux=att_out)


class CachedSampler:
    """Per-layer caches for one batch of code maps; see the module docstring.

    Call :meth:`start_row` at the start of every row (in order, from row 0), then :meth:`advance`
    over the row's columns left to right (any segments; a segment's codes must be known except
    its last one); :meth:`logits` turns the features of a segment into per-code logits.
    """

    def __init__(self, model: PixelSNAIL, codes: torch.Tensor, condition: torch.Tensor | None):
        b, h, w = codes.shape
        self.model, self.n_class = model, model.n_class
        kh_h, kw_h = model.horizontal.kernel  # (k//2, k)
        kh_v, kw_v = model.vertical.kernel  # ((k+1)//2, k//2)
        self.up = max(kh_h, kh_v - 1)  # rows above that the stem reads
        self.left = kw_h // 2  # columns left (and right) that the stem reads
        pad_code = model.n_class  # an index whose embedding is zero
        self.codes = torch.full((b, h + self.up, w + 2 * self.left), pad_code, dtype=torch.long,
                                device=codes.device)
        self.codes[:, self.up :, self.left : self.left + w] = codes
        self.hor = self._tables(model.horizontal)  # (kh, kw, n_class + 1, C)
        self.ver = self._tables(model.vertical)
        self.hor_bias = model.horizontal.conv.conv.bias.detach()
        self.ver_bias = model.vertical.conv.conv.bias.detach()
        self.bg = model.background[0].permute(1, 2, 0)  # (H, W, 2)
        self.cond = None
        if model.conditioned:
            self.cond = model.condition_map(condition).permute(0, 2, 3, 1).contiguous()
        self.blocks = []
        for block in model.blocks:
            res = [_Res(rb, b, w) for rb in block.resblocks]
            att = _Attention(block, b, h * w) if block.attention else None
            out = None if block.attention else (block.out.conv.weight().detach().flatten(1),
                                                 block.out.conv.bias.detach())
            self.blocks.append((res, att, out))
        self.head = [_pointwise(m) for m in model.out if isinstance(m, GatedResBlock)]
        self.head_out = (model.out[-1].conv.weight().detach().flatten(1), model.out[-1].conv.bias.detach())
        self.width, self.row = w, -1

    @staticmethod
    def _tables(conv: CausalConv2d) -> torch.Tensor:
        """A conv over one-hot codes as embedding tables ``(kh, kw, n_class + 1, C)``."""
        w = conv.conv.conv.weight().detach()  # (C, n_class, kh, kw)
        tables = w.permute(2, 3, 1, 0)
        return torch.cat([tables, torch.zeros_like(tables[:, :, :1])], 2)

    def _embed_sum(self, tables, rows, cols_from: int, a: int, b: int):
        """Sum over taps (ky, kx) of ``tables[ky, kx][code(row ky, col j + kx - left)]``."""
        out = 0
        for ky, r in enumerate(rows):
            for kx in range(tables.shape[1]):
                idx = self.codes[:, r, a + kx + cols_from : b + kx + cols_from]
                out = out + F.embedding(idx, tables[ky, kx])
        return out

    def start_row(self, i: int) -> None:
        """Compute everything row ``i`` needs from the rows above it."""
        assert i == self.row + 1, "rows must be started in order"
        self.row, w, up = i, self.width, self.up
        kh_h, kh_v = self.hor.shape[0], self.ver.shape[0]
        # horizontal stem: rows i-kh_h .. i-1 (after its shift down), columns j-left .. j+left
        stem = self._embed_sum(self.hor, [i + up - kh_h + t for t in range(kh_h)], 0, 0, w)
        if i > 0:
            stem = stem + self.hor_bias
        # vertical stem, rows above: rows i-kh_v+1 .. i-1, columns j-kw_v .. j-1
        col0 = self.left - self.ver.shape[1]
        above = [i + up - kh_v + 1 + t for t in range(kh_v - 1)]
        stem = stem + self._embed_sum(self.ver[:-1], above, col0, 0, w)
        ver_bias = stem.new_zeros(w, stem.shape[-1])
        ver_bias[1:] = self.ver_bias
        self.stem_row = stem + ver_bias
        cond_row = self.cond[:, i] if self.cond is not None else None
        for res, _, _ in self.blocks:
            for r in res:
                r.start_row(cond_row)

    def advance(self, a: int, b: int) -> torch.Tensor:
        """Features ``(B, b-a, C)`` of columns ``a..b-1`` of the current row, through every block."""
        i = self.row
        col0 = self.left - self.ver.shape[1]
        x = self.stem_row[:, a:b] + self._embed_sum(self.ver[-1:], [i + self.up], col0, a, b)
        bg = self.bg[i, a:b].expand(x.shape[0], b - a, 2)
        for res, att, out in self.blocks:
            inp = x
            for r in res:
                x = r(x, a, b)
            if att is not None:
                x = att(inp, x, bg, i * self.width + a)
            else:
                x = F.linear(torch.cat([x, bg], -1), *out)
        return x

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Head: features ``(B, L, C)`` -> logits ``(B, L, n_class)``."""
        for weights in self.head:
            x = _gated(weights, x)
        return F.linear(F.elu(x), *self.head_out)

    def set_codes(self, j: int, values: torch.Tensor) -> None:
        self.codes[:, self.row + self.up, j + self.left] = values


@torch.no_grad()
def sample(model: PixelSNAIL, codes: torch.Tensor, mask: torch.Tensor | None = None,
           condition: torch.Tensor | None = None, temperature: float = 1.0,
           generator: torch.Generator | None = None, return_logits: bool = False):
    """Resample ``codes`` ``(B, H, W)`` where ``mask`` (``(H, W)`` or ``(B, H, W)``, default:
    everywhere) is true, with the cached sampler. Codes elsewhere are kept; sampled codes are
    conditioned on every code before them in raster order (and on ``condition``, the top codes,
    for a conditioned prior). Randomness comes only from ``generator`` (CPU).

    Returns the new codes (and, with ``return_logits``, the logits used at every sampled
    position, NaN elsewhere, ``(B, n_class, H, W)``).
    """
    _check(model, codes, condition, temperature)
    model.eval()
    mask = _full_mask(codes, mask)
    rows = mask.any(0).any(1).nonzero().flatten().tolist()
    codes = codes.clone()
    logits_out = _logit_store(codes, model.n_class, return_logits)
    if not rows:
        return (codes, logits_out) if return_logits else codes
    state = CachedSampler(model, codes, condition)
    for i in range(rows[-1] + 1):
        state.start_row(i)
        cols = mask[:, i].any(0).nonzero().flatten().tolist()
        if not cols:
            state.advance(0, codes.shape[2])
            continue
        noise = _gumbel(len(cols), codes.shape[0], model.n_class, generator).to(codes.device)
        done = 0
        for step, j in enumerate(cols):
            if j > done:  # known codes up to j-1: one segment
                state.advance(done, j)
            logits = state.logits(state.advance(j, j + 1))[:, 0]
            _draw(codes, logits, noise[step], mask[:, i, j], i, j, temperature, logits_out)
            state.set_codes(j, codes[:, i, j])
            done = j + 1
        if done < codes.shape[2] and i < rows[-1]:
            state.advance(done, codes.shape[2])
    return (codes, logits_out) if return_logits else codes
