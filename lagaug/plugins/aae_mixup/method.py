"""The ``aae-mixup`` generator method: mix two images in the latent space of an adversarial
autoencoder with a uniform prior, and label the mix softly (Liu et al. 2018).

* ``fit`` trains one :class:`~lagaug.plugins.aae_mixup.model.AAE` on all training images (after
  ``pretrain_epochs`` passes over the unlabelled pool, when one is given), alternating
  reconstruction, discriminator and encoder steps (:mod:`~lagaug.plugins.aae_mixup.training`).
  The uniform prior on the box ``[-1, 1]^d`` is the default: the encoded images fill the box,
  so linear interpolants stay where the decoder has learned to decode. ``prior=gaussian`` is the
  ablation.
* ``encode`` maps every image to its code ``z``.
* ``resample`` gives each hard image ``x_a`` ``variants`` partners ``x_b`` from ``ctx.pool`` —
  real images of another class, chosen by ``partner``
  (:mod:`~lagaug.plugins.aae_mixup.partners`) — and a weight λ in [0.5, 1]:
  ``z = λ z_a + (1 - λ) z_b``.
* ``decode`` decodes ``z``; the soft label is ``λ e_a + (1 - λ) e_b``, the sources are
  ``[row_a, row_b]`` with weights ``[λ, 1 - λ]``, and the per-image metrics ``lam``,
  ``partner_distance`` (``|z_a - z_b|``) and ``recon_error`` (mean squared error between the
  mix and its own reconstruction: how far it is from what the autoencoder reproduces) go into the
  manifest; with ``partner=confuser`` outside the loop also ``confuser_fallback`` (see below).

``partner=confuser`` needs ``ctx.probs`` (the ensemble's probabilities), which only the loop
(``lagaug augment``) has; elsewhere (``lagaug sample``, ``lagaug compare``) the partners are drawn
as by ``random``, a warning says so, and every image's ``confuser_fallback`` metric is 1.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch

from lagaug.core.contract.method import FitContext, GeneratorMethod, Latents, StageContext, Synthesis
from lagaug.core.errors import ConfigError, DataError
from lagaug.plugins.aae_mixup.model import AAE, PRIORS, LatentDiscriminator, auto_latent_dim
from lagaug.plugins.aae_mixup.partners import (
    PARTNER_RULES,
    PartnerPool,
    allowed_classes,
    check_lambda,
    choose_partners,
    draw_lambda,
)
from lagaug.plugins.aae_mixup.training import (
    AAETrainer,
    FitPlan,
    box_fill,
    decode_all,
    disc_accuracy,
    encode_all,
    recon_errors,
    train_epochs,
)

#: A fit whose reconstruction error stays above this share of the untrained network's has collapsed
#: (healthy fits end near 1%; the collapsed MNIST fit at 48%, decoding every code to black).
COLLAPSED = 0.25

STAGE_OPTIONS = ("partner", "partner_classes", "nearest_k", "lam", "alpha", "lam_range")


@dataclass
class AAEMixupConfig:
    """Settings of ``aae-mixup`` (``--set key=value``). The first group is fixed when the
    generator is fitted; the second (:data:`STAGE_OPTIONS`) may change at every sampling call.

    :ivar prior: ``uniform`` (box [-1, 1]^d, the paper's) or ``gaussian`` (N(0, I), the ablation).
    :ivar latent_dim: code size; 0 = scaled to the image (:func:`~.model.auto_latent_dim`).
    :ivar width: filters of the first conv; doubled at every stride-2 stage (at most 8x).
    :ivar feature_size: stride-2 stages are added until the feature map is at most this wide.
    :ivar disc_hidden: neurons of the discriminator's two hidden layers.
    :ivar epochs: passes over the training images (more when needed to reach ``min_steps``).
    :ivar min_steps: at least this many steps on the training images (small sets get more epochs).
    :ivar batch_size: images per step.
    :ivar lr: Adam learning rate of the reconstruction step.
    :ivar adv_lr: Adam learning rate of the encoder's adversarial step.
    :ivar disc_lr: Adam learning rate of the discriminator. Both are small on purpose. With a few
        hundred images a quicker game does harm: on the embedded data (240 images, 16-d codes)
        adv_lr 1e-4 with disc_lr 5e-4 squeezed the codes to a tenth of the box and doubled to
        quintupled the reconstruction error, and 2e-4 / 5e-4 collapsed the fit; at 5e-5 / 5e-5
        the reconstruction is as good as a plain autoencoder's, the clamp keeps the codes in the
        box, and the game only nudges them (the discriminator is a weak critic at that pace).
    :ivar gp: weight of the R1 gradient penalty on the discriminator (0 = none).
    :ivar pretrain_epochs: passes over the unlabelled pool (``--unlabeled``), when given, first.
    :ivar patience: stop after this many epochs without a better validation reconstruction,
        counted after ``min_steps`` (0 = never); the last weights are kept.
    :ivar restarts: fits from a fresh initialisation when one collapses (its reconstruction error
        above :data:`COLLAPSED` of the untrained network's); on MNIST at 250 images one fit in 15
        collapsed to black images at these adversarial rates.
    :ivar partner: ``random``, ``nearest``, ``confuser`` or ``same`` (the same-class ablation).
    :ivar partner_classes: classes partners may come from (empty = all).
    :ivar nearest_k: ``nearest`` draws among this many closest candidates (1 = the closest).
    :ivar lam: ``beta`` (λ = max(u, 1 - u), u ~ Beta(alpha, alpha)) or ``range`` (uniform in
        ``lam_range``); λ is the hard image's weight, always in [0.5, 1].
    :ivar alpha: the Beta parameter (> 0; 1 = λ uniform in [0.5, 1]).
    :ivar lam_range: ``low,high`` with 0.5 <= low <= high <= 1 (equal: a fixed λ).
    """

    prior: Literal["uniform", "gaussian"] = "uniform"
    latent_dim: int = 0
    width: int = 16
    feature_size: int = 4
    disc_hidden: int = 128
    epochs: int = 40
    min_steps: int = 1500
    batch_size: int = 32
    lr: float = 1e-3
    adv_lr: float = 5e-5
    disc_lr: float = 5e-5
    gp: float = 0.0
    pretrain_epochs: int = 1
    patience: int = 0
    restarts: int = 2
    partner: Literal["random", "nearest", "confuser", "same"] = "random"
    partner_classes: list[str] = field(default_factory=list)
    nearest_k: int = 1
    lam: Literal["beta", "range"] = "beta"
    alpha: float = 1.0
    lam_range: tuple[float, float] = (0.6, 0.9)

    def __post_init__(self) -> None:
        for key in ("width", "feature_size", "disc_hidden", "epochs", "batch_size", "nearest_k"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"aae-mixup: {key} must be at least 1, got {getattr(self, key)!r}")
        for key in ("latent_dim", "min_steps", "pretrain_epochs", "patience", "restarts"):
            if int(getattr(self, key)) < 0:
                raise ConfigError(f"aae-mixup: {key} must be 0 or more, got {getattr(self, key)!r}")
        for key in ("lr", "adv_lr", "disc_lr"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"aae-mixup: {key} must be positive, got {getattr(self, key)!r}")
        if not self.gp >= 0:
            raise ConfigError(f"aae-mixup: gp must be 0 or more, got {self.gp!r}")
        if self.prior not in PRIORS:
            raise ConfigError(f"aae-mixup: prior must be one of {', '.join(PRIORS)}, got {self.prior!r}")
        if self.partner not in PARTNER_RULES:
            raise ConfigError(f"aae-mixup: partner must be one of {', '.join(PARTNER_RULES)}, got {self.partner!r}")
        self.lam_range = check_lambda(self.lam, self.alpha, self.lam_range)
        self.partner_classes = list(self.partner_classes)


class AAEMixupMethod(GeneratorMethod):
    """One AAE for all classes; see the module docstring for the stages."""

    name: ClassVar[str] = "aae-mixup"
    description: ClassVar[str] = (
        "adversarial autoencoder with a uniform prior; mix a hard image with another class's in the "
        "latent space, soft label (Liu 2018)"
    )
    version: ClassVar[int] = 1
    Config: ClassVar[type] = AAEMixupConfig
    min_image_size: ClassVar[int] = 8
    stage_options: ClassVar[frozenset[str]] = frozenset(STAGE_OPTIONS)

    @classmethod
    def check_options(cls, config: AAEMixupConfig, image_shape, class_names) -> None:
        """``partner_classes`` must name classes of the data."""
        allowed_classes(config.partner_classes, list(class_names))

    def __init__(self, config: AAEMixupConfig, image_shape: tuple[int, int, int], class_names: list[str]):
        super().__init__(config, image_shape, class_names)
        self.latent_dim = config.latent_dim or auto_latent_dim(self.image_shape)
        self.aae, self.disc = self._networks(torch.Generator().manual_seed(0))
        self.fitted = False
        self.fit_metrics: dict[str, Any] = {}

    def _networks(self, generator: torch.Generator) -> tuple[AAE, LatentDiscriminator]:
        cfg = self.config
        aae = AAE(self.image_shape, self.latent_dim, cfg.width, cfg.feature_size, cfg.prior, generator)
        return aae, LatentDiscriminator(self.latent_dim, cfg.disc_hidden, generator)

    # -- persistence ---------------------------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        return {"aae": self.aae, "discriminator": self.disc}

    def extra_state(self) -> dict[str, Any]:
        return {"fitted": self.fitted, "fit": self.fit_metrics}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.fitted = bool(state.get("fitted", True))
        self.fit_metrics = dict(state.get("fit", {}))

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, train: Any, ctx: FitContext, unlabeled: Any = None) -> dict[str, Any]:
        """Train the AAE on ``train`` (after the unlabelled pool, when given); return metrics:
        reconstruction MSE before and after (``recon_untrained``, ``recon``, ``val_recon``), the
        discriminator's final accuracy on fresh prior samples vs training codes
        (``disc_accuracy``, 0.5 = chance), how the codes fill the prior (``spread_min``,
        ``spread_mean``, ``corner_share``), step counts and the validation history."""
        cfg, device = self.config, ctx.device
        self._check_images(train.images, "training images")
        if list(train.class_names) != self.class_names:
            raise ConfigError(f"aae-mixup: training classes {train.class_names} differ from the generator's {self.class_names}")
        allowed_classes(cfg.partner_classes, self.class_names)
        present = [self.class_names[c] for c, n in enumerate(train.class_counts()) if n > 0]
        if len(present) < 2 and cfg.partner != "same":
            raise DataError(
                f"aae-mixup mixes images of two classes, but the training images are all of class "
                f"{present[0] if present else 'none'!r}; give data with two or more classes, or --set partner=same"
            )
        unlabeled = self.usable_pool(unlabeled)
        val = ctx.val.float_images() if ctx.val is not None and len(ctx.val) else None
        if val is not None:
            self._check_images(ctx.val.images, "validation images")
        images = train.float_images()
        per_epoch = -(-len(images) // cfg.batch_size)
        failed: list[float] = []
        start = time.perf_counter()
        for attempt in range(cfg.restarts + 1):
            seed = int(torch.randint(0, 2**62, (1,), generator=ctx.generator))
            metrics, plan, g = self._fit_once(seed, images, unlabeled, val, ctx, per_epoch)
            if metrics["recon"] <= COLLAPSED * metrics["recon_untrained"]:
                break
            failed.append(metrics["recon"])
            if attempt < cfg.restarts:
                ctx.progress.log(f"aae-mixup: the autoencoder collapsed (reconstruction error "
                                 f"{metrics['recon']:.4f}, untrained {metrics['recon_untrained']:.4f}); fitting "
                                 f"again from a fresh start")
        else:  # kept, but said: its mixes are likely blank (or the fit is simply too short)
            warnings.warn(
                f"aae-mixup: the autoencoder's reconstruction error stayed at {metrics['recon']:.4f} against "
                f"{metrics['recon_untrained']:.4f} untrained in {cfg.restarts + 1} fit(s): it collapsed or is "
                f"under-trained, and its mixes will be poor; try another --seed, a smaller --set adv_lr, "
                f"more --set min_steps or --set restarts", UserWarning, stacklevel=2)
        metrics["collapsed"] = len(failed) == cfg.restarts + 1
        metrics["restarts"] = min(len(failed), cfg.restarts)
        metrics["collapsed_recon"] = failed
        metrics["disc_accuracy"] = disc_accuracy(self.aae, self.disc, images, g, device)
        metrics.update(box_fill(encode_all(self.aae, images, device), cfg.prior))
        metrics["val_history"] = plan.history
        self.fitted = True
        self.fit_metrics = dict(metrics)  # saved with the generator: no timing, so same seed, same file
        metrics["seconds"] = round(time.perf_counter() - start, 3)
        return metrics

    def _fit_once(self, seed: int, images: torch.Tensor, unlabeled: Any, val: torch.Tensor | None, ctx: FitContext,
                  per_epoch: int) -> tuple[dict[str, Any], FitPlan, torch.Generator]:
        """One fit from a fresh initialisation drawn from ``seed``."""
        cfg, device = self.config, ctx.device
        g = torch.Generator().manual_seed(seed)
        self.aae, self.disc = self._networks(g)
        self.aae.to(device)
        self.disc.to(device)
        metrics: dict[str, Any] = {"latent_dim": self.latent_dim, "prior": cfg.prior,
                                   "recon_untrained": float(recon_errors(self.aae, images, device).mean())}
        plan = FitPlan(pretrain_epochs=cfg.pretrain_epochs if unlabeled is not None else 0,
                       epochs=max(cfg.epochs, -(-cfg.min_steps // per_epoch)), batch_size=cfg.batch_size,
                       min_steps=cfg.min_steps, patience=cfg.patience)
        total = plan.epochs * per_epoch
        if unlabeled is not None:
            total += plan.pretrain_epochs * -(-len(unlabeled) // cfg.batch_size)
        trainer = AAETrainer(self.aae, self.disc, lr=cfg.lr, adv_lr=cfg.adv_lr, disc_lr=cfg.disc_lr, gp=cfg.gp,
                             generator=g)
        pool = None if unlabeled is None else (lambda: unlabeled.iter_batches(cfg.batch_size, g))
        with ctx.progress.task(f"fitting aae-mixup ({cfg.prior} prior, latent {self.latent_dim})", total=total) as task:
            metrics.update(train_epochs(trainer, plan, images, pool, val, device, task.advance))
        self.aae.eval()
        self.disc.eval()
        metrics["recon"] = float(recon_errors(self.aae, images, device).mean())
        metrics["val_recon"] = None if val is None else float(recon_errors(self.aae, val, device).mean())
        return metrics, plan, g

    # -- stages --------------------------------------------------------------------------------
    def encode(self, images: torch.Tensor, soft: torch.Tensor, ctx: StageContext) -> Latents:
        """The code ``z`` of every image."""
        self._require_fitted()
        self._check_images(images, "images to encode")
        if tuple(soft.shape) != (len(images), self.num_classes):
            raise ConfigError(f"aae-mixup: soft labels must have shape ({len(images)}, {self.num_classes}), "
                              f"got {tuple(soft.shape)}")
        z = encode_all(self.aae.to(ctx.device), images.float(), ctx.device)
        return Latents(codes={"z": z}, source=ctx.batch_rows(len(images)), soft=soft.float().cpu())

    def resample(self, latents: Latents, ctx: StageContext) -> Latents:
        """``ctx.variants`` mixes per row, each with its own partner and λ (see the module docstring)."""
        opt = self._stage_options(ctx)
        if int(ctx.variants) < 1:
            raise ConfigError(f"aae-mixup: variants must be at least 1, got {ctx.variants}")
        rows = latents.repeat(int(ctx.variants))
        pool, targets, position = self._partner_pool(latents, ctx)
        pos_a = position(rows.source[:, 0])
        labels_a = rows.soft.argmax(1)
        z_a = rows.codes["z"].float()
        allowed = allowed_classes(opt["partner_classes"], self.class_names)
        probs = None if ctx.probs is None or ctx.pool is None else torch.as_tensor(ctx.probs).cpu()
        pos_b, fallback = choose_partners(opt["partner"], pool, pos_a, labels_a, z_a, probs, allowed,
                                          opt["nearest_k"], ctx.generator)
        lam = draw_lambda(len(rows), opt["lam"], opt["alpha"], opt["lam_range"], ctx.generator)
        z_b = pool.codes(pos_b)
        mix = lambda a, b: lam[:, None] * a + (1 - lam[:, None]) * b  # noqa: E731
        codes = {"z": mix(z_a, z_b), "z_a": z_a, "z_b": z_b, "lam": lam}
        if opt["partner"] == "confuser":
            codes["confuser_fallback"] = torch.full((len(rows),), float(fallback))
            if fallback:
                ctx.progress.log("[yellow]aae-mixup: partner=confuser needs the ensemble's probabilities, which only "
                                 "`lagaug augment` has; partners were drawn at random (manifest: confuser_fallback=1)")
        source_b = pos_b if ctx.pool is not None else latents.source[:, 0][pos_b]  # pool rows
        info = {**rows.info, **{k: opt[k] for k in STAGE_OPTIONS}, "confuser_fallback": fallback}
        return Latents(codes=codes, source=torch.stack([rows.source[:, 0], source_b], 1),
                       soft=mix(rows.soft, targets[pos_b]), info=info,
                       weight=torch.stack([lam, 1 - lam], 1))

    def decode(self, latents: Latents, ctx: StageContext) -> Synthesis:
        """Images of ``z`` with the mix's soft label, sources and per-image metrics."""
        self._require_fitted()
        z = latents.codes["z"].float()
        aae = self.aae.to(ctx.device)
        images = decode_all(aae, z, ctx.device)
        metrics = {"recon_error": recon_errors(aae, images, ctx.device)}
        if "lam" in latents.codes:
            metrics["lam"] = latents.codes["lam"].float()
            metrics["partner_distance"] = (latents.codes["z_a"] - latents.codes["z_b"]).float().norm(dim=1)
        if "confuser_fallback" in latents.codes:
            metrics["confuser_fallback"] = latents.codes["confuser_fallback"].float()
        return Synthesis(images=images, soft=latents.soft, source=latents.source.clone(), metrics=metrics,
                         weight=latents.weight)

    # -- helpers -------------------------------------------------------------------------------
    def _partner_pool(self, latents: Latents, ctx: StageContext):
        """The partner candidates (:class:`PartnerPool`), their soft labels, and a function that
        maps the batch's pool rows to the candidates' positions. Without ``ctx.pool`` the batch
        is its own pool."""
        if ctx.pool is None:
            z = latents.codes["z"].float()
            rows = latents.source[:, 0]
            where = {int(r): i for i, r in enumerate(rows)}
            pool = PartnerPool(labels=latents.soft.argmax(1), real=torch.ones(len(z), dtype=torch.bool),
                               codes=lambda pos: z[pos], class_names=self.class_names,
                               ids=[f"batch row {int(r)}" for r in rows], describe="the batch (no pool was given)")
            return pool, latents.soft.float(), lambda r: torch.tensor([where[int(v)] for v in r], dtype=torch.long)
        data = ctx.pool
        if list(data.class_names) != self.class_names:
            raise ConfigError(f"aae-mixup: the pool's classes {data.class_names} differ from the generator's {self.class_names}")
        cache: dict[int, torch.Tensor] = {}

        def codes(pos: torch.Tensor) -> torch.Tensor:
            missing = sorted({int(p) for p in pos.tolist()} - cache.keys())
            if missing:
                z = encode_all(self.aae.to(ctx.device), data.float_images(missing), ctx.device)
                cache.update(zip(missing, z))
            return torch.stack([cache[int(p)] for p in pos.tolist()]) if len(pos) else torch.zeros(0, self.latent_dim)

        pool = PartnerPool(labels=data.labels, real=~data.synthetic, codes=codes, class_names=self.class_names,
                           ids=list(data.ids))
        return pool, data.targets().float(), lambda r: r.to(torch.long)

    def _stage_options(self, ctx: StageContext) -> dict[str, Any]:
        """The stage options (``ctx.options`` over the config), checked (the core refuses fit-time
        keys that differ from the fitted config: :attr:`stage_options`)."""
        opt = {key: self.option(ctx, key) for key in STAGE_OPTIONS}
        if opt["partner"] not in PARTNER_RULES:
            raise ConfigError(f"aae-mixup: partner must be one of {', '.join(PARTNER_RULES)}, got {opt['partner']!r}")
        if int(opt["nearest_k"]) < 1:
            raise ConfigError(f"aae-mixup: nearest_k must be at least 1, got {opt['nearest_k']!r}")
        opt["lam_range"] = check_lambda(opt["lam"], opt["alpha"], opt["lam_range"])
        return opt

    def _check_images(self, images: torch.Tensor, what: str) -> None:
        shape = tuple(images.shape[1:])
        if images.dim() != 4 or shape != self.image_shape:
            raise ConfigError(
                f"aae-mixup: {what} have shape {'x'.join(map(str, shape))}, but this generator is for "
                f"{'x'.join(map(str, self.image_shape))} (channels x height x width)"
            )

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise ConfigError("aae-mixup: the generator is not fitted; fit it first (lagaug fit --method aae-mixup)")
