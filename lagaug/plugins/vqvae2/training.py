"""Training pieces for the ``vqvae2`` method: VQ-VAE-2 steps, code extraction, prior training with
per-epoch checkpoints and the automatic checkpoint choice.

Every function takes its randomness from a CPU ``torch.Generator`` and its device from the caller.
Images here are already normalised to ``[-1, 1]``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
from torch.nn import functional as F

from lagaug.core.runtime import adam
from lagaug.plugins.vqvae2.layers import set_dropout_generator
from lagaug.plugins.vqvae2.pixelsnail import PixelSNAIL
from lagaug.plugins.vqvae2.vqvae import VQVAE2


#: images per batch of the VQ-VAE's passes outside training (codes, reconstructions, decoding): at
#: 32 px with the full-resolution bottom map a batch of 64 raised the fit's peak memory by ~200 MB
EVAL_BATCH = 16


def resolve_precision(precision: str, device) -> str:
    """``bf16`` or ``fp32``: ``auto`` is bf16 where the hardware computes it natively (a CPU with
    bf16 instructions, a CUDA GPU that supports it), else fp32."""
    if precision != "auto":
        return precision
    dev = torch.device(device)
    if dev.type == "cpu":
        ok = torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    else:
        ok = dev.type == "cuda" and torch.cuda.is_bf16_supported()
    return "bf16" if ok else "fp32"


def autocast(device, precision: str):
    """The training steps' autocast context: bf16 mixed precision, or nothing (fp32)."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` images -> the ``[-1, 1]`` range the reference models use."""
    return images * 2 - 1


def random_crops(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A ``size`` x ``size`` crop of every image of ``x`` ``(B, C, H, W)``, each at a random place
    drawn from ``generator`` (``size`` 0 or the image's own: the images as they are)."""
    b, c, h, w = x.shape
    if size <= 0 or (size >= h and size >= w):
        return x
    ys = torch.randint(0, h - size + 1, (b,), generator=generator).tolist()
    xs = torch.randint(0, w - size + 1, (b,), generator=generator).tolist()
    return torch.stack([x[i, :, y : y + size, x0 : x0 + size] for i, (y, x0) in enumerate(zip(ys, xs))])


def lr_factor(step: int, total: int, schedule: str) -> float:
    """The learning rate's multiplier at ``step`` of ``total``: 1 (``constant``), or a half cosine
    from 1 down to 0.05 (``cosine``)."""
    if schedule == "constant" or total <= 1:
        return 1.0
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


def batches(n: int, batch_size: int, generator: torch.Generator, shuffle: bool = True):
    """Index batches over ``range(n)`` (a permutation drawn from ``generator`` when shuffling)."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    return [order[s : s + batch_size] for s in range(0, n, batch_size)]


# -- VQ-VAE-2 ----------------------------------------------------------------------------------


@torch.no_grad()
def init_codebooks(model: VQVAE2, x: torch.Tensor, generator: torch.Generator) -> None:
    """Set both codebooks to encoder outputs of ``x`` picked at random (data-dependent start:
    a random normal codebook far from the encoder's outputs leaves most codes unused)."""

    def pick(vectors: torch.Tensor, n: int) -> torch.Tensor:
        idx = torch.randint(0, vectors.shape[0], (n,), generator=generator)
        return vectors[idx.to(vectors.device)].t()

    model.eval()
    enc_b = model.enc_b(x)
    z_t = model.quantize_conv_t(model.enc_t(enc_b)).permute(0, 2, 3, 1)
    model.quantize_t.set_codebook(pick(z_t.reshape(-1, z_t.shape[-1]), model.n_embed))
    quant_t, _, _ = model.quantize_t(z_t)
    joint = torch.cat([model.dec_t(quant_t.permute(0, 3, 1, 2)), enc_b], 1)
    z_b = model.quantize_conv_b(joint).permute(0, 2, 3, 1)
    model.quantize_b.set_codebook(pick(z_b.reshape(-1, z_b.shape[-1]), model.n_embed))


def recon_error(out: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    return F.l1_loss(out, x) if kind == "l1" else F.mse_loss(out, x)


def vqvae_step(model: VQVAE2, opt: torch.optim.Optimizer, x: torch.Tensor, commitment: float,
               kind: str, generator: torch.Generator | None = None, restart: float = 0.0,
               bottom_dropout: float = 0.0, precision: str = "fp32") -> float:
    """One optimisation step: reconstruction (L1 or MSE) + ``commitment`` * latent loss.

    ``restart > 0``: afterwards, codes used less than ``restart`` times per batch (moving average)
    move onto random encoder outputs of this batch. ``bottom_dropout > 0``: that share of the
    images is decoded from its top latents alone (bottom latents zeroed), so the top level must
    carry the image's structure (neither is in the reference; both leave the format unchanged).
    """
    model.train()
    with autocast(x.device, precision):
        quant_t, quant_b, latent, _, _ = model.encode(x)
        if bottom_dropout > 0 and generator is not None:
            drop = torch.rand(x.shape[0], generator=generator, device="cpu") < bottom_dropout
            quant_b = quant_b * (~drop).to(quant_b.device, quant_b.dtype).view(-1, 1, 1, 1)
        out = model.decode(quant_t, quant_b)
        loss = recon_error(out.float(), x, kind) + commitment * latent
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    for quantizer in (model.quantize_t, model.quantize_b):
        if restart > 0 and generator is not None:
            quantizer.restart_dead_codes(generator, restart)
        quantizer.last_input = None
    return float(loss.detach())


@torch.no_grad()
def extract_codes(model: VQVAE2, images: Iterable[torch.Tensor], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Top and bottom code maps (CPU, int64) of ``[-1, 1]`` image batches."""
    model.eval()
    tops, bottoms = [], []
    for x in images:
        *_, id_t, id_b = model.encode(x.to(device))
        tops.append(id_t.cpu())
        bottoms.append(id_b.cpu())
    return torch.cat(tops), torch.cat(bottoms)


@torch.no_grad()
def mean_recon_error(model: VQVAE2, images: torch.Tensor, device, batch_size: int = EVAL_BATCH) -> float:
    """Mean absolute error in ``[0, 1]`` pixel units of the model's reconstructions."""
    model.eval()
    total = 0.0
    for s in range(0, images.shape[0], batch_size):
        x = to_model_range(images[s : s + batch_size]).to(device)
        out, _ = model(x)
        total += float((out.clamp(-1, 1) - x).abs().sum()) / 2
    return total / images.numel()


# -- priors ------------------------------------------------------------------------------------


@dataclass
class PriorRecord:
    """What prior training did: losses, held-out NLL per epoch, and the checkpoint chosen."""

    train_loss: list[float] = field(default_factory=list)  # mean per epoch (fine-tuning)
    pretrain_loss: list[float] = field(default_factory=list)  # mean per pool epoch
    val_nll: list[float] = field(default_factory=list)
    chosen_epoch: int = 0
    criterion: str = ""

    def as_dict(self) -> dict:
        return {"train_loss": self.train_loss, "pretrain_loss": self.pretrain_loss,
                "val_nll": self.val_nll, "chosen_epoch": self.chosen_epoch,
                "criterion": self.criterion}


def prior_step(prior: PixelSNAIL, opt, codes, cond, precision: str = "fp32") -> float:
    prior.train()
    with autocast(codes.device, precision):
        loss = prior.loss(codes, cond)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


@torch.no_grad()
def prior_nll(prior: PixelSNAIL, codes: torch.Tensor, cond: torch.Tensor | None, device,
              batch_size: int = 32) -> float:
    """Mean negative log-likelihood per code (nats) of held-out ``codes``."""
    prior.eval()
    total = 0.0
    for s in range(0, codes.shape[0], batch_size):
        c = codes[s : s + batch_size].to(device)
        k = None if cond is None else cond[s : s + batch_size].to(device)
        total += float(F.cross_entropy(prior(c, k), c, reduction="sum"))
    return total / codes.numel()


def parse_checkpoint_choice(choice: str, epochs: int, option: str) -> int | None:
    """``"auto"`` -> None; ``"last"`` -> epochs; ``"N"`` -> N (1-based, checked)."""
    from lagaug.core.errors import ConfigError

    choice = str(choice).strip().lower()
    if choice == "auto":
        return None
    if choice == "last":
        return epochs
    if choice.isdigit() and 1 <= int(choice) <= epochs:
        return int(choice)
    raise ConfigError(f"--set {option}={choice!r}: expected 'auto', 'last' or an epoch number "
                      f"from 1 to {epochs}")


def train_prior(
    prior: PixelSNAIL,
    *,
    train: tuple[torch.Tensor, torch.Tensor | None],
    held_out: tuple[torch.Tensor, torch.Tensor | None] | None,
    pool_batches: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor | None]]] | None,
    pretrain_epochs: int,
    epochs: int,
    lr: float,
    batch_size: int,
    pinned: int | None,
    generator: torch.Generator,
    device,
    advance: Callable[[], None] = lambda: None,
    save_dir: Path | None = None,
    name: str = "prior",
    precision: str = "fp32",
) -> PriorRecord:
    """Pre-train ``prior`` on streamed pool codes, fine-tune it on ``train`` codes, and load the
    chosen checkpoint into it.

    ``train`` / ``held_out`` are ``(codes, condition)`` (condition None for the top prior). After
    every fine-tuning epoch the held-out NLL is measured and the weights are kept as a checkpoint
    (written to ``save_dir`` when given). The **chosen checkpoint** is ``pinned`` (an epoch
    number) when set, else the epoch with the lowest held-out NLL, else (no held-out codes) the
    last epoch. ``advance`` is called after every optimisation step (progress).
    """
    prior.to(device)
    set_dropout_generator(prior, generator)
    opt = adam(prior.parameters(), lr=lr)
    record = PriorRecord()
    for _ in range(pretrain_epochs if pool_batches is not None else 0):
        losses = []
        for codes, cond in pool_batches():
            losses.append(prior_step(prior, opt, codes.to(device), None if cond is None else cond.to(device),
                                     precision))
            advance()
        record.pretrain_loss.append(sum(losses) / max(len(losses), 1))
    codes, cond = train
    best, best_nll, kept = None, math.inf, None
    for epoch in range(1, epochs + 1):
        losses = []
        for idx in batches(codes.shape[0], batch_size, generator):
            c = codes[idx].to(device)
            k = None if cond is None else cond[idx].to(device)
            losses.append(prior_step(prior, opt, c, k, precision))
            advance()
        record.train_loss.append(sum(losses) / max(len(losses), 1))
        if held_out is not None and held_out[0].shape[0] > 0:
            nll = prior_nll(prior, held_out[0], held_out[1], device, batch_size)  # small batches: a small peak of memory
            record.val_nll.append(nll)
            if nll < best_nll:
                best, best_nll = copy.deepcopy(prior.state_dict()), nll
                record.chosen_epoch = epoch
        if epoch == pinned:
            kept = copy.deepcopy(prior.state_dict())
        if save_dir is not None:
            from lagaug.core.store.atomic import atomic_save_safetensors

            atomic_save_safetensors(save_dir / f"{name}_epoch_{epoch:03d}.safetensors", prior.state_dict())
    if pinned is not None:
        record.chosen_epoch, record.criterion = pinned, "pinned by the user"
        prior.load_state_dict(kept)
    elif best is not None:
        record.criterion = "lowest held-out NLL"
        prior.load_state_dict(best)
    else:
        record.chosen_epoch, record.criterion = epochs, "last epoch (no held-out codes)"
    set_dropout_generator(prior, None)
    prior.eval()
    return record
