"""The ``vqvae2`` generator method (Høj & Møgelmoose 2023): keep an image's structural (top) codes
and let a PixelSNAIL prior write new local (bottom) codes, then decode.

* **fit** — train the VQ-VAE-2 (pre-train on the unlabeled pool when given, streamed batch by
  batch; then fine-tune on the training images), extract codes, train the bottom prior
  (conditioned on the top codes; pool first, then training codes) and, optionally, a top prior.
  After each prior epoch the weights are kept as a checkpoint, and one is **chosen
  automatically: the lowest negative log-likelihood on held-out codes** (the codes of ``ctx.val``
  when given, else a held-out slice of the training codes, ``prior_holdout``; never a test set).
  ``prior_checkpoint`` pins an epoch (or ``last``) instead.
* **encode** — images -> ``codes = {"top": (N, H/8, W/8), "bottom": (N, H/4, W/4)}``.
* **resample** — new bottom codes conditioned on the top codes, with the cached sampler. Options
  (``ctx.options``): ``temperature`` (> 0), ``region`` (a box ``"y0,x0,y1,x1"`` in bottom-map
  cells, half-open like slices, or a boolean ``(H/4, W/4)`` / ``(N, H/4, W/4)`` mask) or
  ``resample_fraction`` (a box of that fraction of the map at a random place per image; 1 = all).
  Codes outside the region are kept.
* **decode** — codes -> images, with per-image metrics ``structure_error`` (low-frequency
  difference to the source), ``detail_change`` (high-frequency difference) and ``codes_changed``
  (fraction of bottom codes that differ from the source's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch

from lagaug.core.errors import ConfigError, DataError
from lagaug.core.method import FitContext, GeneratorMethod, Latents, StageContext, Synthesis
from lagaug.plugins.vqvae2.layers import init_weights_
from lagaug.plugins.vqvae2.metrics import structure_and_detail
from lagaug.plugins.vqvae2.pixelsnail import PixelSNAIL
from lagaug.plugins.vqvae2.sampler import sample
from lagaug.plugins.vqvae2.training import (
    batches, extract_codes, init_codebooks, mean_recon_error, parse_checkpoint_choice,
    to_model_range, train_prior, vqvae_step,
)
from lagaug.plugins.vqvae2.vqvae import VQVAE2, perplexity


@dataclass
class VQVAE2Config:
    """Options of the ``vqvae2`` method (``--set key=value``).

    Defaults are CPU-sized for small images (32x32: an 8x8 bottom map under a 4x4 top map). The
    paper's / reference sizes are given in brackets.
    """

    # VQ-VAE-2 [channel 128, n_res_block 2, n_res_channel 32, embed_dim 64, n_embed 512]
    channel: int = 32
    n_res_block: int = 2
    n_res_channel: int = 16
    embed_dim: int = 32
    n_embed: int = 64  # codebook size of each level (also the priors' number of classes)
    decay: float = 0.99  # EMA decay of the codebooks
    codebook_restart: float = 1.0  # move codes used < this often per batch onto fresh vectors (0: off, as the reference)
    bottom_dropout: float = 0.5  # share of training images decoded from top codes alone (0: as the reference)
    commitment: float = 0.25
    recon_loss: Literal["l1", "mse"] = "l1"  # the paper used L1, the reference MSE
    lr: float = 1e-3  # [3e-4]
    batch_size: int = 32
    pretrain_epochs: int = 1  # over the unlabeled pool, when given [paper: 11 on 250k images]
    epochs: int = 20  # on the training images [paper: 258]
    # bottom prior: PixelSNAIL conditioned on the top codes
    # [channel 256, kernel 5, n_block 4, n_res_block 4, res_channel 256, n_cond_res_block 3]
    prior_channel: int = 32
    prior_res_channel: int = 32
    prior_kernel: int = 3  # [5]
    prior_n_block: int = 2
    prior_n_res_block: int = 2
    prior_n_cond_res_block: int = 2
    prior_cond_res_channel: int = 0  # 0: same as prior_res_channel (the reference ties them)
    prior_cond_res_kernel: int = 3
    prior_n_out_res_block: int = 0
    prior_dropout: float = 0.1
    prior_attention: bool = False  # the reference bottom prior has none
    prior_lr: float = 2e-3  # [3e-4]
    prior_batch_size: int = 32
    prior_pretrain_epochs: int = 1  # over the pool's codes [paper: 3]
    prior_epochs: int = 12  # on the training codes, one checkpoint each [paper: 112]
    prior_holdout: float = 0.15  # share of training codes held out when no validation set
    prior_checkpoint: str = "auto"  # auto (lowest held-out NLL) | last | an epoch number
    # optional top prior (attention) for unconditional sampling; trained like the bottom prior
    top_prior: bool = False
    top_prior_channel: int = 32
    top_prior_res_channel: int = 32
    top_prior_kernel: int = 5
    top_prior_n_block: int = 2
    top_prior_n_res_block: int = 2
    top_prior_n_out_res_block: int = 0
    top_prior_dropout: float = 0.1
    top_prior_attention: bool = True
    top_prior_checkpoint: str = "auto"
    # sampling and metrics
    temperature: float = 1.0
    resample_fraction: float = 1.0
    metric_sigma: float = 1.5  # Gaussian blur (pixels) that splits structure from detail
    sample_batch_size: int = 64

    def __post_init__(self) -> None:
        positive = ["channel", "n_res_channel", "embed_dim", "n_embed", "batch_size", "epochs",
                    "prior_channel", "prior_res_channel", "prior_n_block", "prior_batch_size",
                    "prior_epochs", "sample_batch_size", "top_prior_channel",
                    "top_prior_res_channel", "top_prior_n_block"]
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"--set {name}={getattr(self, name)}: must be at least 1")
        for name in ("n_res_block", "prior_n_res_block", "pretrain_epochs", "prior_pretrain_epochs",
                     "prior_n_cond_res_block",
                     "prior_n_out_res_block", "top_prior_n_res_block", "top_prior_n_out_res_block",
                     "prior_cond_res_channel"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"--set {name}={getattr(self, name)}: must be 0 or more")
        for name in ("prior_kernel", "top_prior_kernel", "prior_cond_res_kernel"):
            if int(getattr(self, name)) % 2 == 0:
                raise ConfigError(f"--set {name}={getattr(self, name)}: must be odd")
        if self.recon_loss not in ("l1", "mse"):
            raise ConfigError(f"--set recon_loss={self.recon_loss!r}: expected l1 or mse")
        if self.codebook_restart < 0:
            raise ConfigError(f"--set codebook_restart={self.codebook_restart}: must be 0 or more")
        if not 0 < self.decay < 1:
            raise ConfigError(f"--set decay={self.decay}: must be between 0 and 1")
        if not 0 <= self.prior_holdout < 1:
            raise ConfigError(f"--set prior_holdout={self.prior_holdout}: must be in [0, 1)")
        for name, on in (("prior_channel", self.prior_attention),
                         ("top_prior_channel", self.top_prior_attention)):
            if on and getattr(self, name) % 16:
                raise ConfigError(f"--set {name}={getattr(self, name)}: must be a multiple of 16 "
                                  "with attention (8 heads over channel/2)")
        check_temperature(self.temperature, "--set temperature")
        check_fraction(self.resample_fraction, "--set resample_fraction")
        parse_checkpoint_choice(self.prior_checkpoint, self.prior_epochs, "prior_checkpoint")
        parse_checkpoint_choice(self.top_prior_checkpoint, self.prior_epochs, "top_prior_checkpoint")


def check_temperature(value: Any, option: str) -> float:
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{option}={value!r}: expected a number > 0") from None
    if not t > 0 or math.isinf(t):
        raise ConfigError(f"{option}={value!r}: the temperature must be > 0 (1 samples the prior "
                          "as trained, lower stays closer to its most likely codes)")
    return t


def check_fraction(value: Any, option: str) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{option}={value!r}: expected a number in (0, 1]") from None
    if not 0 < f <= 1:
        raise ConfigError(f"{option}={value!r}: must be in (0, 1] (the share of the bottom map "
                          "to resample)")
    return f


class VQVAE2Method(GeneratorMethod):
    """VQ-VAE-2 + PixelSNAIL: new local detail under an image's own structure."""

    name: ClassVar[str] = "vqvae2"
    description: ClassVar[str] = ("VQ-VAE-2 + PixelSNAIL: keep an image's structural codes, "
                                  "resample its local codes (Høj & Møgelmoose 2023)")
    version: ClassVar[int] = 1
    Config: ClassVar[type] = VQVAE2Config
    min_image_size: ClassVar[int] = 8

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
                                out=out, class_names=class_names, image_size=image_size)

    def describe_import(self) -> str:
        parts = ["VQ-VAE-2"] + [f"{level} prior" for level in ("bottom", "top") if f"{level}_prior" in self.state]
        return f"{', '.join(parts)}; {self.config.n_embed} codes"

    def __init__(self, config: VQVAE2Config, image_shape, class_names):
        super().__init__(config, image_shape, class_names)
        c, h, w = self.image_shape
        cfg = config
        self.vqvae = VQVAE2(c, cfg.channel, cfg.n_res_block, cfg.n_res_channel, cfg.embed_dim,
                            cfg.n_embed, cfg.decay)
        self.bottom_prior = PixelSNAIL(
            (h // 4, w // 4), cfg.n_embed, cfg.prior_channel, cfg.prior_kernel, cfg.prior_n_block,
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
                (h // 8, w // 8), cfg.n_embed, cfg.top_prior_channel, cfg.top_prior_kernel,
                cfg.top_prior_n_block, cfg.top_prior_n_res_block, cfg.top_prior_res_channel,
                attention=cfg.top_prior_attention, dropout=cfg.top_prior_dropout,
                n_out_res_block=cfg.top_prior_n_out_res_block,
            )
        # "bottom_prior" / "top_prior": how each prior was trained (or imported); absent = untrained
        self.state: dict[str, Any] = {}

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

    def extra_state(self) -> dict[str, Any]:
        return dict(self.state)

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.state = dict(state or {})

    def _to(self, device) -> None:
        for module in self.modules().values():
            module.to(device).eval()

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, train, ctx: FitContext, unlabeled=None) -> dict[str, Any]:
        """Train everything (see the module docstring); returns the fit's metrics."""
        dev = torch.device(ctx.device)
        self._check_set(train, "training set")
        if unlabeled is not None:
            if unlabeled.channels != self.image_shape[0] or tuple(unlabeled.image_size) != self.image_shape[1:]:
                raise DataError(
                    f"unlabeled pool: images are {unlabeled.channels}x{unlabeled.image_size}, the "
                    f"training images {self.image_shape}; give both the same channels and size")
            if len(unlabeled) == 0:
                unlabeled = None
        for module in self.modules().values():
            init_weights_(module, ctx.generator)
            module.to(dev)
        images = train.float_images()
        metrics = self._fit_vqvae(images, unlabeled, ctx, dev)
        top, bottom = self._codes(images, dev)
        metrics["perplexity_top"] = perplexity(top, self.config.n_embed)
        metrics["perplexity_bottom"] = perplexity(bottom, self.config.n_embed)
        metrics.update(self._fit_priors(top, bottom, unlabeled, ctx, dev))
        self._to(dev)
        return metrics

    def _pool_batches(self, unlabeled, ctx: FitContext, dev):
        """One streamed pass over the pool, as ``[-1, 1]`` batches on ``dev``."""
        for x in unlabeled.iter_batches(self.config.batch_size, ctx.generator):
            yield to_model_range(x).to(dev)

    def _fit_vqvae(self, images: torch.Tensor, unlabeled, ctx: FitContext, dev) -> dict[str, Any]:
        """Codebooks from data, pre-training on the pool, fine-tuning on the training images."""
        cfg, gen = self.config, ctx.generator
        seed = to_model_range(images[torch.randperm(len(images), generator=gen)[:256]]).to(dev)
        if unlabeled is not None:
            seed = torch.cat([next(self._pool_batches(unlabeled, ctx, dev)), seed])
        init_codebooks(self.vqvae, seed, gen)
        metrics = {"recon_l1_untrained": mean_recon_error(self.vqvae, images, dev)}
        opt = torch.optim.Adam(self.vqvae.parameters(), lr=cfg.lr)
        pool_epochs = cfg.pretrain_epochs if unlabeled is not None else 0
        steps = math.ceil(len(images) / cfg.batch_size) * cfg.epochs
        if pool_epochs:
            steps += math.ceil(len(unlabeled) / cfg.batch_size) * pool_epochs

        def step(x):
            return vqvae_step(self.vqvae, opt, x, cfg.commitment, cfg.recon_loss, gen,
                              cfg.codebook_restart, cfg.bottom_dropout)

        with ctx.progress.task("vqvae2: VQ-VAE-2", total=steps) as task:
            for _ in range(pool_epochs):
                for x in self._pool_batches(unlabeled, ctx, dev):
                    task.advance(status=f"pool loss {step(x):.4f}")
            for _ in range(cfg.epochs):
                for idx in batches(len(images), cfg.batch_size, gen):
                    task.advance(status=f"loss {step(to_model_range(images[idx]).to(dev)):.4f}")
        self.vqvae.eval()
        metrics["recon_l1"] = mean_recon_error(self.vqvae, images, dev)
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
            steps += math.ceil(len(unlabeled) / cfg.batch_size) * cfg.prior_pretrain_epochs
        jobs = [("bottom", self.bottom_prior, (bottom, top), (held_bottom, held_top), "prior_checkpoint")]
        if self.top_prior is not None:
            jobs.append(("top", self.top_prior, (top, None), (held_top, None), "top_prior_checkpoint"))
        metrics = {}
        for level, prior, codes, held, option in jobs:
            with ctx.progress.task(f"vqvae2: {level} prior", total=steps) as task:
                record = train_prior(
                    prior, train=codes, held_out=held, pool_batches=pool_codes(level),
                    pretrain_epochs=cfg.prior_pretrain_epochs, epochs=cfg.prior_epochs,
                    lr=cfg.prior_lr, batch_size=cfg.prior_batch_size,
                    pinned=parse_checkpoint_choice(getattr(cfg, option), cfg.prior_epochs, option),
                    generator=gen, device=dev, advance=task.advance,
                    save_dir=None if ctx.work_dir is None else Path(ctx.work_dir) / "vqvae2_checkpoints",
                    name=f"{level}_prior",
                )
            info = {**record.as_dict(), "held_out": source}
            self.state[f"{level}_prior"] = metrics[f"{level}_prior"] = info
        return metrics

    def _check_set(self, data, what: str) -> None:
        shape = (data.channels, *data.image_size)
        if shape != self.image_shape:
            raise DataError(f"{what}: images are {shape} (C, H, W), this generator was built for "
                            f"{self.image_shape}")

    def _codes(self, images: torch.Tensor, dev) -> tuple[torch.Tensor, torch.Tensor]:
        bs = self.config.sample_batch_size
        chunks = (to_model_range(images[s : s + bs]) for s in range(0, len(images), bs))
        return extract_codes(self.vqvae, chunks, dev)

    # -- stages --------------------------------------------------------------------------------
    def encode(self, images: torch.Tensor, soft: torch.Tensor, ctx: StageContext) -> Latents:
        if images.dim() != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise DataError(f"vqvae2 encode: images must be (N, {', '.join(map(str, self.image_shape))})"
                            f", got {tuple(images.shape)}")
        dev = torch.device(ctx.device)
        self._to(dev)
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
        mask = self._region(opts, bottom.shape, ctx.generator)
        dev = torch.device(ctx.device)
        self._to(dev)
        new = []
        bs = self.config.sample_batch_size
        for s in range(0, bottom.shape[0], bs):
            new.append(sample(self.bottom_prior, bottom[s : s + bs].to(dev), mask=mask[s : s + bs],
                              condition=top[s : s + bs].to(dev), temperature=temperature,
                              generator=ctx.generator).cpu())
        codes = dict(out.codes)
        codes["bottom_source"] = bottom
        codes["bottom"] = torch.cat(new) if new else bottom
        info = dict(out.info)
        info["resample"] = {"temperature": temperature, "resampled_cells": int(mask.sum())}
        return Latents(codes=codes, source=out.source, soft=out.soft, info=info, weight=out.weight)

    def decode(self, latents: Latents, ctx: StageContext) -> Synthesis:
        top, bottom = self._check_codes(latents)
        dev = torch.device(ctx.device)
        self._to(dev)
        outs = []
        bs = self.config.sample_batch_size
        with torch.no_grad():
            for s in range(0, top.shape[0], bs):
                x = self.vqvae.decode_codes(top[s : s + bs].to(dev), bottom[s : s + bs].to(dev))
                outs.append(((x.clamp(-1, 1) + 1) / 2).cpu())
        images = torch.cat(outs) if outs else torch.zeros(0, *self.image_shape)
        metrics = {}
        source_images = latents.info.get("images")
        if source_images is not None and len(images) and "batch_row" in latents.codes:
            src = source_images[latents.codes["batch_row"]]
            metrics["structure_error"], metrics["detail_change"] = structure_and_detail(
                images, src, self.config.metric_sigma)
        if "bottom_source" in latents.codes:
            metrics["codes_changed"] = (bottom != latents.codes["bottom_source"]).flatten(1).float().mean(1)
        return Synthesis(images=images, soft=latents.soft, source=latents.source, metrics=metrics,
                         weight=latents.weight)

    # -- checks --------------------------------------------------------------------------------
    def _check_codes(self, latents: Latents) -> tuple[torch.Tensor, torch.Tensor]:
        _, h, w = self.image_shape
        n_embed = self.config.n_embed
        out = []
        for key, shape in (("top", (h // 8, w // 8)), ("bottom", (h // 4, w // 4))):
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

    def _region(self, opts: dict, shape, generator: torch.Generator) -> torch.Tensor:
        """Boolean ``(N, Hb, Wb)`` map of the bottom cells to resample (see the module doc)."""
        n, hb, wb = shape
        region = opts.get("region")
        if region is not None and not (isinstance(region, str) and region.strip().lower() in ("", "all", "none")):
            if isinstance(region, torch.Tensor) and region.dtype == torch.bool:
                if tuple(region.shape[-2:]) != (hb, wb) or region.dim() not in (2, 3) or (
                        region.dim() == 3 and region.shape[0] not in (1, n)):
                    raise ConfigError(f"region: a mask must be ({hb}, {wb}) or ({n}, {hb}, {wb}) "
                                      f"(the bottom map), got {tuple(region.shape)}")
                return region.cpu().expand(n, hb, wb).clone()
            box = parse_box(region)
            y0, x0, y1, x1 = box
            if not (0 <= y0 < y1 <= hb and 0 <= x0 < x1 <= wb):
                raise ConfigError(f"region={','.join(map(str, box))}: outside the {hb}x{wb} bottom map; "
                                  f"give y0,x0,y1,x1 with 0 <= y0 < y1 <= {hb} and 0 <= x0 < x1 <= {wb}")
            mask = torch.zeros(n, hb, wb, dtype=torch.bool)
            mask[:, y0:y1, x0:x1] = True
            return mask
        f = check_fraction(opts.get("resample_fraction", self.config.resample_fraction),
                           "--set resample_fraction")
        mask = torch.zeros(n, hb, wb, dtype=torch.bool)
        if f >= 1:
            return mask.fill_(True)
        bh, bw = max(1, round(math.sqrt(f) * hb)), max(1, round(math.sqrt(f) * wb))
        ys = torch.randint(0, hb - bh + 1, (n,), generator=generator).tolist()
        xs = torch.randint(0, wb - bw + 1, (n,), generator=generator).tolist()
        for r, (y, x) in enumerate(zip(ys, xs)):
            mask[r, y : y + bh, x : x + bw] = True
        return mask

    # -- extras --------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, n: int, generator: torch.Generator, device="cpu", temperature: float = 1.0
                 ) -> torch.Tensor:
        """Unconditional samples ``(n, C, H, W)`` in ``[0, 1]``: top codes from the top prior,
        bottom codes from the bottom prior, decoded. Needs ``top_prior=true``."""
        if self.top_prior is None:
            raise ConfigError("generate() needs a top prior: fit with --set top_prior=true")
        _, h, w = self.image_shape
        dev = torch.device(device)
        self._to(dev)
        top = sample(self.top_prior, torch.zeros(n, h // 8, w // 8, dtype=torch.long, device=dev),
                     temperature=temperature, generator=generator)
        bottom = sample(self.bottom_prior, torch.zeros(n, h // 4, w // 4, dtype=torch.long, device=dev),
                        condition=top, temperature=temperature, generator=generator)
        return ((self.vqvae.decode_codes(top, bottom).clamp(-1, 1) + 1) / 2).cpu()


def parse_box(region: Any) -> tuple[int, int, int, int]:
    """``"y0,x0,y1,x1"`` (or a 4-sequence) -> 4 ints; :class:`ConfigError` otherwise."""
    parts = region.replace("(", "").replace(")", "").split(",") if isinstance(region, str) else list(region)
    try:
        box = tuple(int(str(p).strip()) for p in parts)
    except ValueError:
        box = ()
    if len(box) != 4:
        raise ConfigError(f"region={region!r}: expected a box y0,x0,y1,x1 in bottom-map cells "
                          "(half-open, e.g. 0,0,4,4)")
    return box
