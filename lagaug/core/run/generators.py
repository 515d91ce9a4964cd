"""Fit, load and sample generators: the Python API behind ``lagaug fit`` and ``lagaug sample``.

Sampling runs the stages through :func:`lagaug.core.run.pipeline.synthesize`, the one place
every caller's images are made. Every function takes the plugin manager it works with
(``plugins``); without one it builds a new one
(:func:`lagaug.core.contract.plugins.make_plugin_manager`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

from lagaug.core.config import coerce_option, resolve_options, split_options
from lagaug.core.contract.method import (
    GENERATOR_JSON,
    FitContext,
    GeneratorMethod,
    StageContext,
    Synthesis,
    read_generator_meta,
)
from lagaug.core.contract.plugins import LagaugPluginManager, plugins_or_default
from lagaug.core.errors import CheckpointError, ConfigError
from lagaug.core.progress import Progress
from lagaug.core.run.pipeline import synthesize
from lagaug.core.runtime import release_freed_memory, resolve_device, stage_generator
from lagaug.core.store.atomic import atomic_write_json

FIT_REPORT = "fit.json"  # beside generator.json: what the fit returned, with its wall time


def method_config(cls: type[GeneratorMethod], overrides: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
    """Method ``cls``'s default config with ``--set`` ``overrides`` applied, and the typed options
    (keys ``PLUGIN.key``, other plugins' options, are left out)."""
    own, _ = split_options(overrides or {})
    return resolve_options(cls.default_config(), own, source=f"--set (method {cls.name})")


def saved_options(generator: GeneratorMethod, overrides: dict[str, Any] | None,
                  source: str = "--set") -> tuple[Any, dict[str, Any]]:
    """The typed ``--set`` options for a saved ``generator`` (its config with them applied).

    A key the method does not take at sampling time (not in its ``stage_options``) is refused
    unless it repeats the fitted value: the weights were made with that value, and a new one
    would be silently ignored."""
    own, _ = split_options(overrides or {})
    stage = type(generator).stage_options
    if stage is not None:
        config = generator.config
        names = {f.name for f in dataclasses.fields(config)} if dataclasses.is_dataclass(config) else set()
        for key, value in own.items():
            if key in stage or key not in names:
                continue  # an unknown key gets its error (with the valid keys) below
            fitted = getattr(generator.config, key)
            if coerce_option(generator.config, key, value, label=source + " {key}") != fitted:
                takes = ", ".join(sorted(stage)) or "none"
                raise ConfigError(
                    f"{source} {key}={value}: {key} is fixed when the generator is fitted (this {generator.name} "
                    f"generator has {key}={fitted}); fit a new generator to change it (options at sampling time: "
                    f"{takes})")
    return resolve_options(generator.config, own, source=source)


def checked_options(cls: type[GeneratorMethod], overrides: dict[str, Any] | None, image_shape: tuple[int, int, int],
                    class_names: list[str], saved: GeneratorMethod | None = None) -> tuple[Any, dict[str, Any]]:
    """Every ``--set`` option checked before any work: typed against the method's config (or the
    ``saved`` generator's, :func:`saved_options`), then :meth:`GeneratorMethod.check_options`
    for these images and classes. Returns ``(config, typed options)``."""
    config, typed = method_config(cls, overrides) if saved is None else saved_options(saved, overrides)
    cls.check_options(config, tuple(image_shape), list(class_names))
    return config, typed


def make_method(name: str, image_shape: tuple[int, int, int], class_names: list[str],
                overrides: dict[str, Any] | None = None, *,
                plugins: LagaugPluginManager | None = None) -> GeneratorMethod:
    """A new, unfitted method ``name`` with ``--set`` overrides applied to its config."""
    cls = plugins_or_default(plugins).get_method(name)
    config, _ = method_config(cls, overrides)
    return cls(config, image_shape, class_names)


def fit_generator(name: str, splits, *, overrides: dict[str, Any] | None = None, seed: int = 0,
                  device: str | torch.device = "cpu", progress: Progress | None = None,
                  out: str | Path | None = None, plugins: LagaugPluginManager | None = None) -> GeneratorMethod:
    """Fit generator method ``name`` on ``splits.train`` (+ ``splits.unlabeled``); save to ``out``."""
    from lagaug.core.store.atomic import remove_stray_temporaries

    train = splits.train
    method = make_method(name, (train.channels, *train.image_size), train.class_names, overrides, plugins=plugins)
    type(method).check_options(method.config, method.image_shape, method.class_names)
    type(method).check_train(method.config, train)
    if out is not None:
        remove_stray_temporaries(out)  # what a killed fit's writers left
    ctx = FitContext(
        generator=stage_generator(seed, "fit", name), device=resolve_device(device),
        progress=progress or Progress(quiet=True),
        work_dir=None if out is None else Path(out) / "work", val=splits.val,
    )
    start = time.perf_counter()
    metrics = method.fit(train, ctx, splits.unlabeled) or {}
    method.fit_report = {**metrics, "fit_seconds": round(time.perf_counter() - start, 3)}
    release_freed_memory()  # what the fit freed, back to the system before the next stage
    if out is not None:
        method.save(out)  # generator.json: the same for the same seed and data (no timing in it)
        atomic_write_json(Path(out) / FIT_REPORT, json.loads(json.dumps(method.fit_report, default=str)))
    return method


def check_generator_out(out: str | Path) -> Path:
    """``--out`` of ``fit`` and ``import-checkpoint``, checked before any work: a folder that can
    be written, and new, empty, or what a stopped fit left there (its ``work/`` checkpoints, its
    weights without ``generator.json``, temporary files) — never a saved generator or someone
    else's files."""
    from lagaug.core.store.atomic import check_output_dir, is_temporary
    from lagaug.core.store.generator import GENERATOR_WEIGHTS

    path = check_output_dir(out)
    if (path / GENERATOR_JSON).exists():
        raise ConfigError(f"--out {out}: a generator is already saved there; choose another --out")
    if path.is_dir():
        foreign = sorted(p.name for p in path.iterdir() if p.name not in ("work", GENERATOR_WEIGHTS)
                         and not (p.is_file() and is_temporary(p)))
        if foreign:
            raise ConfigError(f"--out {out}: folder is not empty and holds no lagaug generator (it has "
                              f"{foreign[0]}); choose another --out")
    return path


def load_generator(directory: str | Path, *, expect_method: str | None = None,
                   plugins: LagaugPluginManager | None = None) -> GeneratorMethod:
    """Load a saved generator directory with the method class that saved it."""
    meta = read_generator_meta(directory)
    if expect_method is not None and meta["method"] != expect_method:
        raise CheckpointError(
            f"{directory}: generator was saved by method {meta['method']!r}, but --method is {expect_method!r}"
        )
    cls = plugins_or_default(plugins).get_method(meta["method"])
    return cls.load(directory)


def sample_images(generator: GeneratorMethod, images: torch.Tensor, labels: torch.Tensor | None = None,
                  *, variants: int = 1, seed: int = 0, options: dict[str, Any] | None = None,
                  device: str | torch.device = "cpu", progress: Progress | None = None,
                  pool=None, plugins: LagaugPluginManager | None = None) -> Synthesis:
    """Make ``variants`` new images from each of ``images`` (float ``(N, C, H, W)`` in [0, 1]).

    ``labels`` are class indices or soft labels ``(N, K)``; a generator with more than one class
    needs them. ``options`` are method options (``--set`` keys of the method's config, typed
    here). ``pool``: an :class:`~lagaug.ImageSet` whose first ``N`` rows are ``images`` (methods
    that mix images draw partners from it); default: the images themselves. Sources in the result
    are rows of the pool.
    """
    _, typed = checked_options(type(generator), options, generator.image_shape, generator.class_names,
                               saved=generator)
    pm = plugins_or_default(plugins)
    plugin_options = pm.plugin_options(options or {})
    if variants < 1:
        raise ConfigError(f"--variants must be at least 1, got {variants}")
    k = generator.num_classes
    if labels is None:
        if k > 1:
            raise ConfigError(
                f"this generator knows {k} classes ({', '.join(generator.class_names)}); give the images' "
                "labels (--label NAME, or class folders)"
            )
        labels = torch.zeros(len(images), dtype=torch.long)
    soft = labels.float() if labels.dim() == 2 else torch.nn.functional.one_hot(labels.long(), k).float()
    generator.check_image_shape((images.shape[1], images.shape[2], images.shape[3]))
    if tuple(images.shape[1:]) != tuple(generator.image_shape):
        raise ConfigError(
            f"images have shape {tuple(images.shape[1:])} but the generator was fitted on "
            f"{tuple(generator.image_shape)}; pass --image-size {generator.image_shape[1]}"
        )
    ctx = StageContext(
        generator=stage_generator(seed, "sample"), device=resolve_device(device),
        variants=variants, options=typed, progress=progress or Progress(quiet=True),
        pool=pool, batch_index=torch.arange(len(images)), plugin_options=plugin_options,
    )
    return synthesize(pm, generator, images, soft, ctx)
