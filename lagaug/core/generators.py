"""Fit, load and sample generators: the Python API behind ``lagaug fit`` and ``lagaug sample``.

``synthesize`` is the one place where encode -> resample -> decode -> filter runs, through the
plugin hooks, so plugins can wrap or override any stage for every caller.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import torch

from lagaug.core.config import apply_overrides
from lagaug.core.errors import CheckpointError, ConfigError
from lagaug.core.method import FitContext, GeneratorMethod, StageContext, Synthesis, read_generator_meta
from lagaug.core.plugins import get_plugin_manager
from lagaug.core.progress import Progress


def derive_seed(seed: int, *parts: Any) -> int:
    """A seed for one stage of a run, derived from the run seed and the stage's name/number.

    Deriving (rather than drawing in sequence from one stream) keeps a resumed run identical to
    an uninterrupted one.
    """
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "big")


def stage_generator(seed: int, *parts: Any) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, *parts))


def resolve_device(name: str | None) -> torch.device:
    """``auto`` picks CUDA when present, then MPS, else CPU; anything else must be available."""
    name = (name or "cpu").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r} is not a device; use cpu, cuda, cuda:N, mps or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available here; use --device cpu or auto")
    return device


def make_method(name: str, image_shape: tuple[int, int, int], class_names: list[str],
                overrides: dict[str, Any] | None = None) -> GeneratorMethod:
    """A new, unfitted method ``name`` with ``--set`` overrides applied to its config."""
    cls = get_plugin_manager().get_method(name)
    config = apply_overrides(cls.default_config(), overrides or {}, source=f"--set (method {name})")
    return cls(config, image_shape, class_names)


def fit_generator(name: str, splits, *, overrides: dict[str, Any] | None = None, seed: int = 0,
                  device: str | torch.device = "cpu", progress: Progress | None = None,
                  out: str | Path | None = None) -> GeneratorMethod:
    """Fit generator method ``name`` on ``splits.train`` (+ ``splits.unlabeled``); save to ``out``."""
    train = splits.train
    method = make_method(name, (train.channels, *train.image_size), train.class_names, overrides)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    ctx = FitContext(
        generator=stage_generator(seed, "fit", name), device=dev,
        progress=progress or Progress(quiet=True),
        work_dir=None if out is None else Path(out) / "work", val=splits.val,
    )
    method.fit_metrics = method.fit(train, ctx, splits.unlabeled)
    if out is not None:
        method.save(out)
    return method


def load_generator(directory: str | Path, *, expect_method: str | None = None) -> GeneratorMethod:
    """Load a saved generator directory with the method class that saved it."""
    meta = read_generator_meta(directory)
    if expect_method is not None and meta["method"] != expect_method:
        raise CheckpointError(
            f"{directory}: generator was saved by method {meta['method']!r}, but --method is {expect_method!r}"
        )
    cls = get_plugin_manager().get_method(meta["method"])
    return cls.load(directory)


def synthesize(method: GeneratorMethod, images: torch.Tensor, soft: torch.Tensor,
               ctx: StageContext) -> Synthesis:
    """encode -> resample -> decode -> filter, each through its plugin hook."""
    hook = get_plugin_manager().hook
    latents = hook.lagaug_encode(method=method, images=images, soft=soft, context=ctx)
    latents = hook.lagaug_resample(method=method, latents=latents, context=ctx)
    synthesis = hook.lagaug_decode(method=method, latents=latents, context=ctx)
    keep = torch.ones(len(synthesis), dtype=torch.bool)
    for verdict in hook.lagaug_filter_synthesized(method=method, synthesis=synthesis, context=ctx):
        if verdict is not None:
            keep &= torch.as_tensor(verdict, dtype=torch.bool).reshape(-1)
    return synthesis if bool(keep.all()) else synthesis.subset(keep)


def sample_images(generator: GeneratorMethod, images: torch.Tensor, labels: torch.Tensor | None = None,
                  *, variants: int = 1, seed: int = 0, options: dict[str, Any] | None = None,
                  device: str | torch.device = "cpu", progress: Progress | None = None) -> Synthesis:
    """Make ``variants`` new images from each of ``images`` (float ``(N, C, H, W)`` in [0, 1]).

    ``labels`` are class indices (default: class 0) or soft labels ``(N, K)``. ``options`` are
    method sampling options (validated against the method's config keys).
    """
    options = dict(options or {})
    if options:
        checked = apply_overrides(generator.config, options, source="--set")
        options = {k: getattr(checked, k) for k in options}
    if variants < 1:
        raise ConfigError(f"--variants must be at least 1, got {variants}")
    k = generator.num_classes
    if labels is None:
        labels = torch.zeros(len(images), dtype=torch.long)
    soft = labels.float() if labels.dim() == 2 else torch.nn.functional.one_hot(labels.long(), k).float()
    ctx = StageContext(
        generator=stage_generator(seed, "sample"),
        device=device if isinstance(device, torch.device) else resolve_device(device),
        variants=variants, options=options, progress=progress or Progress(quiet=True),
    )
    generator.check_image_shape((images.shape[1], images.shape[2], images.shape[3]))
    if tuple(images.shape[1:]) != tuple(generator.image_shape):
        raise ConfigError(
            f"images have shape {tuple(images.shape[1:])} but the generator was fitted on "
            f"{tuple(generator.image_shape)}; pass --image-size {generator.image_shape[1]}"
        )
    return synthesize(generator, images, soft, ctx)


def config_dict(config: Any) -> dict:
    return dataclasses.asdict(config)
