"""The ``vqvae2`` generator method (Høj & Møgelmoose 2023): keep an image's structural (top) codes
and let a PixelSNAIL prior write new local (bottom) codes, then decode.

* **fit** — train the VQ-VAE-2 (pre-train on the unlabeled pool when given, streamed batch by
  batch; then fine-tune on the training images), extract codes, train the bottom prior
  (conditioned on the top codes; pool first, then training codes) and, optionally, a top prior.
  After each prior epoch the weights are kept as a checkpoint, and one is **chosen
  automatically: the lowest negative log-likelihood on held-out codes** (the codes of ``ctx.val``
  when given, else a held-out slice of the training codes, ``prior_holdout``; never a test set).
  ``prior_checkpoint`` pins an epoch (or ``last``) instead.
  The fit measures itself (:mod:`lagaug.plugins.vqvae2.diagnostics`): held-out reconstruction
  error, codebook usage per level, the priors' losses per epoch and the checkpoint chosen (and
  why), recorded in ``generator.json`` (``extra``) and returned for ``fit.json``; the
  reconstruction grid is saved beside the generator as ``reconstructions.png``.
* **encode** — images -> ``codes = {"top": (N, H/2s, W/2s), "bottom": (N, H/s, W/s)}`` with
  ``s = bottom_stride`` (``auto``: 1 for 32-px images, 2 for 64 px, 4 — the reference — from 128 px;
  resolved when the method is built, so ``generator.json`` holds the number).
* **resample** — new bottom codes conditioned on the top codes, with the cached sampler. Options
  (``ctx.options``, else the config): ``temperature`` (> 0), ``region`` (a box ``"y0,x0,y1,x1"``
  in bottom-map cells, half-open like slices — ``--set region=0,0,4,4`` — or, from Python, a
  boolean bottom-map-shaped ``(Hb, Wb)`` / ``(N, Hb, Wb)`` mask) or
  ``resample_fraction`` (a box of that fraction of the map at a random place per image; 1 = all).
  Codes outside the box are kept. An image's defect (``ctx.regions``) is kept too (``keep=region``)
  or transplanted onto a defect-free background (``transplant=pool|train``): :mod:`.keep`.
* **decode** — codes -> images, with per-image metrics ``structure_error`` (low-frequency
  difference to the source), ``detail_change`` (high-frequency difference) and ``codes_changed``
  (fraction of bottom codes that differ from the source's).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, ClassVar

import torch

from lagaug.core.contract.method import FitContext, GeneratorMethod, Latents, StageContext, Synthesis
from lagaug.core.errors import ConfigError, DataError
from lagaug.core.regions.masks import blend_region
from lagaug.core.runtime import adam
from lagaug.plugins.vqvae2 import diagnostics as diag
from lagaug.plugins.vqvae2.config import (  # noqa: F401  (VQVAE2Config, parse_box: public here too)
    PRESETS,
    VQVAE2Config,
    auto_bottom_stride,
    check_region,
    check_temperature,
    is_whole_map,
    parse_box,
    region_mask,
)
from lagaug.plugins.vqvae2.keep import plan_keep
from lagaug.plugins.vqvae2.layers import init_weights_
from lagaug.plugins.vqvae2.metrics import structure_and_detail
from lagaug.plugins.vqvae2.pixelsnail import PixelSNAIL
from lagaug.plugins.vqvae2.sampler import sample
from lagaug.plugins.vqvae2.training import (
    EVAL_BATCH,
    batches,
    extract_codes,
    init_codebooks,
    lr_factor,
    mean_recon_error,
    parse_checkpoint_choice,
    random_crops,
    resolve_precision,
    to_model_range,
    train_prior,
    vqvae_step,
)
from lagaug.plugins.vqvae2.vqvae import VQVAE2, perplexity


class VQVAE2Method(GeneratorMethod):
    """VQ-VAE-2 + PixelSNAIL: new local detail under an image's own structure."""

    name: ClassVar[str] = "vqvae2"
    description: ClassVar[str] = ("VQ-VAE-2 + PixelSNAIL: keep an image's structural codes, "
                                  "resample its local codes (Høj & Møgelmoose 2023)")
    version: ClassVar[int] = 2  # 2: border and bottom_stride options (version 1 = zero border, 1/4 map)
    Config: ClassVar[type] = VQVAE2Config
    min_image_size: ClassVar[int] = 8
    region_mode: ClassVar[str] = "self"  # keeps the codes under a region (keep.py)
    stage_options: ClassVar[frozenset[str]] = frozenset({"temperature", "region", "resample_fraction", "keep",
                                                         "keep_margin", "keep_pixels", "transplant", "seam"})

    @classmethod
    def check_options(cls, config: VQVAE2Config, image_shape, class_names) -> None:
        """A ``region`` box must lie inside the bottom map of these images."""
        _, h, w = image_shape
        if isinstance(config.region, str) and not is_whole_map(config.region):
            s = auto_bottom_stride(h, w) if config.bottom_stride == "auto" else int(config.bottom_stride)
            check_region(config.region, (h // s, w // s))

    @classmethod
    def import_checkpoint(cls, files, *, out, class_names, image_size=None, **options) -> "VQVAE2Method":
        """rosinality/vq-vae-2-pytorch files: ``vqvae`` (or ``checkpoint``), optional
        ``bottom_prior`` and ``top_prior`` (see :mod:`lagaug.plugins.vqvae2.importer`)."""
        from lagaug.plugins.vqvae2.importer import import_reference

        if options:
            raise ConfigError(f"import-checkpoint --method vqvae2 takes no --{next(iter(options)).replace('_', '-')}")
        vqvae = files.get("vqvae") or files.get("checkpoint")
        if vqvae is None:
            raise ConfigError("import-checkpoint --method vqvae2 needs the VQ-VAE file: --vqvae FILE (or FILE)")
        return import_reference(vqvae, bottom_prior=files.get("bottom_prior"), top_prior=files.get("top_prior"),
                                out=out, class_names=class_names, image_size=image_size, method_cls=cls)

    def describe_import(self) -> str:
        parts = ["VQ-VAE-2"] + [f"{level} prior" for level in ("bottom", "top") if f"{level}_prior" in self.state]
        return f"{', '.join(parts)}; {self.config.n_embed} codes"

    def __init__(self, config: VQVAE2Config, image_shape, class_names):
        super().__init__(config, image_shape, class_names)
        c, h, w = self.image_shape
        if config.bottom_stride == "auto":
            self.config = dataclasses.replace(config, bottom_stride=auto_bottom_stride(h, w))
        cfg = self.config
        self.vqvae = VQVAE2(c, cfg.channel, cfg.n_res_block, cfg.n_res_channel, cfg.embed_dim,
                            cfg.n_embed, cfg.decay, border=cfg.border, bottom_stride=cfg.bottom_stride)
        s = cfg.bottom_stride
        self.bottom_shape, self.top_shape = (h // s, w // s), (h // (2 * s), w // (2 * s))
        self.bottom_prior = PixelSNAIL(
            self.bottom_shape, cfg.n_embed, cfg.prior_channel, cfg.prior_kernel, cfg.prior_n_block,
            cfg.prior_n_res_block, cfg.prior_res_channel, attention=cfg.prior_attention,
            dropout=cfg.prior_dropout, n_cond_res_block=cfg.prior_n_cond_res_block,
            cond_res_channel=cfg.prior_cond_res_channel or cfg.prior_res_channel,
            cond_res_kernel=cfg.prior_cond_res_kernel, n_out_res_block=cfg.prior_n_out_res_block,
        )
        if cfg.prior_n_cond_res_block < 1:
            raise ConfigError("--set prior_n_cond_res_block=0: the bottom prior is conditioned on "
                              "the top codes and needs at least 1 condition res block")
        self.top_prior = None
        if cfg.top_prior:
            self.top_prior = PixelSNAIL(
                self.top_shape, cfg.n_embed, cfg.top_prior_channel, cfg.top_prior_kernel,
                cfg.top_prior_n_block, cfg.top_prior_n_res_block, cfg.top_prior_res_channel,
                attention=cfg.top_prior_attention, dropout=cfg.top_prior_dropout,
                n_out_res_block=cfg.top_prior_n_out_res_block,
            )
        # "bottom_prior" / "top_prior": how each prior was trained (or imported); absent = untrained;
        # "vqvae" / "diagnostics": what the fit measured (see diagnostics.py)
        self.figures: dict[str, tuple] = {}  # file name -> save_pair_grid arguments, written by save()

    @classmethod
    def check_image_shape(cls, image_shape) -> None:
        super().check_image_shape(image_shape)
        _, h, w = image_shape
        if h % 8 or w % 8:
            raise ConfigError(
                f"method 'vqvae2' needs image height and width divisible by 8 (two downsampling "
                f"levels: 1/4 and 1/8), got {h}x{w}; set --image-size to a multiple of 8"
            )

    # -- persistence ---------------------------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        mods = {"vqvae": self.vqvae, "bottom_prior": self.bottom_prior}
        if self.top_prior is not None:
            mods["top_prior"] = self.top_prior
        return mods

    def save(self, directory):
        """``generator.json`` + weights, and the fit's figures (``reconstructions.png``) beside them."""
        from lagaug.core.plots import save_pair_grid

        out = super().save(directory)
        for name, (sources, made, index) in self.figures.items():
            save_pair_grid(Path(directory) / name, sources, made, index)
        return out

    @classmethod
    def upgrade_config(cls, config: dict[str, Any], saved_version: int) -> dict[str, Any]:
        """Generators saved before version 2 padded with zeros and had the bottom map at 1/4."""
        return {"border": "zero", "bottom_stride": 4, **config} if saved_version < 2 else config

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, train, ctx: FitContext, unlabeled=None) -> dict[str, Any]:
        """Train everything (see the module docstring); returns the fit's metrics."""
        dev = torch.device(ctx.device)
        self._check_set(train, "training set")
        unlabeled = self.usable_pool(unlabeled)
        self.precision = resolve_precision(self.config.precision, dev)
        self.state["precision"] = self.precision
        for module in self.modules().values():
            init_weights_(module, ctx.generator)
            module.to(dev)
        images = train.float_images()
        start = time.perf_counter()
        metrics = self._fit_vqvae(images, unlabeled, ctx, dev)
        metrics["vqvae_seconds"] = round(time.perf_counter() - start, 2)
        top, bottom = self._codes(images, dev)
        metrics["perplexity_top"] = perplexity(top, self.config.n_embed)
        metrics["perplexity_bottom"] = perplexity(bottom, self.config.n_embed)
        start = time.perf_counter()
        metrics.update(self._fit_priors(top, bottom, unlabeled, ctx, dev))
        metrics["prior_seconds"] = round(time.perf_counter() - start, 2)
        self.to_device(dev)
        metrics["diagnostics"] = diag.diagnose(self, images, top, bottom, ctx, dev)
        return metrics

    def _pool_batches(self, unlabeled, ctx: FitContext, dev):
        """One streamed pass over the pool (its first ``pool_images`` in a fresh seeded order, when
        that is set), as ``[-1, 1]`` batches on ``dev``."""
        left = self._pool_size(unlabeled)
        for x in unlabeled.iter_batches(self.config.batch_size, ctx.generator):
            if left <= 0:
                return
            yield to_model_range(x[:left]).to(dev)
            left -= len(x)

    def _pool_size(self, unlabeled) -> int:
        """How many pool images one pre-training pass takes."""
        cap = int(self.config.pool_images)
        return len(unlabeled) if cap <= 0 else min(cap, len(unlabeled))

    def train_crop(self) -> int:
        """The side of the crops the VQ-VAE trains on (0: whole images). ``crop=auto``: half the
        image side from 32 px up (a convolutional auto-encoder learns local structure; crops cost a
        quarter of a step and reached a higher held-out PSNR in the same time: docs/benchmarks.md)."""
        crop, side = self.config.crop, min(self.image_shape[1:])
        if crop == "auto":
            return side // 2 if side >= 32 else 0
        return 0 if int(crop) >= side else int(crop)

    def _fit_vqvae(self, images: torch.Tensor, unlabeled, ctx: FitContext, dev) -> dict[str, Any]:
        """Codebooks from data, pre-training on the pool, fine-tuning on the training images."""
        cfg, gen = self.config, ctx.generator
        seed = to_model_range(images[torch.randperm(len(images), generator=gen)[:64]]).to(dev)  # plenty of vectors; little memory
        if unlabeled is not None:
            seed = torch.cat([next(self._pool_batches(unlabeled, ctx, dev)), seed])
        init_codebooks(self.vqvae, seed, gen)
        metrics = {"recon_l1_untrained": mean_recon_error(self.vqvae, images, dev)}
        # trained in the channels-last layout: a step on 32 crops of 16 px took ~10% less time
        self.vqvae.to(memory_format=torch.channels_last)
        opt = adam(self.vqvae.parameters(), lr=cfg.lr)
        pool_epochs = cfg.pretrain_epochs if unlabeled is not None else 0
        steps = math.ceil(len(images) / cfg.batch_size) * cfg.epochs
        if pool_epochs:
            steps += math.ceil(self._pool_size(unlabeled) / cfg.batch_size) * pool_epochs

        crop, done = self.train_crop(), [0]

        def step(x):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(done[0], steps, cfg.lr_schedule)
            done[0] += 1
            x = random_crops(x, crop, gen).contiguous(memory_format=torch.channels_last)
            return vqvae_step(self.vqvae, opt, x, cfg.commitment, cfg.recon_loss, gen,
                              cfg.codebook_restart, cfg.bottom_dropout, self.precision)

        losses: dict[str, list[float]] = {"pretrain_loss": [], "train_loss": []}
        with ctx.progress.task("vqvae2: VQ-VAE-2", total=steps) as task:
            for _ in range(pool_epochs):
                run = []
                for x in self._pool_batches(unlabeled, ctx, dev):
                    run.append(step(x))
                    task.advance(status=f"pool loss {run[-1]:.4f}")
                losses["pretrain_loss"].append(round(sum(run) / max(len(run), 1), 6))
            for _ in range(cfg.epochs):
                run = []
                for idx in batches(len(images), cfg.batch_size, gen):
                    run.append(step(to_model_range(images[idx]).to(dev)))
                    task.advance(status=f"loss {run[-1]:.4f}")
                losses["train_loss"].append(round(sum(run) / max(len(run), 1), 6))
        self.vqvae.to(memory_format=torch.contiguous_format)  # saved, imported and sampled as usual
        self.vqvae.eval()
        metrics["recon_l1"] = mean_recon_error(self.vqvae, images, dev)
        self.state["vqvae"] = {**losses, "recon_l1_train": round(metrics["recon_l1"], 6)}
        metrics["vqvae"] = self.state["vqvae"]
        return metrics

    def _fit_priors(self, top, bottom, unlabeled, ctx: FitContext, dev) -> dict[str, Any]:
        """Train the bottom (and top) prior; held-out codes from ``ctx.val`` or a training slice."""
        cfg, gen = self.config, ctx.generator
        val = getattr(ctx, "val", None)
        if val is not None and len(val) > 0:
            self._check_set(val, "validation set")
            held_top, held_bottom = self._codes(val.float_images(), dev)
            source = "validation set"
        else:
            order = torch.randperm(len(top), generator=gen)
            n_held = int(round(cfg.prior_holdout * len(top))) if len(top) >= 4 else 0
            held_top, held_bottom = top[order[:n_held]], bottom[order[:n_held]]
            top, bottom = top[order[n_held:]], bottom[order[n_held:]]
            source = f"{n_held} held-out training images"

        def pool_codes(level: str):
            def stream():
                for x in self._pool_batches(unlabeled, ctx, dev):
                    t, b = extract_codes(self.vqvae, [x], dev)
                    yield (b, t) if level == "bottom" else (t, None)
            return stream if unlabeled is not None else None

        steps = math.ceil(len(top) / cfg.prior_batch_size) * cfg.prior_epochs
        if unlabeled is not None:
            steps += math.ceil(self._pool_size(unlabeled) / cfg.batch_size) * cfg.prior_pretrain_epochs
        jobs = [("bottom", self.bottom_prior, (bottom, top), (held_bottom, held_top), "prior_checkpoint")]
        if self.top_prior is not None:
            jobs.append(("top", self.top_prior, (top, None), (held_top, None), "top_prior_checkpoint"))
        metrics = {}
        for level, prior, codes, held, option in jobs:
            with ctx.progress.task(f"vqvae2: {level} prior", total=steps) as task:
                record = train_prior(
                    prior, train=codes, held_out=held, pool_batches=pool_codes(level),
                    pretrain_epochs=cfg.prior_pretrain_epochs, epochs=cfg.prior_epochs, precision=self.precision,
                    lr=cfg.prior_lr, batch_size=cfg.prior_batch_size,
                    pinned=parse_checkpoint_choice(getattr(cfg, option), cfg.prior_epochs, option),
                    generator=gen, device=dev, advance=task.advance,
                    save_dir=None if ctx.work_dir is None else Path(ctx.work_dir) / "vqvae2_checkpoints",
                    name=f"{level}_prior",
                )
            info = {**record.as_dict(), "held_out": source}
            message = diag.prior_warning(level, info, pinned=getattr(cfg, option) != "auto")
            if message:
                info["warning"] = message
                diag.warn(message)
            self.state[f"{level}_prior"] = metrics[f"{level}_prior"] = info
        return metrics

    def _check_set(self, data, what: str) -> None:
        shape = (data.channels, *data.image_size)
        if shape != self.image_shape:
            raise DataError(f"{what}: images are {shape} (C, H, W), this generator was built for "
                            f"{self.image_shape}")

    def _codes(self, images: torch.Tensor, dev) -> tuple[torch.Tensor, torch.Tensor]:
        bs = EVAL_BATCH
        chunks = (to_model_range(images[s : s + bs]) for s in range(0, len(images), bs))
        return extract_codes(self.vqvae, chunks, dev)

    # -- stages --------------------------------------------------------------------------------
    def encode(self, images: torch.Tensor, soft: torch.Tensor, ctx: StageContext) -> Latents:
        if images.dim() != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise DataError(f"vqvae2 encode: images must be (N, {', '.join(map(str, self.image_shape))})"
                            f", got {tuple(images.shape)}")
        dev = torch.device(ctx.device)
        self.to_device(dev)
        top, bottom = self._codes(images.float(), dev)
        n = images.shape[0]
        return Latents(codes={"top": top, "bottom": bottom, "batch_row": torch.arange(n)},
                       source=ctx.batch_rows(n), soft=soft,
                       info={"images": images.detach().float().cpu()})

    def resample(self, latents: Latents, ctx: StageContext) -> Latents:
        if not self.state.get("bottom_prior"):
            raise ConfigError("this vqvae2 generator has no trained bottom prior; fit one with "
                              "`lagaug fit` or import one with `lagaug import-checkpoint --bottom-prior`")
        opts = dict(ctx.options or {})
        temperature = check_temperature(opts.get("temperature", self.config.temperature),
                                        "--set temperature")
        self._check_codes(latents)  # before any work
        out = latents.repeat(max(int(ctx.variants), 1))
        top, bottom = out.codes["top"], out.codes["bottom"]
        mask = region_mask(opts.get("region", self.config.region),
                           opts.get("resample_fraction", self.config.resample_fraction), bottom.shape, ctx.generator)
        dev = torch.device(ctx.device)
        self.to_device(dev)
        plan = plan_keep(self, top, bottom, mask, out.source, out.weight, ctx, lambda key: self.option(ctx, key))
        top, bottom, mask = plan.top, plan.bottom, plan.resample
        new = []
        bs = self.config.sample_batch_size
        for s in range(0, bottom.shape[0], bs):
            new.append(sample(self.bottom_prior, bottom[s : s + bs].to(dev), mask=mask[s : s + bs],
                              condition=top[s : s + bs].to(dev), temperature=temperature,
                              generator=ctx.generator).cpu())
        codes = dict(out.codes)
        codes["top"], codes["bottom_source"] = top, bottom
        codes["bottom"] = torch.cat(new) if new else bottom
        codes["region"] = plan.region
        info = dict(out.info)
        info["resample"] = {"temperature": temperature, "resampled_cells": int(mask.sum())}
        info["notes"] = plan.notes
        return Latents(codes=codes, source=plan.source, soft=out.soft, info=info, weight=plan.weight)

    def decode(self, latents: Latents, ctx: StageContext) -> Synthesis:
        top, bottom = self._check_codes(latents)
        dev = torch.device(ctx.device)
        self.to_device(dev)
        outs = []
        bs = EVAL_BATCH
        with torch.no_grad():
            for s in range(0, top.shape[0], bs):
                x = self.vqvae.decode_codes(top[s : s + bs].to(dev), bottom[s : s + bs].to(dev))
                outs.append(((x.clamp(-1, 1) + 1) / 2).cpu())
        images = torch.cat(outs) if outs else torch.zeros(0, *self.image_shape)
        metrics = {}
        source_images = latents.info.get("images")
        region = latents.codes.get("region")
        if (region is not None and bool(region.any()) and source_images is not None and "batch_row" in latents.codes
                and self.option(ctx, "keep_pixels")):  # the defect exactly as it was (the decoder only nears it)
            images = blend_region(images, source_images[latents.codes["batch_row"]], region, 1, 1.0)
        if source_images is not None and len(images) and "batch_row" in latents.codes:
            src = source_images[latents.codes["batch_row"]]
            metrics["structure_error"], metrics["detail_change"] = structure_and_detail(
                images, src, self.config.metric_sigma)
        if "bottom_source" in latents.codes:
            metrics["codes_changed"] = (bottom != latents.codes["bottom_source"]).flatten(1).float().mean(1)
        notes = latents.info.get("notes")
        return Synthesis(images=images, soft=latents.soft, source=latents.source, metrics=metrics,
                         weight=latents.weight, masks=latents.codes.get("region"),
                         notes=[dict(n) for n in notes] if notes is not None and len(notes) == len(images) else None)

    # -- checks --------------------------------------------------------------------------------
    def _check_codes(self, latents: Latents) -> tuple[torch.Tensor, torch.Tensor]:
        n_embed = self.config.n_embed
        out = []
        for key, shape in (("top", self.top_shape), ("bottom", self.bottom_shape)):
            codes = latents.codes.get(key)
            if codes is None:
                raise DataError(f"vqvae2: latents have no {key!r} codes (got {sorted(latents.codes)}); "
                                "encode the images with the vqvae2 method first")
            if codes.dtype.is_floating_point or codes.dim() != 3 or tuple(codes.shape[1:]) != shape:
                raise DataError(f"vqvae2: {key!r} codes must be integer (N, {shape[0]}, {shape[1]}), "
                                f"got {codes.dtype} {tuple(codes.shape)}")
            if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= n_embed):
                raise DataError(f"vqvae2: {key!r} codes hold values outside the codebook "
                                f"[0, {n_embed}): found {int(codes.min())}..{int(codes.max())}")
            out.append(codes.long().cpu())
        if out[0].shape[0] != out[1].shape[0]:
            raise DataError(f"vqvae2: {out[0].shape[0]} top code maps but {out[1].shape[0]} bottom ones")
        return out[0], out[1]

    # -- extras --------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, n: int, generator: torch.Generator, device="cpu", temperature: float = 1.0
                 ) -> torch.Tensor:
        """Unconditional samples ``(n, C, H, W)`` in ``[0, 1]``: top codes from the top prior,
        bottom codes from the bottom prior, decoded. Needs ``top_prior=true``."""
        if self.top_prior is None:
            raise ConfigError("generate() needs a top prior: fit with --set top_prior=true")
        dev = torch.device(device)
        self.to_device(dev)
        top = sample(self.top_prior, torch.zeros(n, *self.top_shape, dtype=torch.long, device=dev),
                     temperature=temperature, generator=generator)
        bottom = sample(self.bottom_prior, torch.zeros(n, *self.bottom_shape, dtype=torch.long, device=dev),
                        condition=top, temperature=temperature, generator=generator)
        return ((self.vqvae.decode_codes(top, bottom).clamp(-1, 1) + 1) / 2).cpu()
