"""The ``vae-overlay`` method (Malyshev et al. 2021): overlay images by summing their VAE latents.

* **fit** trains one small VAE per class (:class:`~lagaug.plugins.vae_overlay.model.OverlayVAE`,
  ``class_steps`` steps on copies of the class's images). Its latents rank partners in both modes
  and, in ``shared`` mode, are the latents that get overlaid.
* **encode** — each image's posterior ``(mu, logvar)`` under its class VAE (plus the image).
* **resample** — for every hard image and variant: choose ``sources - 1`` partners among the real
  pool images (same class by default; ``farthest`` in the class VAE's latent space, or
  ``random``). ``faithful`` mode then trains a small VAE on the hard image and its partners (all
  variants' partners: one VAE per hard image), ``copies`` copies each with every minibatch holding
  copies of all of them, and combines their latent means under it; ``shared`` mode combines their
  class-VAE latents. ``combine``: ``sum`` / ``mean`` / ``rescaled``.
* **decode** — the combined latent through the decoder of the VAE that made it.

Provenance: ``source`` = the hard image's row then its partners' rows, ``weight`` = the
coefficients used on their latents. The label is the weighted mix of the sources' labels (the
shared class when partners share it). Per-image metrics: ``sum_norm`` (norm of the combined
latent), ``train_norm_ratio`` (that norm over the largest norm among the latent means of the
VAE's training images: > 1 lands outside them), ``train_norm_rank`` (share of those norms below
it), ``source_separation`` (smallest distance between the sources' latents) and
``source_J_rmse`` (pixel RMSE between the overlay and source J).

Codes after ``resample``: ``z`` (the combined latents), ``source_latents`` ``(N, S, d)`` (what was
combined), ``source_images``, ``group`` (index into ``info["group_vaes"]``, the faithful mode's
group VAEs, or -1), ``vae_class`` (the class VAE that decodes a ``shared`` row) and the metrics.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, ClassVar

import torch

from lagaug.core.contract.method import FitContext, Latents, StageContext, Synthesis
from lagaug.core.errors import ConfigError, DataError
from lagaug.plugins.vae.model import reparameterize, vae_loss
from lagaug.plugins.vae.perclass import PerClassNetworks
from lagaug.plugins.vae_overlay.config import STAGE_OPTIONS, VAEOverlayConfig
from lagaug.plugins.vae_overlay.model import OverlayVAE, train_on_copies
from lagaug.plugins.vae_overlay.overlay import choose_partners, combine, norm_rank, partner_rows, rule_rows

_CHUNK = 512  # images per forward pass when encoding or decoding many images


class _Pool:
    """The images partners come from: ``ctx.pool``, or the batch itself when no pool was given."""

    def __init__(self, latents: Latents, ctx: StageContext):
        if ctx.pool is not None:
            self.set = ctx.pool
            self.labels = ctx.pool.labels
            self.real = ~ctx.pool.synthetic
            self.targets = ctx.pool.targets()
        else:
            self.set = None
            self.batch_images = latents.codes["image"]
            self.targets = latents.soft.float()
            self.labels = self.targets.argmax(1)
            self.real = torch.ones(len(self.labels), dtype=torch.bool)

    def images(self, rows: torch.Tensor) -> torch.Tensor:
        return self.set.float_images(rows) if self.set is not None else self.batch_images[rows]


class VAEOverlayMethod(PerClassNetworks):
    """See the module docstring. ``vaes[i]`` is the class VAE of ``class_names[i]``."""

    name: ClassVar[str] = "vae-overlay"
    description: ClassVar[str] = (
        "overlay a hard image with distant images of its class by summing VAE latents (Malyshev 2021)"
    )
    version: ClassVar[int] = 1
    Config: ClassVar[type] = VAEOverlayConfig
    min_image_size: ClassVar[int] = 8
    stage_options: ClassVar[frozenset[str]] = frozenset(STAGE_OPTIONS)

    def new_network(self, cfg: VAEOverlayConfig, generator: torch.Generator) -> OverlayVAE:
        return OverlayVAE(self.image_shape, cfg.latent_dim, cfg.channels, cfg.hidden, generator)

    def stage_config(self, ctx: StageContext) -> VAEOverlayConfig:
        """The config with this call's options applied (validated again)."""
        return dataclasses.replace(self.config, **ctx.options) if ctx.options else self.config

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, train: Any, ctx: FitContext, unlabeled: Any = None) -> dict[str, Any]:
        """Train one class VAE per class on copies of its training images; return per-class figures.

        ``unlabeled`` is ignored (overlays are made within the training images). A class with
        fewer images than an overlay needs (``sources`` with ``partner_classes=same``; one
        otherwise) is refused with a one-line :class:`~lagaug.DataError` naming it. Returns
        ``{"first_loss": {class: loss}, "train_loss": {...}, "val_loss": {class: loss or None},
        "images": {...}, "seconds": s}`` (losses: per-image negative ELBO, nats; ``train_loss`` is
        the mean of the last tenth of the steps; ``val_loss`` at the posterior mean on ``ctx.val``).
        """
        cfg = self.config
        self.check_images(train.images, "training images")
        if list(train.class_names) != self.class_names:
            raise ConfigError(f"vae-overlay: training classes {train.class_names} differ from {self.class_names}")
        need = cfg.sources if cfg.partner_classes == "same" else 1
        counts = train.class_counts()
        short = [f"{self.class_names[c]!r} has {n}" for c, n in enumerate(counts) if n < need]
        if short:
            raise DataError(
                f"vae-overlay: class {', '.join(short)} training image(s), but sources={cfg.sources} with "
                f"partner_classes={cfg.partner_classes} needs at least {need} per class; add images, "
                "lower --set sources or --set partner_classes=any"
            )
        seeds = torch.randint(0, 2**62, (self.num_classes,), generator=ctx.generator).tolist()
        start = time.perf_counter()
        figures: dict[str, dict[str, Any]] = {"first_loss": {}, "train_loss": {}, "val_loss": {}, "images": {}}
        total = self.num_classes * cfg.class_steps
        with ctx.progress.task(f"fitting vae-overlay ({self.num_classes} class VAEs)", total=total) as task:
            for c, name in enumerate(self.class_names):
                g = torch.Generator().manual_seed(seeds[c])
                x = train.float_images(torch.nonzero(train.labels == c).flatten()).to(ctx.device)
                reps = -(-cfg.class_steps * cfg.batch_size // len(x))
                order = torch.rand((reps, len(x)), generator=g).argsort(dim=1).flatten().to(ctx.device)
                vae = self.new_network(cfg, g).to(ctx.device)
                losses = train_on_copies(
                    vae, x, lambda s: order[s * cfg.batch_size : (s + 1) * cfg.batch_size], cfg.class_steps,
                    optimizer=cfg.optimizer, lr=cfg.lr, beta=cfg.beta, generator=g,
                    advance=lambda status: task.advance(1, status=f"class {name} · {status}"),
                )
                self.vaes[c], self.fitted[c] = vae, True
                tail = losses[-max(1, len(losses) // 10):]
                figures["first_loss"][name] = round(losses[0], 4)
                figures["train_loss"][name] = round(sum(tail) / len(tail), 4)
                figures["val_loss"][name] = self._val_loss(c, ctx)
                figures["images"][name] = len(x)
        self.fit_metrics = {k: dict(v) for k, v in figures.items()}  # saved: no timing, same seed same file
        return {**figures, "seconds": round(time.perf_counter() - start, 3)}

    @torch.no_grad()
    def _val_loss(self, c: int, ctx: FitContext) -> float | None:
        val = ctx.val
        if val is None or not len(val) or not bool((val.labels == c).any()):
            return None
        x = val.float_images(torch.nonzero(val.labels == c).flatten()).to(ctx.device)
        vae = self.vaes[c]
        mu, logvar = vae.encode(x)
        return round(float(vae_loss(x, vae.decode_logits(mu), mu, logvar, self.config.beta).total), 4)

    # -- stages --------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, images: torch.Tensor, soft: torch.Tensor, ctx: StageContext) -> Latents:
        """Posterior ``mu`` / ``logvar`` of every image under its class VAE, and the image."""
        self.check_images(images, "images to encode")
        classes = self.classes_of(soft, len(images))
        mu, logvar = self._encode_with(classes, images.float(), ctx.device)
        return Latents(codes={"mu": mu, "logvar": logvar, "image": images.float().cpu()},
                       source=ctx.batch_rows(len(images)), soft=soft.float().cpu())

    def resample(self, latents: Latents, ctx: StageContext) -> Latents:
        """``ctx.variants`` overlays per row (see the module docstring).

        A hard image that fills several batch rows (``compare`` asks for several images per
        source that way) gets one plan: its rows share one group VAE and take distinct partners
        in turn, as variants would.
        """
        cfg = self.stage_config(ctx)
        variants = int(ctx.variants)
        if variants < 1:
            raise ConfigError(f"vae-overlay: variants must be at least 1, got {variants}")
        pool = _Pool(latents, ctx)
        classes = self.classes_of(latents.soft, len(latents))
        hard = latents.source[:, 0].tolist()
        ranked: dict[int, tuple[torch.Tensor, ...]] = {}  # class -> candidate rows, their mu, logvar; class norms
        plans: dict[int, tuple] = {}  # hard row -> (first batch row, class, partner pool rows (T, S-1))
        for i, h in enumerate(hard):
            if h in plans:
                continue
            c = int(classes[i])
            if c not in ranked:
                ranked[c] = self._rank_space(pool, c, cfg.partner_classes, ctx.device)
            rows, mu, _, _ = ranked[c]
            cand = partner_rows(rows, h, cfg.sources - 1, cfg.partner_classes, self.class_names[c])
            pick = choose_partners(latents.codes["mu"][i], mu[rows != h], cfg.sources - 1,
                                   hard.count(h) * variants, cfg.partner, ctx.generator)
            plans[h] = (i, c, cand[pick])
        made, groups = self._faithful(latents, plans, pool, cfg, ctx) if cfg.mode == "faithful" else \
            self._shared(latents, plans, ranked, cfg, ctx)
        out, used = [], {h: 0 for h in plans}
        for i, h in enumerate(hard):  # batch order, variants consecutive
            out += [{**row, "row": i} for row in made[h][used[h] : used[h] + variants]]
            used[h] += variants
        return self._collect(latents, out, pool, groups)

    def _shared(self, latents, plans, ranked, cfg, ctx) -> tuple[dict, list]:
        """Every plan's overlays in the class VAE's latent space."""
        made = {}
        for h, (i, c, partners) in plans.items():
            rows, mu, logvar, train_norms = ranked[c]
            where = {int(r): k for k, r in enumerate(rows)}
            made[h] = []
            for p in partners:
                k = [where[int(r)] for r in p]
                src_mu = torch.cat([latents.codes["mu"][i][None], mu[k]])
                src_lv = torch.cat([latents.codes["logvar"][i][None], logvar[k]])
                made[h].append(self._overlay(p, src_mu, src_lv, train_norms, -1, c, cfg, ctx))
        return made, []

    def _faithful(self, latents, plans, pool, cfg, ctx) -> tuple[dict, list]:
        """Every plan's overlays through its own group VAE, trained here on copies of the group."""
        steps = cfg.group_steps()
        seeds = torch.randint(0, 2**62, (len(plans),), generator=ctx.generator).tolist()
        groups, made = [], {}
        with ctx.progress.task(f"vae-overlay: {len(plans)} group VAEs", total=len(plans) * steps) as task:
            for (h, (i, c, partners)), seed in zip(plans.items(), seeds):
                members = torch.unique(partners.flatten())  # one VAE for the hard image and all its partners
                x = torch.cat([latents.codes["image"][i][None], pool.images(members)]).to(ctx.device)
                g = torch.Generator().manual_seed(seed)
                vae = self.new_network(cfg, g).to(ctx.device)
                batch = torch.arange(len(x), device=ctx.device).repeat(cfg.batch_copies)
                train_on_copies(vae, x, lambda s: batch, steps, optimizer=cfg.optimizer, lr=cfg.lr,
                                beta=cfg.beta, generator=g,
                                advance=lambda status: task.advance(1, status=f"group {len(groups) + 1} · {status}"))
                with torch.no_grad():
                    mu, logvar = (t.float().cpu() for t in vae.encode(x))
                where = {int(r): k + 1 for k, r in enumerate(members)}
                made[h] = []
                for p in partners:
                    k = [0] + [where[int(r)] for r in p]
                    made[h].append(self._overlay(p, mu[k], logvar[k], mu.norm(dim=1), len(groups), c, cfg, ctx))
                groups.append(vae.cpu())
        return made, groups

    def _rank_space(self, pool: _Pool, c: int, rule: str, device) -> tuple[torch.Tensor, ...]:
        """Candidate rows for class ``c`` under ``rule``, their latents under class ``c``'s VAE, and
        the latent norms of class ``c``'s real pool images (the VAE's training latents)."""
        rows = rule_rows(pool.labels, pool.real, c, rule)
        mu, logvar = self._encode_with(torch.full((len(rows),), c), pool.images(rows), device)
        if rule == "same":
            return rows, mu, logvar, mu.norm(dim=1)
        own = rule_rows(pool.labels, pool.real, c, "same")
        own_mu, _ = self._encode_with(torch.full((len(own),), c), pool.images(own), device)
        return rows, mu, logvar, own_mu.norm(dim=1)

    def _overlay(self, partners, mu, logvar, train_norms, group, c, cfg, ctx) -> dict:
        """One overlay row: combine the sources' latents ``mu`` ``(S, d)`` (noised by ``posterior_scale``)."""
        z_src = reparameterize(mu, logvar, ctx.generator, cfg.posterior_scale) if cfg.posterior_scale else mu
        z, coef = combine(z_src, cfg.combine)
        norm = float(z.norm())
        return {
            "partners": partners, "z": z, "coef": coef, "group": group, "class": c, "z_src": z_src.float(),
            "sum_norm": norm, "train_norm_ratio": norm / max(float(train_norms.max()), 1e-12) if len(train_norms) else float("nan"),
            "train_norm_rank": norm_rank(norm, train_norms),
            "source_separation": float(torch.pdist(z_src.double()).min()),
        }

    def _collect(self, latents: Latents, rows: list[dict], pool: _Pool, groups: list) -> Latents:
        source = torch.stack([torch.cat([latents.source[r["row"], :1], r["partners"]]) for r in rows])
        weight = torch.stack([r["coef"] for r in rows])
        soft = []
        for r, src, w in zip(rows, source, weight):
            targets = torch.cat([latents.soft[r["row"]][None], pool.targets[src[1:]]])
            soft.append((w[:, None] * targets).sum(0) / w.sum())
        images = torch.stack([torch.cat([latents.codes["image"][r["row"]][None], pool.images(src[1:])])
                              for r, src in zip(rows, source)])
        codes = {
            "z": torch.stack([r["z"] for r in rows]).float(),
            "group": torch.tensor([r["group"] for r in rows], dtype=torch.int64),
            "vae_class": torch.tensor([r["class"] for r in rows], dtype=torch.int64),
            "source_images": images,
            "source_latents": torch.stack([r["z_src"] for r in rows]),
            **{k: torch.tensor([r[k] for r in rows], dtype=torch.float32)
               for k in ("sum_norm", "train_norm_ratio", "train_norm_rank", "source_separation")},
        }
        return Latents(codes=codes, source=source, soft=torch.stack(soft), weight=weight,
                       info={**latents.info, "group_vaes": groups})

    @torch.no_grad()
    def decode(self, latents: Latents, ctx: StageContext) -> Synthesis:
        """Each row's latent through its group VAE (``faithful``) or its class VAE (``shared``);
        rows straight from ``encode`` decode their posterior mean (a reconstruction)."""
        if "z" not in latents.codes:  # not resampled: reconstruct
            z, group = latents.codes["mu"], torch.full((len(latents),), -1)
            vae_class = self.classes_of(latents.soft, len(latents))
        else:
            z, group, vae_class = latents.codes["z"], latents.codes["group"], latents.codes["vae_class"]
        groups = latents.info.get("group_vaes", [])
        images = torch.zeros((len(z), *self.image_shape))
        for g in torch.unique(group).tolist():
            rows = torch.nonzero(group == g).flatten()
            if g >= 0:
                images[rows] = groups[g].to(ctx.device).eval().decode(z[rows].to(ctx.device)).float().cpu()
            else:
                images[rows] = self._decode_with(vae_class[rows], z[rows], ctx.device)
        metrics = {k: latents.codes[k] for k in ("sum_norm", "train_norm_ratio", "train_norm_rank",
                                                  "source_separation") if k in latents.codes}
        if "source_images" in latents.codes:
            err = (latents.codes["source_images"] - images[:, None]).pow(2).flatten(2).mean(2).sqrt()
            metrics.update({f"source_{j}_rmse": err[:, j] for j in range(err.shape[1])})
        return Synthesis(images=images, soft=latents.soft, source=latents.source.clone(), metrics=metrics,
                         weight=latents.weight)

    # -- helpers -------------------------------------------------------------------------------
    @torch.no_grad()
    def _encode_with(self, classes: torch.Tensor, images: torch.Tensor, device) -> tuple[torch.Tensor, ...]:
        n, d = len(images), self.vaes[0].latent_dim
        mu, logvar = torch.zeros(n, d), torch.zeros(n, d)
        for c, rows in self.class_groups(classes):
            vae = self.class_network(c, device)
            for s in range(0, len(rows), _CHUNK):
                idx = rows[s : s + _CHUNK]
                m, lv = vae.encode(images[idx].to(device))
                mu[idx], logvar[idx] = m.float().cpu(), lv.float().cpu()
        return mu, logvar

    @torch.no_grad()
    def _decode_with(self, classes: torch.Tensor, z: torch.Tensor, device) -> torch.Tensor:
        out = torch.zeros((len(z), *self.image_shape))
        for c, rows in self.class_groups(classes):
            out[rows] = self.class_network(c, device).decode(z[rows].to(device)).float().cpu()
        return out
