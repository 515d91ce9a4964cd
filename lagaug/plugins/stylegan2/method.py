"""The ``stylegan2`` generator method (DAPPER GAN, Manjunath et al. 2020): project an image into
the W space of a StyleGAN2, move the latent, synthesise.

* **fit** — train a StyleGAN2 (``networks``, ``training``) on the unlabelled pool (streamed; the
  *source* set of DAPPER) mixed with the training images (``train_share`` of every batch), or on
  the training images alone; keep ``g_ema`` and the discriminator (its features serve the
  projector). Then measure W from ``w_samples`` mapping samples (mean, spread, principal
  directions) and project the training images (``class_proj_steps``) to fit one linear
  classifier per class in W, whose normals are the ``class`` directions. All of it is saved with
  the generator (safetensors), so a loaded generator resamples without the training data.
* **encode** — projection of each image into W (``w_plus=true``: W+), batched, with early stop
  (``projection``); the codes hold w, the image's optimised noise maps and its reconstruction
  error.
* **resample** — ``ctx.variants`` moves per image (``directions``): ``direction=random`` (w +
  magnitude·w_std·eps, DAPPER's perturbation), ``class`` (along or against the normal of the
  image's class boundary, never across it) or ``pca`` (GANSpace: a principal direction of W).
* **decode** — synthesis from the moved w with the image's own noise maps. Per image, the
  manifest gets ``projection_error`` (mean absolute pixel error of the projection, [0, 1] units),
  ``direction`` (0 random, 1 class, 2 pca), ``magnitude`` (signed, in spreads of W along the
  move), ``component`` (the principal direction for ``pca``, else -1) and ``move_norm`` (the
  length of the move in W).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from lagaug.core.config import apply_overrides, config_to_dict
from lagaug.core.contract.method import FitContext, GeneratorMethod, Latents, StageContext, Synthesis
from lagaug.core.errors import ConfigError, DataError
from lagaug.plugins.stylegan2.config import PROJECTION_OPTIONS, StyleGAN2Config
from lagaug.plugins.stylegan2.directions import (
    DIRECTION_IDS,
    apply_move,
    class_move,
    fit_class_directions,
    mapping_samples,
    pca_move,
    principal_directions,
    random_move,
    w_statistics,
)
from lagaug.plugins.stylegan2.networks import (
    Discriminator,
    Generator,
    count_parameters,
    init_weights_,
    randn,
    resolutions,
    scaled_channels,
)
from lagaug.plugins.stylegan2.projection import ProjectOptions, project
from lagaug.plugins.stylegan2.training import device_generator, real_batches, to_unit_range, train_gan


class LatentStats(nn.Module):
    """What the method knows about W, saved with the generator: the mean, per-dimension spread
    and overall spread of mapping samples, the principal directions, and per class the normal,
    offset and spread of its linear boundary in W (``class_present`` 0 where no class was fitted)."""

    def __init__(self, style_dim: int, n_components: int, n_classes: int):
        super().__init__()
        for name, shape in (("w_avg", (style_dim,)), ("w_std", (style_dim,)), ("w_spread", (1,)),
                            ("pca_components", (n_components, style_dim)), ("pca_stds", (n_components,)),
                            ("class_normals", (n_classes, style_dim)), ("class_offsets", (n_classes,)),
                            ("class_spreads", (n_classes,)), ("class_present", (n_classes,))):
            self.register_buffer(name, torch.zeros(shape))


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class StyleGAN2Method(GeneratorMethod):
    """StyleGAN2 + projection into W + latent moves (DAPPER GAN)."""

    name: ClassVar[str] = "stylegan2"
    description: ClassVar[str] = ("StyleGAN2: project an image into W, move it along a random, class or "
                                  "principal direction, synthesise (DAPPER GAN, Manjunath et al. 2020)")
    version: ClassVar[int] = 1
    Config: ClassVar[type] = StyleGAN2Config
    min_image_size: ClassVar[int] = 8
    stage_options: ClassVar[frozenset[str]] = frozenset(
        (*PROJECTION_OPTIONS, "direction", "magnitude", "class_max_images", "class_proj_steps"))

    @classmethod
    def import_checkpoint(cls, files, *, out, class_names, image_size=None, **options) -> "StyleGAN2Method":
        """A rosinality/stylegan2-pytorch file (``checkpoint``); option ``channel_multiplier`` is
        checked against it (see :mod:`lagaug.plugins.stylegan2.importer`)."""
        from lagaug.plugins.stylegan2.importer import import_reference

        extra = sorted(set(files) - {"checkpoint"})
        if extra or "checkpoint" not in files:
            raise ConfigError("import-checkpoint --method stylegan2 takes one file: lagaug import-checkpoint "
                              "--method stylegan2 FILE --out DIR")
        return import_reference(files["checkpoint"], out=out, class_names=class_names or None, image_size=image_size,
                                channel_multiplier=options.get("channel_multiplier"), method_cls=cls)

    def describe_import(self) -> str:
        return f"style dimension {self.config.style_dim}, {self.config.n_mlp} mapping layers"

    def __init__(self, config: StyleGAN2Config, image_shape, class_names):
        super().__init__(config, image_shape, class_names)
        c, size, _ = self.image_shape
        cfg = config
        channels = self.channel_table()
        self.generator = Generator(size, cfg.style_dim, cfg.n_mlp, channels, c, cfg.lr_mlp)
        self.discriminator = Discriminator(size, channels, c) if cfg.discriminator else None
        self.stats = LatentStats(cfg.style_dim, cfg.pca_components, len(self.class_names))

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def check_image_shape(cls, image_shape) -> None:
        super().check_image_shape(image_shape)
        _, h, w = image_shape
        if h != w or h & (h - 1):
            raise ConfigError(f"method 'stylegan2' needs square images with a power-of-two side "
                              f"(8, 16, 32, 64, ...), got {h}x{w}; pass --image-size "
                              f"{1 << max(3, (max(h, w) - 1).bit_length())}")

    def channel_table(self) -> dict[int, int]:
        cfg, size = self.config, self.image_shape[1]
        if cfg.channels:
            res = resolutions(size)
            if len(cfg.channels) != len(res):
                raise ConfigError(
                    f"--set channels={','.join(map(str, cfg.channels))}: needs one count per resolution "
                    f"{', '.join(map(str, res))} ({len(res)} values), got {len(cfg.channels)}")
            return dict(zip(res, (int(c) for c in cfg.channels)))
        return scaled_channels(size, cfg.channel_base, cfg.channel_max)

    def modules(self) -> dict[str, nn.Module]:
        mods: dict[str, nn.Module] = {"generator": self.generator, "stats": self.stats}
        if self.discriminator is not None:
            mods["discriminator"] = self.discriminator
        return mods

    def _option(self, ctx, key: str) -> Any:
        """A stage option: ``ctx.options[key]`` (checked and typed like ``--set``) or the config's."""
        options = getattr(ctx, "options", None) or {}
        if key not in options:
            return getattr(self.config, key)
        checked = apply_overrides(self.config, {key: options[key]}, source="--set")
        return getattr(checked, key)

    def _projection_options(self, ctx, steps_key: str = "proj_steps") -> ProjectOptions:
        values = {field: self._option(ctx, key) for key, field in PROJECTION_OPTIONS.items()}
        values["steps"] = self._option(ctx, steps_key) if steps_key != "proj_steps" else values["steps"]
        if self.discriminator is None:
            values["feature_weight"] = 0.0
        return ProjectOptions(**values)

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, train, ctx: FitContext, unlabeled=None) -> dict[str, Any]:
        """Train the GAN, measure W, fit the class directions; returns the fit's metrics."""
        started = time.perf_counter()
        cfg, gen = self.config, ctx.generator
        dev = torch.device(ctx.device)
        self._check_set(train, "training set")
        unlabeled = self.usable_pool(unlabeled)
        if self.discriminator is None:
            raise ConfigError("--set discriminator=false: training needs the discriminator; drop the option")
        init_weights_(self.generator, gen)
        init_weights_(self.discriminator, gen)
        untrained = self._sample_stats(self.generator, gen, dev)
        options = cfg.train_options()
        work = None if ctx.work_dir is None else Path(ctx.work_dir) / "stylegan2_train"
        key = fingerprint(config_to_dict(cfg), self.image_shape, len(train),
                          None if unlabeled is None else len(unlabeled), gen.get_state().tolist()[:64])
        stream = real_batches(train.images, unlabeled, options, gen)
        with ctx.progress.task("stylegan2: train GAN", total=options.steps) as task:
            g_ema, record = train_gan(self.generator, self.discriminator, stream, options, gen, dev,
                                      advance=task.advance, checkpoint_dir=work,
                                      checkpoint_every=cfg.checkpoint_every, fingerprint=key)
        self.generator = g_ema
        self.to_device(dev)
        metrics: dict[str, Any] = {
            "generator_parameters": count_parameters(self.generator),
            "discriminator_parameters": count_parameters(self.discriminator),
            "training": record.as_dict(),
            "trained_on": ("training images" if unlabeled is None else
                           f"unlabeled pool ({len(unlabeled)} images) + training images "
                           f"({cfg.train_share:.0%} of each batch)"),
            "sample_stats_untrained": untrained,
            "sample_stats": self._sample_stats(self.generator, gen, dev),
            "data_stats": image_stats(train.float_images(torch.arange(min(len(train), 1024)))),
        }
        metrics.update(self.measure_w(gen, dev))
        if cfg.class_proj_steps > 0:
            metrics.update(self.fit_class_directions(train, ctx))
        if ctx.work_dir is not None:
            self._save_samples(Path(ctx.work_dir) / "stylegan2_samples.png", gen, dev)
        metrics["fit_seconds"] = time.perf_counter() - started
        self.state["fit"] = {k: metrics[k] for k in ("trained_on", "fit_seconds", "generator_parameters")}
        return metrics

    def _check_set(self, data, what: str) -> None:
        shape = (data.channels, *data.image_size)
        if shape != self.image_shape:
            raise DataError(f"{what}: images are {shape} (C, H, W), this generator was built for "
                            f"{self.image_shape}")

    @torch.no_grad()
    def _sample_stats(self, g: Generator, generator: torch.Generator, dev) -> dict[str, float]:
        images = self.generate(64, generator, dev, g=g)
        return image_stats(images)

    def _save_samples(self, path: Path, generator: torch.Generator, dev) -> None:
        from lagaug.core.store.atomic import save_png

        images = self.generate(64, generator, dev)
        c, h, w = self.image_shape
        grid = images.view(8, 8, c, h, w).permute(2, 0, 3, 1, 4).reshape(c, 8 * h, 8 * w)
        save_png(path, grid.repeat_interleave(2, 1).repeat_interleave(2, 2))

    def measure_w(self, generator: torch.Generator, device) -> dict[str, Any]:
        """Mean, spread and principal directions of W from ``w_samples`` mapping samples."""
        cfg = self.config
        samples = mapping_samples(self.generator, cfg.w_samples, generator, device)
        w_avg, w_std, spread = w_statistics(samples)
        comps, stds = principal_directions(samples, cfg.pca_components)
        s = self.stats
        with torch.no_grad():
            s.w_avg.copy_(w_avg)
            s.w_std.copy_(w_std)
            s.w_spread.fill_(spread)
            s.pca_components.zero_()
            s.pca_stds.zero_()
            s.pca_components[: len(comps)] = comps
            s.pca_stds[: len(stds)] = stds
        self._w_samples_cache = samples
        self.state["w_stats"] = {"samples": cfg.w_samples, "spread": spread,
                                 "pca_components": int(len(comps))}
        total_var = float(w_std.pow(2).sum())
        return {"w_spread": spread,
                "pca_explained": [float(v) ** 2 / total_var for v in stds] if total_var > 0 else []}

    def fit_class_directions(self, train, ctx, steps_key: str = "class_proj_steps") -> dict[str, Any]:
        """Project images of ``train`` (an ImageSet; at most ``class_max_images`` per class, drawn
        from ``ctx.generator``; ``steps_key`` steps, in W) and fit one linear classifier per
        class on their latents (InterFaceGAN)."""
        if self.num_classes < 2:
            return {}
        self._check_set(train, "class-direction images")
        dev = torch.device(ctx.device)
        options = self._projection_options(ctx, steps_key)
        options.w_plus = False
        labels = train.targets().argmax(1)
        cap = int(self._option(ctx, "class_max_images"))
        rows = []
        for k in range(self.num_classes):
            members = torch.nonzero(labels == k).flatten()
            if len(members) > cap:
                members = members[torch.randperm(len(members), generator=ctx.generator)[:cap]].sort().values
            rows.append(members)
        rows = torch.cat(rows)
        result = self._project_all(train.float_images(rows), options, ctx, dev,
                                   "stylegan2: project training images")
        samples = getattr(self, "_w_samples_cache", None)
        if samples is None:
            samples = mapping_samples(self.generator, self.config.w_samples, ctx.generator, dev)
        fitted = fit_class_directions(result["w"], labels[rows], self.num_classes, self.stats.w_avg.cpu(),
                                      self.stats.w_std.cpu(), samples=samples)
        s = self.stats
        with torch.no_grad():
            s.class_normals.copy_(fitted["normals"])
            s.class_offsets.copy_(fitted["offsets"])
            s.class_spreads.copy_(fitted["spreads"])
            s.class_present.copy_(fitted["present"])
        info = {"images": int(len(rows)), "projection_steps": options.steps,
                "projection_error_mean": float(result["error"].mean()),
                "accuracy": [round(float(a), 4) for a in fitted["accuracy"]],
                "classes": [n for n, p in zip(self.class_names, fitted["present"]) if p > 0]}
        self.state["class_directions"] = info
        return {"class_directions": info}

    # -- stages --------------------------------------------------------------------------------
    def _project_all(self, images: torch.Tensor, options: ProjectOptions, ctx, dev, label: str) -> dict[str, Any]:
        if not self.state.get("w_stats"):
            raise ConfigError("this stylegan2 generator has no statistics of W; fit it with `lagaug fit` "
                              "or import it with `lagaug import-checkpoint --method stylegan2`")
        self.to_device(dev)
        bs = self.config.proj_batch
        chunks = [images[s : s + bs] for s in range(0, len(images), bs)]
        ws, noises, errors, steps = [], [], [], []
        progress = getattr(ctx, "progress", None)
        total = options.steps * len(chunks)
        w_avg, spread = self.stats.w_avg, float(self.stats.w_spread[0])

        def run(advance):
            for x in chunks:
                p = project(self.generator, x, w_avg, spread, options, ctx.generator, dev,
                            d=self.discriminator, advance=advance)
                ws.append(p.w)
                noises.append(p.noise)
                errors.append(p.error)
                steps.append(p.steps)
                if advance is not None and p.steps < options.steps:
                    advance(options.steps - p.steps)

        if progress is not None:
            with progress.task(label, total=total) as task:
                run(task.advance)
        else:
            run(None)
        if not chunks:
            n_layers = self.generator.num_layers
            d = self.generator.style_dim
            shape = (0, self.generator.n_latent, d) if options.w_plus else (0, d)
            return {"w": torch.zeros(shape), "error": torch.zeros(0), "steps": [],
                    "noise": [torch.zeros(0, 1, s, s) for s in self.generator.noise_sides()][:n_layers]}
        return {"w": torch.cat(ws), "error": torch.cat(errors), "steps": steps,
                "noise": [torch.cat([n[i] for n in noises]) for i in range(len(noises[0]))]}

    def encode(self, images: torch.Tensor, soft: torch.Tensor, ctx: StageContext) -> Latents:
        if images.dim() != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise DataError(f"stylegan2 encode: images must be (N, {', '.join(map(str, self.image_shape))})"
                            f", got {tuple(images.shape)}")
        dev = torch.device(ctx.device)
        options = self._projection_options(ctx)
        result = self._project_all(images.float(), options, ctx, dev, "stylegan2: project")
        codes = {"w": result["w"], "projection_error": result["error"]}
        codes.update({f"noise_{i}": m for i, m in enumerate(result["noise"])})
        return Latents(codes=codes, source=self._source_rows(images.shape[0], ctx), soft=soft.float(),
                       info={"projection_steps": result["steps"], "w_plus": options.w_plus})

    @staticmethod
    def _source_rows(n: int, ctx) -> torch.Tensor:
        """The provenance of the encoded rows: ``ctx.batch_rows(n)`` (pool rows) where the context
        has it, else ``ctx.batch_index``, else the batch's own indices ``0 .. n-1``."""
        rows = getattr(ctx, "batch_rows", None)
        if rows is not None:
            return rows(n)
        index = getattr(ctx, "batch_index", None)
        return torch.arange(n) if index is None else torch.as_tensor(index, dtype=torch.long).cpu()

    def resample(self, latents: Latents, ctx: StageContext) -> Latents:
        w = self._check_w(latents)
        direction = self._option(ctx, "direction")
        magnitude = float(self._option(ctx, "magnitude"))
        if direction == "class":
            self._ensure_class_directions(ctx)
        out = latents.repeat(max(int(ctx.variants), 1))
        w = out.codes["w"].float()
        s = self.stats
        if direction == "random":
            move = random_move(w, s.w_std.cpu(), magnitude, ctx.generator)
        elif direction == "pca":
            move = pca_move(w, s.pca_components.cpu(), s.pca_stds.cpu(), magnitude,
                            self.config.pca_components, ctx.generator)
        else:
            classes = out.soft.argmax(1) if len(out) else torch.zeros(0, dtype=torch.long)
            missing = [self.class_names[int(c)] for c in classes.unique()
                       if float(s.class_present[int(c)]) == 0]
            if missing:
                raise ConfigError(f"--set direction=class: no class direction for class {missing[0]!r} "
                                  "(its training images were all of one class); use direction=random or pca")
            move = class_move(w, classes, s.class_normals.cpu(), s.class_offsets.cpu(),
                              s.class_spreads.cpu(), magnitude, ctx.generator)
        codes = dict(out.codes)
        codes["w_source"] = w
        codes["w"] = apply_move(w, move["delta"])
        codes["direction"] = torch.full((len(out),), float(DIRECTION_IDS[direction]))
        codes["magnitude"] = move["magnitude"].float()
        codes["component"] = move["component"].float()
        codes["move_norm"] = move["delta"].norm(dim=1).float()
        info = dict(out.info)
        info["resample"] = {"direction": direction, "magnitude": magnitude}
        return Latents(codes=codes, source=out.source, soft=out.soft, info=info)

    def _ensure_class_directions(self, ctx) -> None:
        if self.state.get("class_directions"):
            return
        pool = getattr(ctx, "pool", None)  # the images the batch was drawn from, when the core gives them
        if pool is not None and len(pool) and self.num_classes >= 2:
            # a generator fitted with class_proj_steps=0 still needs projected images here: with
            # 0 steps every image would sit at the mean w and no direction could be fitted
            key = "class_proj_steps" if self._option(ctx, "class_proj_steps") > 0 else "proj_steps"
            self.fit_class_directions(pool, ctx, key)
            return
        raise ConfigError("--set direction=class: this stylegan2 generator has no class directions "
                          "(fitted with class_proj_steps=0, or imported); use direction=random or pca, "
                          "or fit one with `lagaug fit --method stylegan2`")

    def decode(self, latents: Latents, ctx: StageContext) -> Synthesis:
        w = self._check_w(latents)
        n_maps = self.generator.num_layers
        noise = None
        if all(f"noise_{i}" in latents.codes for i in range(n_maps)):
            noise = [latents.codes[f"noise_{i}"] for i in range(n_maps)]
        dev = torch.device(ctx.device)
        self.to_device(dev)
        bs = self.config.sample_batch_size
        outs = []
        with torch.no_grad():
            for s in range(0, len(w), bs):
                maps = None if noise is None else [m[s : s + bs].to(dev) for m in noise]
                outs.append(to_unit_range(self.generator.synthesis(w[s : s + bs].to(dev), noise=maps)).cpu())
        images = torch.cat(outs) if outs else torch.zeros(0, *self.image_shape)
        metrics = {k: latents.codes[k].float() for k in
                   ("projection_error", "direction", "magnitude", "component", "move_norm")
                   if k in latents.codes}
        return Synthesis(images=images, soft=latents.soft, source=latents.source, metrics=metrics)

    def _check_w(self, latents: Latents) -> torch.Tensor:
        w = latents.codes.get("w")
        d, n_latent = self.generator.style_dim, self.generator.n_latent
        if w is None:
            raise DataError(f"stylegan2: latents have no 'w' codes (got {sorted(latents.codes)}); "
                            "encode the images with the stylegan2 method first")
        if not w.is_floating_point() or not (
                (w.dim() == 2 and w.shape[1] == d) or (w.dim() == 3 and tuple(w.shape[1:]) == (n_latent, d))):
            raise DataError(f"stylegan2: 'w' codes must be float (N, {d}) or (N, {n_latent}, {d}), "
                            f"got {w.dtype} {tuple(w.shape)}")
        return w.float().cpu()

    # -- extras --------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, n: int, generator: torch.Generator, device="cpu", g: Generator | None = None,
                 truncation: float = 1.0) -> torch.Tensor:
        """Unconditional samples ``(n, C, H, W)`` in ``[0, 1]`` (z and noise from ``generator``;
        ``truncation < 1`` pulls w towards the mean w)."""
        g = g if g is not None else self.generator
        dev = torch.device(device)
        g = g.to(dev).eval()
        gen = device_generator(generator, dev)
        w = g.mapping(randn((n, g.style_dim), gen, dev))
        if truncation != 1.0:
            avg = self.stats.w_avg.to(dev)
            w = avg + truncation * (w - avg)
        return to_unit_range(g.synthesis(w, generator=gen)).cpu()


def image_stats(images: torch.Tensor) -> dict[str, float]:
    """Summary statistics of ``[0, 1]`` images: mean and spread of pixel values, mean local
    contrast (absolute difference of horizontal neighbours) and the spread of the per-image means."""
    x = images.float()
    return {
        "mean": float(x.mean()),
        "std": float(x.std()),
        "edge": float((x[..., 1:] - x[..., :-1]).abs().mean()),
        "image_mean_std": float(x.flatten(1).mean(1).std()) if len(x) > 1 else 0.0,
    }
