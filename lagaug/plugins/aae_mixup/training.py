"""Training and measuring the adversarial autoencoder of ``aae-mixup``.

Every batch takes three steps (Makhzani et al. 2016, Sec. 2):

1. **reconstruction** — encoder and decoder minimise the mean squared error (the L2 loss of Liu et
   al. 2018);
2. **discriminator** — tells prior samples (label 1) from codes of the batch (label 0), with the
   logistic loss; optionally an R1 gradient penalty ``gp / 2 * |grad D(z_prior)|^2`` (Mescheder et
   al. 2018), which keeps the discriminator smooth where the prior lives;
3. **encoder (generator)** — the non-saturating loss ``-log D(E(x))``: the encoder moves its codes
   to where the discriminator sees the prior.

Under the uniform prior steps 1 and 3 add :meth:`AAE.outside`, which pulls codes that left the
box back in (the clamp to the box passes them no gradient).

Randomness (batch order, prior samples) comes from the ``torch.Generator`` passed in; the device
from the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch.nn import functional as F

from lagaug.plugins.aae_mixup.model import AAE, LatentDiscriminator, prior_std, sample_prior

_CHUNK = 512  # images per forward pass when measuring


class AAETrainer:
    """The three optimisers of an AAE and one training step over a batch."""

    def __init__(self, model: AAE, disc: LatentDiscriminator, *, lr: float, adv_lr: float, disc_lr: float,
                 gp: float, generator: torch.Generator):
        self.model, self.disc, self.gp, self.generator = model, disc, gp, generator
        self.opt_ae = torch.optim.Adam(model.parameters(), lr=lr)
        self.opt_d = torch.optim.Adam(disc.parameters(), lr=disc_lr, betas=(0.5, 0.9))
        self.opt_g = torch.optim.Adam(model.encoder.parameters(), lr=adv_lr, betas=(0.5, 0.9))

    def step(self, x: torch.Tensor) -> dict[str, float]:
        """One reconstruction, one discriminator and one encoder step on ``x``; their losses."""
        model, disc = self.model, self.disc
        model.train()
        disc.train()
        u = model.pre_code(x)
        rec = F.mse_loss(model.decode(model.bound(u)), x)
        self.opt_ae.zero_grad(set_to_none=True)
        (rec + model.outside(u)).backward()
        self.opt_ae.step()

        with torch.no_grad():
            fake = model.encode(x)
        real = sample_prior(model.prior, len(x), model.latent_dim, self.generator).to(x.device)
        real.requires_grad_(self.gp > 0)
        d_real = disc(real)
        loss_d = F.softplus(-d_real).mean() + F.softplus(disc(fake)).mean()
        penalty = torch.zeros((), device=x.device)
        if self.gp > 0:
            (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
            penalty = grad.pow(2).sum(1).mean()
            loss_d = loss_d + self.gp / 2 * penalty
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        u = model.pre_code(x)
        loss_g = F.softplus(-disc(model.bound(u))).mean()  # non-saturating: -log D(E(x))
        self.opt_g.zero_grad(set_to_none=True)
        (loss_g + model.outside(u)).backward()
        self.opt_g.step()
        return {"recon": float(rec.detach()), "disc": float(loss_d.detach()), "gen": float(loss_g.detach()),
                "gp": float(penalty.detach())}


# -- measuring ---------------------------------------------------------------------------------


@torch.no_grad()
def encode_all(model: AAE, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Codes (CPU) of float images in [0, 1], in chunks."""
    model.eval()
    out = [model.encode(images[s : s + _CHUNK].to(device)).float().cpu() for s in range(0, len(images), _CHUNK)]
    return torch.cat(out) if out else torch.zeros(0, model.latent_dim)


@torch.no_grad()
def decode_all(model: AAE, z: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Images (CPU, [0, 1]) of codes ``z``, in chunks."""
    model.eval()
    out = [model.decode(z[s : s + _CHUNK].to(device)).float().cpu() for s in range(0, len(z), _CHUNK)]
    return torch.cat(out) if out else torch.zeros(0, *model.image_shape)


def recon_errors(model: AAE, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``(N,)``: mean squared error of every image against its reconstruction."""
    rebuilt = decode_all(model, encode_all(model, images, device), device)
    return (rebuilt - images.float().cpu()).pow(2).flatten(1).mean(1)


@torch.no_grad()
def disc_accuracy(model: AAE, disc: LatentDiscriminator, images: torch.Tensor, generator: torch.Generator,
                  device: torch.device) -> float:
    """How often the discriminator tells apart fresh prior samples and codes of ``images``
    (0.5 = chance: the codes look like the prior to it)."""
    disc.eval()
    fake = encode_all(model, images, device)
    real = sample_prior(model.prior, len(fake), model.latent_dim, generator)
    right = (disc(real.to(device)) > 0).float().sum() + (disc(fake.to(device)) <= 0).float().sum()
    return float(right.cpu()) / (2 * len(fake))


def box_fill(z: torch.Tensor, prior: str) -> dict[str, float]:
    """How the codes ``z`` fill the prior: per-dimension spread relative to the prior's
    (``spread_min`` / ``spread_mean``, 1 = the prior's), and ``corner_share``, the share of
    coordinates within 0.02 of the box's faces (U(-1, 1) puts 2% there)."""
    ratio = z.float().std(0) / prior_std(prior)
    out = {"spread_min": float(ratio.min()), "spread_mean": float(ratio.mean())}
    if prior == "uniform":
        out["corner_share"] = float((z.abs() > 0.98).float().mean())
    return out


# -- the fit loop ------------------------------------------------------------------------------


@dataclass
class FitPlan:
    """How long to train: pool passes, then epochs over the training images (at least
    ``min_steps`` steps), early-stopping after ``patience`` epochs without a better validation
    reconstruction (0 = never), counted once ``min_steps`` steps are done."""

    pretrain_epochs: int
    epochs: int
    batch_size: int
    min_steps: int
    patience: int
    history: list[dict[str, Any]] = field(default_factory=list)


def train_epochs(trainer: AAETrainer, plan: FitPlan, images: torch.Tensor,
                 pool_batches: Callable[[], Iterable[torch.Tensor]] | None, val: torch.Tensor | None,
                 device: torch.device, advance: Callable[..., None]) -> dict[str, Any]:
    """Pre-train on the pool (``pool_batches()`` yields one pass), then train on ``images``.

    ``advance(n, status=...)`` reports progress (one unit per step). Keeps the last weights (an
    adversarial fit's last state is the one whose codes match the prior best). Returns the step
    counts, the last epoch's mean losses and the validation reconstruction per epoch.
    """
    gen = trainer.generator
    pre_steps = 0
    for _ in range(plan.pretrain_epochs if pool_batches is not None else 0):
        for x in pool_batches():
            losses = trainer.step(x.to(device))
            pre_steps += 1
            advance(1, status=f"pool · recon {losses['recon']:.4f}")
    per_epoch = math.ceil(len(images) / plan.batch_size)
    steps, best, bad, epoch, last = 0, math.inf, 0, 0, {}
    for epoch in range(1, plan.epochs + 1):
        order = torch.randperm(len(images), generator=gen)
        sums: dict[str, float] = {}
        for s in range(0, len(images), plan.batch_size):
            losses = trainer.step(images[order[s : s + plan.batch_size]].to(device))
            steps += 1
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
        last = {k: v / per_epoch for k, v in sums.items()}
        status = f"recon {last['recon']:.4f} · D {last['disc']:.3f}"
        if val is not None:
            val_recon = float(recon_errors(trainer.model, val, device).mean())
            plan.history.append({"epoch": epoch, "val_recon": round(val_recon, 6)})
            status += f" · val {val_recon:.4f}"
            if val_recon < best:
                best, bad = val_recon, 0
            elif steps >= plan.min_steps:
                bad += 1
        advance(per_epoch, status=status)
        if plan.patience and bad >= plan.patience and steps >= plan.min_steps:
            advance((plan.epochs - epoch) * per_epoch, status=f"stopped early at epoch {epoch}")
            break
    return {"pretrain_steps": pre_steps, "steps": steps, "epochs_run": epoch,
            "last_losses": {k: round(v, 5) for k, v in last.items()}}
