"""The ``vae`` generator method: one convolutional VAE per class (Garay-Maestre et al., 2019).

* ``fit`` trains one :class:`~lagaug.plugins.vae.model.ConvVAE` on each class's training images,
  early-stopping on that class's validation images when a validation set is given (never the test
  set) and keeping the weights of the best validation loss;
* ``encode`` maps every image to the posterior ``(mu, logvar)`` of its class's VAE (the class is
  the argmax of its soft label);
* ``resample`` draws ``variants`` latents per image: near the posterior
  (``z = mu + posterior_scale * exp(0.5 * logvar) * eps``) or from the class prior ``N(0, I)``;
* ``decode`` runs the class VAE's decoder and labels every image with that class (one-hot).

The authors' released code had four mistakes this method does not repeat: it sampled with
exp(logvar) as sigma, averaged the KL over latent dimensions, early-stopped and chose checkpoints on
the test set, and trained its AUG+VAE arm on real images only (the last is the loop's business:
:meth:`VAEMethod.sample_class` gives it prior samples to add).

Training choices of our own (all in :class:`VAEConfig`): Adam rather than the paper's RMSprop; a
linear KL warm-up over the first steps and a floor of ``min_steps`` steps per class, because a VAE
first sits on a plateau where it decodes the class mean and early stopping must not end it there;
16 filters per conv rather than 64, so that a CPU fit takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch.nn import functional as F

from lagaug.core.config import config_to_dict
from lagaug.core.contract.method import FitContext, Latents, StageContext, Synthesis
from lagaug.core.errors import ConfigError, DataError
from lagaug.plugins.vae.model import ConvVAE, kl_divergence, reconstruction_bce, reparameterize, standard_normal
from lagaug.plugins.vae.perclass import PerClassNetworks

SAMPLING_MODES = ("posterior", "prior")
_CHUNK = 512  # images per forward pass in encode / decode


@dataclass
class VAEConfig:
    """Settings of the ``vae`` method (all can be changed with ``--set key=value``).

    :ivar latent_dim: size of the latent space (the paper found 3 best).
    :ivar epochs: training epochs per class VAE (at most; early stopping may end sooner).
    :ivar min_steps: every class VAE trains for at least this many optimisation steps: a class
        with few images gets more epochs, and early stopping never ends training sooner (VAEs
        often sit on a plateau, decoding the class mean, for the first hundred steps or so).
    :ivar batch_size: images per optimisation step.
    :ivar lr: Adam learning rate.
    :ivar beta: weight of the KL term (1 = the plain ELBO).
    :ivar channels: filters of every conv layer (the paper used 64; 16 keeps CPU fits short).
    :ivar hidden: neurons of the dense layers (the paper: 128).
    :ivar feature_size: largest side of the deepest feature map (stride-2 stages are added until
        the image is at most this small).
    :ivar sampling: ``"posterior"`` (draw near each image's posterior) or ``"prior"`` (draw from
        the class VAE's prior N(0, I)); a stage may override it with the option ``sampling``.
    :ivar posterior_scale: multiplier on the posterior sigma in ``"posterior"`` sampling
        (0 = the posterior mean; option ``posterior_scale`` overrides it per call).
    :ivar kl_warmup_steps: the KL weight rises linearly from 0 to ``beta`` over this many
        optimisation steps (KL annealing; it gets the VAE past the early phase where the decoder
        ignores the latent). Early stopping starts counting only after the warm-up.
    :ivar patience: stop a class's training after this many epochs without a better validation
        loss (0 = never stop early; the best weights are still kept).
    :ivar min_class_images: fewest training images a class needs for its VAE; ``fit`` raises
        :class:`~lagaug.DataError` naming any class with fewer.
    """

    latent_dim: int = 3
    epochs: int = 50
    min_steps: int = 250
    batch_size: int = 32
    lr: float = 1e-3
    beta: float = 1.0
    channels: int = 16
    hidden: int = 128
    feature_size: int = 8
    sampling: Literal["posterior", "prior"] = "posterior"
    posterior_scale: float = 1.0
    kl_warmup_steps: int = 100
    patience: int = 10
    min_class_images: int = 4

    def __post_init__(self) -> None:
        positive = ("latent_dim", "epochs", "batch_size", "channels", "hidden", "feature_size", "min_class_images")
        for key in positive:
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"vae: {key} must be at least 1, got {getattr(self, key)!r}")
        if not self.lr > 0:
            raise ConfigError(f"vae: lr must be positive, got {self.lr!r}")
        if min(self.beta, self.posterior_scale, self.patience, self.min_steps, self.kl_warmup_steps) < 0:
            raise ConfigError(
                "vae: beta, posterior_scale, patience, min_steps and kl_warmup_steps must not be negative"
            )
        _check_sampling(self.sampling)


def _check_sampling(mode: Any) -> str:
    if mode not in SAMPLING_MODES:
        raise ConfigError(f"vae: sampling must be one of {', '.join(SAMPLING_MODES)}, got {mode!r}")
    return mode


def _check_scale(value: Any) -> float:
    try:
        scale = float(value)
    except (TypeError, ValueError):
        scale = -1.0
    if not scale >= 0:
        raise ConfigError(f"vae: posterior_scale must be a number >= 0, got {value!r}")
    return scale


class VAEMethod(PerClassNetworks):
    """One convolutional VAE per class; see the module docstring for the stages.

    ``vaes[i]`` is the VAE of class ``class_names[i]``. Every class must be fitted: ``fit`` raises
    :class:`~lagaug.DataError` rather than leave a class without a generator, so a loaded or fitted
    method can always encode, resample and decode every class. Results are CPU tensors; the models
    run on the context's device.
    """

    name: ClassVar[str] = "vae"
    description: ClassVar[str] = (
        "one convolutional VAE per class; draw near the posterior or from the class prior (Garay-Maestre 2019)"
    )
    version: ClassVar[int] = 1
    Config: ClassVar[type] = VAEConfig
    min_image_size: ClassVar[int] = 16
    stage_options: ClassVar[frozenset[str]] = frozenset({"sampling", "posterior_scale"})

    def new_network(self, cfg: VAEConfig, generator: torch.Generator) -> ConvVAE:
        return ConvVAE(self.image_shape, cfg.latent_dim, cfg.channels, cfg.hidden, cfg.feature_size, generator)

    @classmethod
    def check_train(cls, config: VAEConfig, train: Any) -> None:
        """Every class needs ``min_class_images`` training images (one VAE per class)."""
        counts = train.class_counts()
        short = [f"{train.class_names[c]!r} has {n}" for c, n in enumerate(counts) if n < config.min_class_images]
        if short:
            raise DataError(
                f"vae fits one VAE per class and needs at least {config.min_class_images} training images "
                f"per class, but class {', '.join(short)}; add images or --set min_class_images=N"
            )

    def fit(self, train: Any, ctx: FitContext, unlabeled: Any = None) -> dict[str, Any]:
        """Train one VAE per class on ``train`` (an ImageSet); return per-class metrics.

        ``unlabeled`` is ignored: the method is class-conditional by construction and an
        unlabelled pool cannot say which class VAE an image belongs to. Validation images of a
        class (``ctx.val``) drive early stopping and checkpoint choice for that class; without
        them a VAE trains for all ``epochs`` and keeps its last weights. With ``ctx.work_dir``,
        every finished class VAE is saved there and a repeated fit with the same data, config and
        seed reuses it instead of training again.

        Returns ``{"train_loss": {class: loss}, "val_loss": {class: loss or None},
        "best_epoch": {...}, "epochs_run": {...}, "images": {...}, "seconds": s}``; losses are
        per-image negative ELBOs (nats) at the kept weights.
        """
        cfg = self.config
        self.check_images(train.images, "training images")
        if list(train.class_names) != self.class_names:
            raise ConfigError(
                f"vae: training classes {train.class_names} differ from the generator's {self.class_names}"
            )
        self.check_train(cfg, train)
        counts = train.class_counts()
        val = ctx.val if ctx.val is not None and len(ctx.val) else None
        if val is not None:
            self.check_images(val.images, "validation images")
        seeds = torch.randint(0, 2**62, (self.num_classes,), generator=ctx.generator).tolist()
        epochs = [self.class_epochs(n) for n in counts]
        start = time.perf_counter()
        per_class = {}
        with ctx.progress.task(f"fitting vae ({self.num_classes} class VAEs)", total=sum(epochs)) as task:
            for c, name in enumerate(self.class_names):
                x = train.float_images(torch.nonzero(train.labels == c).flatten())
                xv = None if val is None else val.float_images(torch.nonzero(val.labels == c).flatten())
                xv = xv if xv is not None and len(xv) else None
                per_class[name] = self._fit_class(c, x, xv, seeds[c], epochs[c], ctx, task)
                self.fitted[c] = True
        metrics = {key: {n: m[key] for n, m in per_class.items()} for key in next(iter(per_class.values()))}
        self.fit_metrics = dict(metrics)  # saved with the generator: no timing, so same seed, same file
        metrics["seconds"] = round(time.perf_counter() - start, 3)
        return metrics

    def class_epochs(self, n_images: int) -> int:
        """Epochs for a class of ``n_images``: ``epochs``, or more to reach ``min_steps`` steps."""
        cfg = self.config
        steps_per_epoch = -(-n_images // cfg.batch_size)
        return max(cfg.epochs, -(-cfg.min_steps // steps_per_epoch))

    def _fit_class(self, c: int, x: torch.Tensor, xv: torch.Tensor | None, seed: int, epochs: int,
                   ctx: FitContext, task) -> dict:
        """Train (or reuse from ``ctx.work_dir``) the VAE of class ``c``; return its summary."""
        cfg, name, device = self.config, self.class_names[c], ctx.device
        checkpoint = None
        if ctx.work_dir is not None:
            checkpoint = Path(ctx.work_dir) / f"vae_class_{c}.safetensors"
            fingerprint = self._fingerprint(c, seed, x, xv)
            summary = self._load_checkpoint(c, checkpoint, fingerprint)
            if summary is not None:
                task.advance(epochs, status=f"class {name}: reused {checkpoint.name}")
                return summary

        g = torch.Generator().manual_seed(seed)
        vae = self.new_network(self.config, g).to(device)
        self.vaes[c] = vae
        opt = torch.optim.Adam(vae.parameters(), lr=cfg.lr)
        x = x.to(device)
        if xv is not None:  # one fixed noise draw: the validation ELBO is comparable across epochs
            xv = xv.to(device)
            eps_val = standard_normal((len(xv), cfg.latent_dim), g, device)
        best = {"loss": float("inf"), "epoch": 0, "train": float("nan"), "state": None}
        bad, epoch, step = 0, 0, 0
        for epoch in range(1, epochs + 1):
            vae.train()
            order = torch.randperm(len(x), generator=g).to(device)
            total = torch.zeros(2, device=device)  # summed reconstruction and KL terms
            for s in range(0, len(x), cfg.batch_size):
                batch = x[order[s : s + cfg.batch_size]]
                step += 1
                warm = min(1.0, step / cfg.kl_warmup_steps) if cfg.kl_warmup_steps else 1.0
                loss = vae.loss(batch, g, cfg.beta * warm)
                opt.zero_grad(set_to_none=True)
                loss.total.backward()
                opt.step()
                total += torch.stack([loss.reconstruction, loss.kl]).detach() * len(batch)
            rec, kl = (total / len(x)).tolist()
            train_loss = rec + cfg.beta * kl  # the full objective, also during the KL warm-up
            status = f"class {name} · loss {train_loss:.1f}"
            if xv is None:
                best.update(loss=float("nan"), epoch=epoch, train=train_loss)
            else:
                val_loss = self._val_loss(vae, xv, eps_val)
                status += f" · val {val_loss:.1f}"
                if val_loss < best["loss"]:
                    state = {k: v.detach().clone() for k, v in vae.state_dict().items()}
                    best.update(loss=val_loss, epoch=epoch, train=train_loss, state=state)
                    bad = 0
                elif step >= cfg.kl_warmup_steps:
                    bad += 1
            task.advance(1, status=status)
            if xv is not None and cfg.patience and bad >= cfg.patience and step >= cfg.min_steps:
                task.advance(epochs - epoch, status=f"class {name}: stopped early at epoch {epoch}")
                break
        if best["state"] is not None:
            vae.load_state_dict(best["state"])
        vae.eval()
        summary = {
            "train_loss": round(best["train"], 4),
            "val_loss": None if xv is None else round(best["loss"], 4),
            "best_epoch": best["epoch"],
            "epochs_run": epoch,
            "images": len(x),
        }
        if checkpoint is not None:
            self._save_checkpoint(c, checkpoint, fingerprint, summary)
        return summary

    @torch.no_grad()
    def _val_loss(self, vae: ConvVAE, xv: torch.Tensor, eps: torch.Tensor) -> float:
        """Per-image negative ELBO (beta-weighted) of the validation images, fixed noise ``eps``."""
        vae.eval()
        total = 0.0
        for s in range(0, len(xv), _CHUNK):
            xb = xv[s : s + _CHUNK]
            mu, logvar = vae.encode(xb)
            z = mu + torch.exp(0.5 * logvar) * eps[s : s + _CHUNK]
            rec = reconstruction_bce(vae.decode_logits(z), xb)
            total += float((rec + self.config.beta * kl_divergence(mu, logvar)).sum())
        return total / len(xv)

    def _fingerprint(self, c: int, seed: int, x: torch.Tensor, xv: torch.Tensor | None) -> str:
        h = hashlib.sha256()
        meta = {"config": config_to_dict(self.config), "class": c, "seed": seed,
                "shape": self.image_shape, "version": self.version}
        h.update(json.dumps(meta, sort_keys=True).encode())
        for t in (x, xv):
            h.update(b"none" if t is None else (t * 255).round().to(torch.uint8).cpu().numpy().tobytes())
        return h.hexdigest()

    def _save_checkpoint(self, c: int, path: Path, fingerprint: str, summary: dict) -> None:
        from lagaug.core.store.atomic import atomic_save_safetensors

        atomic_save_safetensors(path, self.vaes[c].state_dict(),
                                metadata={"fingerprint": fingerprint, "summary": json.dumps(summary)})

    def _load_checkpoint(self, c: int, path: Path, fingerprint: str) -> dict | None:
        """The summary of a matching checkpoint at ``path`` (its weights loaded), else ``None``."""
        from safetensors import safe_open

        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
                if meta.get("fingerprint") != fingerprint:
                    return None
                state = {k: fh.get_tensor(k) for k in fh.keys()}
            self.vaes[c].load_state_dict(state)
            return json.loads(meta["summary"])
        except Exception:  # a damaged or foreign file: train again
            return None

    # -- stages --------------------------------------------------------------------------------
    def encode(self, images: torch.Tensor, soft: torch.Tensor, ctx: StageContext) -> Latents:
        """Posterior ``mu`` and ``logvar`` of every image under its class's VAE."""
        self.require_fitted()
        self.check_images(images, "images to encode")
        classes = self.classes_of(soft, len(images))
        n, dim = len(images), self.config.latent_dim
        mu, logvar = torch.zeros(n, dim), torch.zeros(n, dim)
        with torch.no_grad():
            for c, rows in self.class_groups(classes):
                vae = self.vaes[c].to(ctx.device).eval()
                for s in range(0, len(rows), _CHUNK):
                    idx = rows[s : s + _CHUNK]
                    m, lv = vae.encode(images[idx].float().to(ctx.device))
                    mu[idx], logvar[idx] = m.float().cpu(), lv.float().cpu()
        return Latents(codes={"mu": mu, "logvar": logvar}, source=ctx.batch_rows(n), soft=soft.float().cpu())

    def resample(self, latents: Latents, ctx: StageContext) -> Latents:
        """``ctx.variants`` new latents per row, drawn per ``sampling`` (option or config).

        Returns codes ``z`` (the draws) plus the repeated ``mu`` and ``logvar`` they came from.
        """
        sampling = _check_sampling(ctx.options.get("sampling", self.config.sampling))
        scale = _check_scale(ctx.options.get("posterior_scale", self.config.posterior_scale))
        if int(ctx.variants) < 1:
            raise ConfigError(f"vae: variants must be at least 1, got {ctx.variants}")
        rows = latents.repeat(int(ctx.variants))
        mu, logvar = rows.codes["mu"], rows.codes["logvar"]
        if sampling == "posterior":
            z = reparameterize(mu, logvar, ctx.generator, scale)
        else:
            z = standard_normal(tuple(mu.shape), ctx.generator, mu.device).to(mu.dtype)
        info = {**rows.info, "sampling": sampling, "posterior_scale": scale}
        return Latents(codes={"z": z, "mu": mu, "logvar": logvar}, source=rows.source, soft=rows.soft, info=info,
                       weight=rows.weight)

    def decode(self, latents: Latents, ctx: StageContext) -> Synthesis:
        """Images from ``z`` (or ``mu`` when not resampled) through each row's class decoder.

        Soft labels are one-hot of the row's class; ``metrics["latent_distance"]`` is ``||z - mu||``
        when ``mu`` is known.
        """
        self.require_fitted()
        z = latents.codes["z"] if "z" in latents.codes else latents.codes["mu"]
        classes = self.classes_of(latents.soft, len(z))
        images = self._decode_classes(z, classes, ctx.device)
        metrics = {}
        if "mu" in latents.codes:
            metrics["latent_distance"] = (z.float().cpu() - latents.codes["mu"].float().cpu()).norm(dim=1)
        soft = F.one_hot(classes, self.num_classes).float()
        return Synthesis(images=images, soft=soft, source=latents.source.clone(), metrics=metrics,
                         weight=latents.weight)

    def sample_class(
        self, class_index: int, n: int, generator: torch.Generator, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """``n`` images ``(n, C, H, W)`` in [0, 1] (CPU) drawn from the prior of class ``class_index``."""
        self.require_fitted()
        if not 0 <= int(class_index) < self.num_classes:
            raise ConfigError(f"vae: class index {class_index} out of range; classes: {', '.join(self.class_names)}")
        z = torch.randn((int(n), self.config.latent_dim), generator=generator, device=generator.device).cpu()
        return self._decode_classes(z, torch.full((int(n),), int(class_index)), torch.device(device))

    # -- helpers -------------------------------------------------------------------------------
    @torch.no_grad()
    def _decode_classes(self, z: torch.Tensor, classes: torch.Tensor, device: torch.device) -> torch.Tensor:
        out = torch.zeros((len(z), *self.image_shape))
        for c, rows in self.class_groups(classes):
            vae = self.vaes[c].to(device).eval()
            for s in range(0, len(rows), _CHUNK):
                idx = rows[s : s + _CHUNK]
                out[idx] = vae.decode(z[idx].float().to(device)).float().cpu()
        return out
