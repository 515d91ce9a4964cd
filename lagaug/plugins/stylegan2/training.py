"""Training a StyleGAN2: the non-saturating logistic loss, lazy R1 regularisation of the
discriminator, optional path-length regularisation and style mixing, and the moving-average
generator ``g_ema`` used for everything after training.

Real images come from :func:`real_batches`: the unlabelled pool streamed batch by batch (as
DAPPER trains on a large unlabelled *source* set), with a share of every batch taken from the
labelled training images, or the training images alone when there is no pool.

All randomness comes from one generator (a CPU ``torch.Generator``; a device generator seeded
from it when the models run elsewhere). Images here are in the model range ``[-1, 1]``.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from torch.nn import functional as F

from lagaug.plugins.stylegan2.networks import Discriminator, Generator, randn


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` images -> ``[-1, 1]``."""
    return images * 2 - 1


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """Model output -> ``[0, 1]`` images (clamped)."""
    return ((images + 1) / 2).clamp(0, 1)


def device_generator(generator: torch.Generator, device) -> torch.Generator:
    """``generator`` itself on the CPU; elsewhere a generator on ``device`` seeded from it."""
    device = torch.device(device)
    if device.type == "cpu":
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


@dataclass
class TrainOptions:
    """Settings of one GAN training run (see ``StyleGAN2Config`` for their meaning)."""

    steps: int = 1000
    batch_size: int = 16
    lr: float = 0.002
    r1_gamma: float = 0.1
    d_reg_every: int = 16
    g_reg_every: int = 4
    path_regularize: float = 0.0
    path_batch_shrink: int = 2
    mixing: float = 0.0
    ema_kimg: float = 2.0
    ema_rampup: float = 0.05
    train_share: float = 0.5
    mirror: bool = False


@dataclass
class TrainRecord:
    """What training did: the losses (means over windows of steps) and the step count."""

    steps_done: int = 0
    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    real_score: list[float] = field(default_factory=list)
    fake_score: list[float] = field(default_factory=list)
    r1: list[float] = field(default_factory=list)
    path_penalty: list[float] = field(default_factory=list)
    resumed_from: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def real_batches(train_images: torch.Tensor | None, pool, options: TrainOptions,
                 generator: torch.Generator) -> Iterator[torch.Tensor]:
    """An endless stream of ``[0, 1]`` batches: from the pool (streamed, a new order each pass)
    with ``round(train_share * batch_size)`` images of every batch drawn from ``train_images``
    (``uint8`` or float ``(N, C, H, W)``); from ``train_images`` alone when there is no pool."""
    bs = options.batch_size
    n_train = 0 if train_images is None else len(train_images)
    if pool is None or len(pool) == 0:
        if not n_train:
            raise ValueError("no images to train on")
        share = bs
    else:
        share = min(bs - 1, int(round(options.train_share * bs))) if n_train else 0

    def as_float(x: torch.Tensor) -> torch.Tensor:
        return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()

    def train_stream() -> Iterator[torch.Tensor]:
        while True:
            if n_train < share:  # fewer training images than a batch share: draw with repeats
                yield as_float(train_images[torch.randint(0, n_train, (share,), generator=generator)])
                continue
            order = torch.randperm(n_train, generator=generator)
            for s in range(0, n_train - share + 1, share):
                yield as_float(train_images[order[s : s + share]])

    def pool_stream() -> Iterator[torch.Tensor]:
        need = bs - share
        buffer: list[torch.Tensor] = []
        have = 0
        while True:
            empty = True
            for x in pool.iter_batches(need, generator):
                empty = False
                buffer.append(x)
                have += len(x)
                while have >= need:
                    cat = torch.cat(buffer)
                    yield cat[:need]
                    rest = cat[need:]
                    buffer, have = ([rest] if len(rest) else []), len(rest)
            if empty:
                raise ValueError("the unlabeled pool yielded no images")

    trains = train_stream() if share else None
    pools = pool_stream() if share < bs else None
    while True:
        parts = []
        if pools is not None:
            parts.append(next(pools))
        if trains is not None:
            parts.append(next(trains))
        yield torch.cat(parts)


def _requires_grad(module: torch.nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class GANTrainer:
    """One StyleGAN2 training run: ``g`` and ``d`` are trained, ``g_ema`` follows ``g``.

    :meth:`step` takes one batch of real images (``[-1, 1]``) and does one discriminator step
    (plus R1 every ``d_reg_every`` steps) and one generator step (plus the path-length penalty
    every ``g_reg_every`` steps when enabled).
    """

    def __init__(self, g: Generator, d: Discriminator, g_ema: Generator, options: TrainOptions,
                 generator: torch.Generator, device):
        self.g, self.d, self.g_ema, self.opt = g, d, g_ema, options
        self.device = torch.device(device)
        self.gen = device_generator(generator, self.device)
        self.cpu_gen = generator
        g_ratio = options.g_reg_every / (options.g_reg_every + 1) if options.path_regularize > 0 else 1.0
        d_ratio = options.d_reg_every / (options.d_reg_every + 1) if options.r1_gamma > 0 else 1.0
        self.g_optim = torch.optim.Adam(g.parameters(), lr=options.lr * g_ratio,
                                        betas=(0.0, 0.99**g_ratio), eps=1e-8)
        self.d_optim = torch.optim.Adam(d.parameters(), lr=options.lr * d_ratio,
                                        betas=(0.0, 0.99**d_ratio), eps=1e-8)
        self.step_index = 0
        self.images_seen = 0
        self.mean_path_length = 0.0
        self.g_ema.eval()
        _requires_grad(self.g_ema, False)

    # -- pieces --------------------------------------------------------------------------------
    def _latents(self, n: int) -> torch.Tensor:
        """w for ``n`` samples, ``(n, n_latent, D)``; with probability ``mixing`` two z's are
        mixed at a random layer."""
        g = self.g
        z = randn((n, g.style_dim), self.gen, self.device)
        w = g.broadcast(g.mapping(z))
        if self.opt.mixing > 0 and float(torch.rand((), generator=self.cpu_gen)) < self.opt.mixing:
            cut = int(torch.randint(1, g.n_latent, (), generator=self.cpu_gen))
            w2 = g.broadcast(g.mapping(randn((n, g.style_dim), self.gen, self.device)))
            w = torch.cat([w[:, :cut], w2[:, cut:]], dim=1)
        return w

    def _fake(self, n: int) -> torch.Tensor:
        return self.g.synthesis(self._latents(n), generator=self.gen)

    def _maybe_mirror(self, x: torch.Tensor) -> torch.Tensor:
        if not self.opt.mirror:
            return x
        flip = torch.rand(x.shape[0], generator=self.cpu_gen) < 0.5
        return torch.where(flip.to(x.device).view(-1, 1, 1, 1), x.flip(3), x)

    # -- one step ------------------------------------------------------------------------------
    def step(self, real: torch.Tensor) -> dict[str, float]:
        opt, g, d = self.opt, self.g, self.d
        real = self._maybe_mirror(real.to(self.device))
        n = real.shape[0]
        out: dict[str, float] = {}
        g.train()
        d.train()

        # discriminator: softplus(D(fake)) + softplus(-D(real))
        _requires_grad(g, False)
        _requires_grad(d, True)
        with torch.no_grad():
            fake = self._fake(n)
        fake_pred, real_pred = d(fake), d(real)
        d_loss = F.softplus(fake_pred).mean() + F.softplus(-real_pred).mean()
        self.d_optim.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_optim.step()
        out.update(d_loss=float(d_loss.detach()), real_score=float(real_pred.detach().mean()),
                   fake_score=float(fake_pred.detach().mean()))

        # lazy R1: gamma / 2 * |grad_x D(x)|^2 on real images, every d_reg_every steps
        if opt.r1_gamma > 0 and self.step_index % opt.d_reg_every == 0:
            real_r1 = real.detach().requires_grad_(True)
            pred = d(real_r1)
            (grad,) = torch.autograd.grad(pred.sum(), real_r1, create_graph=True)
            r1 = grad.pow(2).flatten(1).sum(1).mean()
            self.d_optim.zero_grad(set_to_none=True)
            (opt.r1_gamma / 2 * r1 * opt.d_reg_every + 0 * pred[0, 0]).backward()
            self.d_optim.step()
            out["r1"] = float(r1.detach())

        # generator: softplus(-D(G(z)))
        _requires_grad(g, True)
        _requires_grad(d, False)
        g_loss = F.softplus(-d(self._fake(n))).mean()
        self.g_optim.zero_grad(set_to_none=True)
        g_loss.backward()
        self.g_optim.step()
        out["g_loss"] = float(g_loss.detach())

        # lazy path-length regularisation
        if opt.path_regularize > 0 and self.step_index % opt.g_reg_every == 0:
            out["path_penalty"] = self._path_step(max(1, n // opt.path_batch_shrink))
        _requires_grad(d, True)

        self.images_seen += n
        self._update_ema(n)
        self.step_index += 1
        return out

    def _path_step(self, n: int) -> float:
        """Penalise the deviation of |J_w^T y| (y: unit-variance image noise / sqrt(pixels)) from
        its running mean, so a fixed-size step in W moves the image by a fixed amount."""
        g = self.g
        z = randn((n, g.style_dim), self.gen, self.device)
        w = g.mapping(z).unsqueeze(1).repeat(1, g.n_latent, 1)
        img = g.synthesis(w, generator=self.gen)
        y = randn(img.shape, self.gen, self.device) / math.sqrt(img.shape[2] * img.shape[3])
        (grad,) = torch.autograd.grad((img * y).sum(), w, create_graph=True)
        lengths = torch.sqrt(grad.pow(2).sum(2).mean(1))
        mean = self.mean_path_length + 0.01 * (float(lengths.detach().mean()) - self.mean_path_length)
        penalty = (lengths - mean).pow(2).mean()
        self.mean_path_length = mean
        self.g_optim.zero_grad(set_to_none=True)
        (self.opt.path_regularize * self.opt.g_reg_every * penalty + 0 * img[0, 0, 0, 0]).backward()
        self.g_optim.step()
        return float(penalty.detach())

    @torch.no_grad()
    def _update_ema(self, batch: int) -> None:
        """g_ema <- beta * g_ema + (1 - beta) * g, beta = 0.5 ** (batch / half-life in images);
        the half-life ramps up with the images seen (``ema_rampup``)."""
        half_life = self.opt.ema_kimg * 1000
        if self.opt.ema_rampup > 0:
            half_life = min(half_life, self.images_seen * self.opt.ema_rampup)
        beta = 0.5 ** (batch / max(half_life, 1e-8))
        for p_ema, p in zip(self.g_ema.parameters(), self.g.parameters()):
            p_ema.lerp_(p.detach(), 1 - beta)
        for b_ema, b in zip(self.g_ema.buffers(), self.g.buffers()):
            b_ema.copy_(b)

    # -- checkpoints ---------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for name, module in (("g", self.g), ("d", self.d), ("g_ema", self.g_ema)):
            for k, v in module.state_dict().items():
                out[f"{name}.{k}"] = v.detach().cpu().contiguous()
        for name, optim in (("g_optim", self.g_optim), ("d_optim", self.d_optim)):
            for idx, state in optim.state_dict()["state"].items():
                for k, v in state.items():
                    out[f"{name}.{idx}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
        out["rng.cpu"] = self.cpu_gen.get_state()
        if self.gen is not self.cpu_gen:
            out["rng.device"] = self.gen.get_state()
        return out

    def state_meta(self) -> dict[str, Any]:
        return {"step": self.step_index, "images_seen": self.images_seen,
                "mean_path_length": self.mean_path_length}

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        for name, module in (("g", self.g), ("d", self.d), ("g_ema", self.g_ema)):
            prefix = name + "."  # "g." matches neither "g_ema." nor "g_optim."
            module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        for name, optim in (("g_optim", self.g_optim), ("d_optim", self.d_optim)):
            sd = optim.state_dict()
            params = sd["param_groups"][0]["params"]
            state = {}
            for idx in params:
                prefix = f"{name}.{idx}."
                entry = {k[len(prefix):]: v.to(self.device) if k[len(prefix):] != "step" else v
                         for k, v in tensors.items() if k.startswith(prefix)}
                if entry:
                    state[idx] = entry
            sd["state"] = state
            optim.load_state_dict(sd)
        self.cpu_gen.set_state(tensors["rng.cpu"])
        if "rng.device" in tensors and self.gen is not self.cpu_gen:
            self.gen.set_state(tensors["rng.device"])
        self.step_index = int(meta["step"])
        self.images_seen = int(meta["images_seen"])
        self.mean_path_length = float(meta["mean_path_length"])


def save_checkpoint(directory: Path, trainer: GANTrainer, fingerprint: str) -> None:
    """Write the training state to ``directory`` (safetensors + JSON, each written atomically)."""
    from lagaug.core.store.atomic import atomic_save_safetensors, atomic_write_text

    atomic_save_safetensors(directory / "train_state.safetensors", trainer.state_tensors())
    atomic_write_text(directory / "train_state.json",
                      json.dumps({**trainer.state_meta(), "fingerprint": fingerprint}) + "\n")


def load_checkpoint(directory: Path, trainer: GANTrainer, fingerprint: str) -> bool:
    """Resume ``trainer`` from ``directory`` when it holds a state of the same configuration."""
    from safetensors.torch import load_file

    meta_path, weights = directory / "train_state.json", directory / "train_state.safetensors"
    if not (meta_path.is_file() and weights.is_file()):
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if meta.get("fingerprint") != fingerprint:
        return False
    trainer.load_state(load_file(str(weights)), meta)
    return True


def train_gan(g: Generator, d: Discriminator, batches: Iterator[torch.Tensor], options: TrainOptions,
              generator: torch.Generator, device, *, advance=None, checkpoint_dir: Path | None = None,
              checkpoint_every: int = 0, fingerprint: str = "", log_every: int = 50
              ) -> tuple[Generator, TrainRecord]:
    """Train ``g`` against ``d`` for ``options.steps`` steps on ``batches`` (``[0, 1]`` images);
    return ``g_ema`` and the record. With ``checkpoint_dir`` the state is saved every
    ``checkpoint_every`` steps, and a run finds and continues a saved state of the same
    ``fingerprint`` (the pool's order restarts then, so a resumed run is not bit-identical)."""
    device = torch.device(device)
    g.to(device)
    d.to(device)
    g_ema = copy.deepcopy(g).to(device)
    trainer = GANTrainer(g, d, g_ema, options, generator, device)
    record = TrainRecord()
    if checkpoint_dir is not None and load_checkpoint(checkpoint_dir, trainer, fingerprint):
        record.resumed_from = trainer.step_index
        if advance is not None:
            advance(trainer.step_index, status=f"resumed at step {trainer.step_index}")
    window: dict[str, list[float]] = {}

    def flush() -> None:
        for key, values in window.items():
            getattr(record, key).append(sum(values) / len(values))
        window.clear()

    while trainer.step_index < options.steps:
        losses = trainer.step(to_model_range(next(batches)))
        for key, value in losses.items():
            window.setdefault(key, []).append(value)
        if trainer.step_index % log_every == 0 or trainer.step_index == options.steps:
            flush()
        if advance is not None:
            advance(1, status=f"d {losses['d_loss']:.3f} g {losses['g_loss']:.3f}")
        if (checkpoint_dir is not None and checkpoint_every > 0
                and trainer.step_index % checkpoint_every == 0 and trainer.step_index < options.steps):
            save_checkpoint(checkpoint_dir, trainer, fingerprint)
    flush()
    record.steps_done = trainer.step_index
    g_ema.eval()
    return g_ema, record
