"""The iterative hard-sample loop (Høj & Møgelmoose 2023, Fig. 2).

Iteration ``i`` (0 .. ``iterations``): train the ensemble on the current training set, evaluate it on
the test split, score every training image; then, unless it is the last iteration, select the
``hard_k`` hardest, synthesize ``variants`` images from each through the generator, and add them:
they join the training set of iteration ``i + 1``. Iteration 0 is the baseline.

Everything is recorded in the run directory (:mod:`lagaug.core.rundir`); a killed run resumes with
``resume=True`` and redoes nothing that finished.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lagaug.core.data.dataset import ImageSet
from lagaug.core.ensemble import EnsembleConfig, check_classifier_name, preset, train_ensemble
from lagaug.core.errors import ConfigError
from lagaug.core.generators import (
    derive_seed, fit_generator, load_generator, resolve_device, stage_generator, synthesize,
)
from lagaug.core.method import GENERATOR_JSON, GeneratorMethod, StageContext, Synthesis
from lagaug.core.plugins import get_plugin_manager
from lagaug.core.progress import Progress
from lagaug.core.rundir import RunDir
from lagaug.core.store import save_png


@dataclass
class AugmentConfig:
    """Everything ``lagaug augment`` is told. Saved as the run's ``config.json``."""

    method: str
    hard_k: int = 2
    iterations: int = 2
    variants: int = 1
    data: str | None = None
    unlabeled: str | None = None
    classes: list[str] | None = None
    include_synthetic: bool = False
    image_size: int = 32
    seed: int = 0
    preset: str = "cpu"
    ensemble: int | None = None
    epochs: int | None = None
    classifier: str | None = None
    generator: str | None = None
    set: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    out: str = "lagaug-runs/augment"
    bad_images: str = "warn"

    def ensemble_config(self) -> EnsembleConfig:
        overrides = {k: v for k, v in (("members", self.ensemble), ("epochs", self.epochs),
                                       ("classifier", self.classifier)) if v is not None}
        return preset(self.preset, **overrides)

    def validate(self) -> None:
        for name, value, low in (("--hard-k", self.hard_k, 1), ("--iterations", self.iterations, 0),
                                 ("--variants", self.variants, 1), ("--image-size", self.image_size, 8)):
            if value < low:
                raise ConfigError(f"{name} must be at least {low}, got {value}")
        if self.ensemble is not None and self.ensemble < 1:
            raise ConfigError(f"--ensemble must be at least 1, got {self.ensemble}")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"--epochs must be at least 1, got {self.epochs}")


@dataclass
class AugmentResult:
    run_dir: Path
    rows: list[dict]
    generator: GeneratorMethod | None = None


def resolve_classes(names: list[str] | None, class_names: list[str]) -> list[int] | None:
    """Class names (or indices) from ``--classes`` to indices; unknown ones list the valid ones."""
    if not names:
        return None
    out = []
    for name in names:
        if name in class_names:
            out.append(class_names.index(name))
        elif name.isdigit() and int(name) < len(class_names):
            out.append(int(name))
        else:
            raise ConfigError(f"--classes {name!r} is not a class; classes are: {', '.join(class_names)}")
    return out


def load_png(path: Path, channels: int) -> torch.Tensor:
    """A PNG written by the run, as uint8 ``(C, H, W)``."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("L" if channels == 1 else "RGB"))
    t = torch.from_numpy(arr.copy())
    return t[None] if channels == 1 else t.permute(2, 0, 1)


def synthetic_set_from_manifest(run: RunDir, lines: list[dict], like: ImageSet) -> ImageSet | None:
    """Rebuild the synthetic images of one batch from its PNGs and manifest lines (None if empty)."""
    if not lines:
        return None
    images = torch.stack([load_png(run.root / l["file"], like.channels) for l in lines])
    return ImageSet(
        images=images,
        labels=torch.tensor([l["label_index"] for l in lines]),
        class_names=like.class_names,
        ids=[l["id"] for l in lines],
        soft=torch.tensor([l["soft"] for l in lines], dtype=torch.float32),
        synthetic=torch.ones(len(lines), dtype=torch.bool),
        sources=[l["source"] for l in lines],
    )


def scores_csv(data: ImageSet, scores: torch.Tensor) -> str:
    buf = io.StringIO()
    buf.write("id,label,synthetic,score\n")
    for i in range(len(data)):
        buf.write(f"{data.ids[i]},{data.class_names[data.labels[i]]},{int(data.synthetic[i])},{scores[i]:.6f}\n")
    return buf.getvalue()


def read_scores(run: RunDir, it: int) -> torch.Tensor:
    lines = (run.iteration_dir(it) / "scores.csv").read_text().splitlines()[1:]
    return torch.tensor([float(l.rsplit(",", 1)[1]) for l in lines])


def check_generator_dir(directory: str, method: str, train: ImageSet) -> None:
    """Fail before any work when a saved generator does not fit this run."""
    from lagaug.core.errors import CheckpointError
    from lagaug.core.method import read_generator_meta

    meta = read_generator_meta(directory)
    if meta["method"] != method:
        raise CheckpointError(
            f"{directory}: generator was saved by method {meta['method']!r}, but --method is {method!r}"
        )
    shape = (train.channels, *train.image_size)
    if tuple(meta["image_shape"]) != shape:
        raise CheckpointError(
            f"{directory}: generator was fitted on images of shape {tuple(meta['image_shape'])}, "
            f"this data has {shape}; match --image-size or fit a new generator"
        )
    if list(meta["class_names"]) != train.class_names:
        raise CheckpointError(
            f"{directory}: generator classes {meta['class_names']} differ from the data's {train.class_names}"
        )


class Loop:
    """One run of the hard-sample loop; see the module docstring."""

    def __init__(self, config: AugmentConfig, progress: Progress | None = None, resume: bool = False):
        config.validate()
        self.cfg = config
        self.progress = progress or Progress(quiet=True)
        self.resume = resume
        self.run = RunDir(config.out)
        self.pm = get_plugin_manager()
        self.device = resolve_device(config.device)
        self.ens_cfg = config.ensemble_config()

    # -- set-up --------------------------------------------------------------------------------
    def prepare(self) -> None:
        from lagaug.core.data.sources import load_data

        cfg = self.cfg
        method_cls = self.pm.get_method(cfg.method)  # unknown method: fails before any work
        check_classifier_name(self.ens_cfg.classifier)
        from lagaug.core.config import apply_overrides

        apply_overrides(method_cls.default_config(), cfg.set, source=f"--set (method {cfg.method})")
        self.splits = load_data(cfg.data, image_size=cfg.image_size, seed=cfg.seed,
                                unlabeled=cfg.unlabeled, bad_images=cfg.bad_images, progress=self.progress)
        train = self.splits.train
        method_cls.check_image_shape((train.channels, *train.image_size))
        self.classes = resolve_classes(cfg.classes, train.class_names)
        if cfg.generator:
            check_generator_dir(cfg.generator, cfg.method, train)
        self.run.start(dataclasses.asdict(cfg), self.resume)

    def generator(self) -> GeneratorMethod:
        cfg = self.cfg
        if cfg.generator:
            return load_generator(cfg.generator, expect_method=cfg.method)
        if (self.run.generator_dir / GENERATOR_JSON).exists():
            return load_generator(self.run.generator_dir, expect_method=cfg.method)
        return fit_generator(cfg.method, self.splits, overrides=cfg.set, seed=cfg.seed,
                             device=self.device, progress=self.progress, out=self.run.generator_dir)

    # -- one iteration -------------------------------------------------------------------------
    def evaluate(self, it: int, train: ImageSet, added: int) -> dict:
        """Train and evaluate the ensemble of iteration ``it`` and score the training set."""
        ctx = self.stage_context(it)
        ensemble = train_ensemble(
            train, self.splits.val, self.ens_cfg, stage_generator(self.cfg.seed, "ensemble", it),
            device=self.device, progress=self.progress, checkpoint_dir=self.run.iteration_dir(it) / "ensemble",
            label=f"iteration {it}: ensemble",
        )
        result = ensemble.evaluate(self.splits.test)
        scores = None
        if it < self.cfg.iterations:
            scores = self.pm.hook.lagaug_score(ensemble=ensemble, dataset=train, context=ctx)
        metrics = {
            "iteration": it, "train_size": len(train), "synthetic_total": int(train.synthetic.sum()),
            "added": added, **{k: v for k, v in result.items() if k != "per_member"},
            "per_member": result["per_member"],
        }
        self.run.write_iteration(it, metrics, None if scores is None else scores_csv(train, scores))
        self.notify(it, metrics, added)
        return metrics

    def augment(self, it: int, train: ImageSet, method: GeneratorMethod) -> ImageSet | None:
        """Select the hardest images of iteration ``it`` and synthesize the batch for ``it + 1``."""
        ctx = self.stage_context(it)
        scores = read_scores(self.run, it)
        chosen = self.pm.hook.lagaug_select(
            scores=scores, dataset=train, k=self.cfg.hard_k, classes=self.classes,
            include_synthetic=self.cfg.include_synthetic, context=ctx,
        )
        chosen = torch.as_tensor(chosen, dtype=torch.long)
        with self.progress.task(f"iteration {it}: synthesize with {method.name}", 1) as task:
            synth = synthesize(method, train.float_images(chosen), train.targets()[chosen], ctx)
            task.advance(1, status=f"{len(synth)} images")
        lines = self.write_synthetic(it + 1, synth, train, chosen, scores, ctx)
        self.write_grid(it + 1, train.float_images(chosen), synth)
        return synthetic_set_from_manifest(self.run, lines, train)

    def write_synthetic(self, nxt: int, synth: Synthesis, train: ImageSet, chosen: torch.Tensor,
                        scores: torch.Tensor, ctx: StageContext) -> list[dict]:
        folder = self.run.synthetic_dir(nxt)
        lines = []
        for j in range(len(synth)):
            src = int(chosen[synth.source[j]])
            name = f"{j:05d}.png"
            save_png(folder / name, synth.images[j])
            soft = synth.soft[j].float()
            lines.append({
                "id": f"synthetic/it{nxt:03d}/{j:05d}", "file": f"synthetic/it{nxt:03d}/{name}",
                "iteration": nxt, "method": self.cfg.method, "seed": derive_seed(self.cfg.seed, "stage", nxt - 1),
                "source": train.ids[src], "source_label": train.class_names[train.labels[src]],
                "source_score": round(float(scores[src]), 6),
                "label": train.class_names[int(soft.argmax())], "label_index": int(soft.argmax()),
                "soft": [round(float(v), 6) for v in soft],
                **{k: round(float(v[j]), 6) for k, v in synth.metrics.items()},
            })
        self.run.write_synthetic_manifest(nxt, lines)
        return lines

    def write_grid(self, nxt: int, sources: torch.Tensor, synth: Synthesis) -> None:
        from lagaug.core.report import save_pair_grid

        save_pair_grid(self.run.root / "grids" / f"it{nxt:03d}.png", sources, synth.images, synth.source)

    def stage_context(self, it: int) -> StageContext:
        return StageContext(
            generator=stage_generator(self.cfg.seed, "stage", it), device=self.device,
            variants=self.cfg.variants, options=dict(self.cfg.set), iteration=it, progress=self.progress,
        )

    def notify(self, it: int, metrics: dict, added: int) -> None:
        try:
            self.pm.hook.lagaug_iteration_end(iteration=it, metrics=metrics, added=added, run_dir=self.run.root)
        except Exception as exc:  # a logger plugin must not stop the run
            self.progress.log(f"[yellow]warning: lagaug_iteration_end hook failed: {type(exc).__name__}: {exc}")

    # -- the whole run -------------------------------------------------------------------------
    def execute(self) -> AugmentResult:
        self.prepare()
        method = self.generator()
        train = self.splits.train
        for it in range(self.cfg.iterations + 1):
            added = 0
            if it > 0:
                lines = self.run.synthetic_manifest(it)
                if lines is None:
                    new = self.augment(it - 1, train, method)
                else:
                    new = synthetic_set_from_manifest(self.run, lines, train)
                added = 0 if new is None else len(new)
                train = train.concat(new) if added else train
            if self.run.iteration_metrics(it) is None:
                self.evaluate(it, train, added)
        rows = self.run.write_metrics_tables()
        from lagaug.core.report import plot_metrics

        plot_metrics(rows, self.run.root / "metrics.png")
        return AugmentResult(self.run.root, rows, method)


def run_augment(config: AugmentConfig, progress: Progress | None = None, resume: bool = False) -> AugmentResult:
    """Run the hard-sample loop as configured; see :class:`Loop`."""
    return Loop(config, progress, resume).execute()
