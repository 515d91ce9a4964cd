"""Side-by-side comparison of training sets: does the generator's output help, honestly?

``run_compare`` trains classifiers on several *arms* of the same data split, with the same seeds,
for several repeats, and reports each arm's macro-F1, accuracy and AUC on the test split as mean ±
95% confidence interval over repeats, with a paired significance test against the baseline:

* ``real`` — the real training images only (the baseline);
* ``classic`` — the same images, each batch randomly rotated and shifted (:mod:`lagaug.core.classic`);
* ``METHOD`` — real images plus images synthesized from them by the generator method (e.g. ``vae``);
* ``classic+METHOD`` — both;
* ``duplicate`` — the control of Høj & Møgelmoose (2023, §5.3): as many extra images as the
  ``METHOD`` arm adds, but copies of the very source images they were made from. A gain that this
  arm shows too is not the generator's doing (more steps on the same images give it).

A repeat ``r`` draws its own training subset when ``train_size`` is given (class-balanced, the
protocol of Garay-Maestre et al. 2019), carves the validation images (early stopping, checkpoint
choice) out of those training images — never the test set —, fits the generator on them, and
synthesizes the extra images once; every arm of the repeat then trains with the same classifier
seeds. The test set is the same for all repeats (optionally a fixed class-balanced subset).

Run directory (``RUN`` is ``out``)::

    RUN/config.json                          the resolved configuration (written first)
    RUN/repeats/r000/split.json              ids of the repeat's training and validation images
    RUN/repeats/r000/generator/              the repeat's fitted generator
    RUN/repeats/r000/synthetic/*.png         its synthesized images; manifest.jsonl marks them done
    RUN/repeats/r000/grid.png                some sources (left) beside what was made from them
    RUN/repeats/r000/arms/ARM/metrics.json   one finished cell (its presence marks it done)
    RUN/cells.jsonl                          every finished cell, one line each
    RUN/results.csv, results.md, results.json, comparisons.csv, results.png

Every file is written atomically; ``resume=True`` redoes nothing that finished.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import itertools
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lagaug.core.classic import ClassicAugment, ClassicConfig
from lagaug.core.config import apply_overrides, config_from_dict
from lagaug.core.data.dataset import DataSplits, ImageSet
from lagaug.core.ensemble import PRESETS, EnsembleConfig, check_classifier_input, train_ensemble
from lagaug.core.errors import ConfigError, DataError
from lagaug.core.generators import derive_seed, fit_generator, load_generator, resolve_device, stage_generator, synthesize
from lagaug.core.method import GENERATOR_JSON, GeneratorMethod, StageContext
from lagaug.core.metrics import mean_ci
from lagaug.core.plugins import get_plugin_manager
from lagaug.core.progress import Progress
from lagaug.core.rundir import RunDir
from lagaug.core.store import atomic_write_json, atomic_write_lines, atomic_write_text, save_png

REAL, CLASSIC, DUPLICATE = "real", "classic", "duplicate"
METRICS = ("f1", "accuracy", "auc")
METRIC_NAMES = {"f1": "macro-F1", "accuracy": "accuracy", "auc": "AUC"}
RESULT_COLUMNS = [
    "arm", "repeats", "train_size", "added",
    "f1_mean", "f1_ci", "accuracy_mean", "accuracy_ci", "auc_mean", "auc_ci",
    "f1_delta_vs_real", "f1_p_vs_real", "f1_significant_vs_real",
]
COMPARISON_COLUMNS = ["arm", "baseline", "metric", "n", "delta", "p", "test", "significant"]


# -- configuration ---------------------------------------------------------------------------------


@dataclass
class CompareConfig:
    """Everything ``lagaug compare`` is told. Saved as the run's ``config.json``.

    :ivar method: the generator method of the ``METHOD`` arms (any registered plugin).
    :ivar arms: arm names (``real``, ``classic``, METHOD, ``classic+``METHOD, ``duplicate``;
        ``method`` stands for the method's name); ``None`` = all five.
    :ivar repeats: how many repeats (each: own training subset if ``train_size``, own seeds).
    :ivar train_size: training images drawn per repeat from the source's training images
        (validation included); ``None`` = use the source's training split as it is.
    :ivar balanced: draw ``train_size`` with the same count per class (else proportionally).
    :ivar val_fraction: share of each class's training images carved off for validation (at least
        one per class with two or more images; 0 = no validation, the last epoch is kept).
    :ivar test_size: evaluate on a fixed class-balanced subset of this many test images.
    :ivar synthetic_per_image: synthetic images per real training image in the ``METHOD`` arms
        (fractions allowed: 0.5 makes one for every other image); the duplicate arm adds as many.
    :ivar classic: :class:`~lagaug.core.classic.ClassicConfig` overrides (rotation, shift_x, ...).
    :ivar ensemble: :class:`~lagaug.core.ensemble.EnsembleConfig` overrides on top of ``preset``
        (classifier, epochs, members, lr, batch_size, optimizer, ...).
    :ivar budget: ``epochs`` — every arm trains ``epochs`` passes over its own training set (so arms
        with extra images also get more optimisation steps; the duplicate arm controls for that);
        ``steps`` — every arm gets the optimisation steps of ``epochs`` passes over the largest arm,
        so arms differ only in what they train on.
    :ivar set: method config overrides (``--set``), also passed to its stages as options (e.g.
        ``sampling=prior`` or ``posterior``).
    :ivar generator_val: let the generator see the validation images (for its own early stopping
        and checkpoint choice); ``False`` fits it on the training images alone, for its full length.
    :ivar alpha: significance level of the paired tests.
    :ivar test: ``auto`` (Wilcoxon signed-rank when scipy is installed, else the exact sign-flip
        permutation test), ``wilcoxon`` or ``permutation``.
    :ivar keep_checkpoints: keep the classifiers of finished cells (they are only needed to resume
        a cell half-way; they take disk space).
    """

    method: str
    arms: list[str] | None = None
    data: str | None = None
    unlabeled: str | None = None
    image_size: int = 32
    repeats: int = 3
    train_size: int | None = None
    balanced: bool = True
    val_fraction: float = 0.15
    test_size: int | None = None
    synthetic_per_image: float = 1.0
    classic: dict[str, Any] = field(default_factory=dict)
    preset: str = "cpu"
    ensemble: dict[str, Any] = field(default_factory=dict)
    budget: str = "epochs"
    set: dict[str, Any] = field(default_factory=dict)
    generator_val: bool = True
    alpha: float = 0.05
    test: str = "auto"
    seed: int = 0
    device: str = "cpu"
    out: str = "lagaug-runs/compare"
    bad_images: str = "warn"
    keep_checkpoints: bool = False

    def resolved_arms(self) -> list[str]:
        """The arm names with ``method`` replaced by the method's name (validated, in order)."""
        m = self.method
        allowed = [REAL, CLASSIC, m, f"{CLASSIC}+{m}", DUPLICATE]
        if self.arms is None:
            return allowed
        out = []
        for arm in self.arms:
            name = arm.strip().replace("method", m) if arm.strip() in ("method", "classic+method") else arm.strip()
            if name not in allowed:
                raise ConfigError(f"--arms: unknown arm {arm!r}; choose from: {', '.join(allowed)}")
            if name in out:
                raise ConfigError(f"--arms: arm {name!r} is listed twice")
            out.append(name)
        if not out:
            raise ConfigError(f"--arms: give at least one arm; choose from: {', '.join(allowed)}")
        return out

    def classic_config(self) -> ClassicConfig:
        return config_from_dict(ClassicConfig, self.classic, source="--classic-set")

    def ensemble_config(self) -> EnsembleConfig:
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown ensemble preset {self.preset!r}; choose one of: {', '.join(PRESETS)}")
        cfg = apply_overrides(EnsembleConfig(**PRESETS[self.preset]), self.ensemble, source="--classifier-set")
        for key in ("members", "epochs", "batch_size"):
            if getattr(cfg, key) < 1:
                raise ConfigError(f"--{key.replace('_', '-')} must be at least 1, got {getattr(cfg, key)}")
        if not cfg.lr > 0:
            raise ConfigError(f"--lr must be positive, got {cfg.lr}")
        return cfg

    def validate(self) -> None:
        """Raise :class:`ConfigError` for a bad value (everything checkable without data)."""
        checks = (("--repeats", self.repeats, 1), ("--image-size", self.image_size, 8))
        for name, value, low in checks:
            if value < low:
                raise ConfigError(f"{name} must be at least {low}, got {value}")
        if self.train_size is not None and self.train_size < 2:
            raise ConfigError(f"--train-size must be at least 2, got {self.train_size}")
        if self.test_size is not None and self.test_size < 1:
            raise ConfigError(f"--test-size must be at least 1, got {self.test_size}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if not self.synthetic_per_image > 0:
            raise ConfigError(f"--synthetic-per-image must be positive, got {self.synthetic_per_image}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"--alpha must be between 0 and 1, got {self.alpha}")
        if self.budget not in ("epochs", "steps"):
            raise ConfigError(f"--budget must be epochs or steps, got {self.budget!r}")
        if self.test not in ("auto", "wilcoxon", "permutation"):
            raise ConfigError(f"--test must be auto, wilcoxon or permutation, got {self.test!r}")
        self.resolved_arms()
        self.classic_config()
        self.ensemble_config()


@dataclass
class CompareResult:
    """What a finished comparison produced: one cell per (repeat, arm), one row per arm."""

    run_dir: Path
    cells: list[dict]
    rows: list[dict]
    comparisons: list[dict]
    config: CompareConfig


# -- paired significance tests ---------------------------------------------------------------------


def sign_flip_p(diffs) -> float:
    """Two-sided p of the paired sign-flip permutation test on the mean difference.

    Exact (all ``2^n`` sign patterns) up to n = 16, else 2^16 random patterns (fixed seed). All
    differences zero gives 1.0.
    """
    d = np.asarray(diffs, dtype=float)
    if d.size == 0 or not np.any(d):
        return 1.0
    if d.size <= 16:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
    else:
        signs = np.random.default_rng(0).choice((1.0, -1.0), size=(1 << 16, d.size))
    stats = np.abs(signs @ d)
    return float(np.mean(stats >= abs(d.sum()) - 1e-12 * max(1.0, np.abs(d).sum())))


def paired_test(a, b, method: str = "auto") -> dict[str, Any]:
    """Paired two-sided test of ``a`` vs ``b`` (same repeats): ``{"test", "p", "n", "delta"}``.

    ``wilcoxon`` is scipy's signed-rank test (exact for small samples); ``permutation`` is
    :func:`sign_flip_p`; ``auto`` takes Wilcoxon when scipy is importable. Pairs with a NaN are
    dropped; ``delta`` is the mean of ``a - b``.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    d = a[keep] - b[keep]
    out: dict[str, Any] = {"n": int(d.size), "delta": float(d.mean()) if d.size else float("nan")}
    if method == "auto":
        try:
            import scipy.stats  # noqa: F401

            method = "wilcoxon"
        except ImportError:
            method = "permutation"
    if method == "wilcoxon":
        from scipy.stats import wilcoxon

        out["test"] = "Wilcoxon signed-rank"
        if d.size == 0 or not np.any(d):
            out["p"] = 1.0
        else:
            out["p"] = float(wilcoxon(d, alternative="two-sided").pvalue)
    elif method == "permutation":
        out["test"] = "sign-flip permutation"
        out["p"] = sign_flip_p(d)
    else:
        raise ConfigError(f"unknown test {method!r}; choose auto, wilcoxon or permutation")
    return out


def smallest_p(n: int) -> float:
    """The smallest two-sided p an exact paired rank or sign-flip test can give with n pairs."""
    return 2.0 / 2**n if n > 0 else 1.0


# -- data: per-repeat splits -----------------------------------------------------------------------


def _quota(counts: list[int], n: int, balanced: bool, generator: torch.Generator) -> list[int]:
    """How many images of each class a draw of ``n`` takes (balanced or proportional)."""
    k = len(counts)
    if balanced:
        quota = [n // k] * k
        for c in torch.randperm(k, generator=generator)[: n % k].tolist():
            quota[c] += 1
        return quota
    total = sum(counts)
    exact = [n * c / total for c in counts]
    quota = [int(e) for e in exact]
    order = sorted(range(k), key=lambda c: quota[c] - exact[c])  # largest remainders first
    for c in order[: n - sum(quota)]:
        quota[c] += 1
    return quota


def draw_subset(data: ImageSet, n: int, generator: torch.Generator, balanced: bool = True,
                what: str = "--train-size") -> torch.Tensor:
    """Indices (ascending) of ``n`` images of ``data`` drawn class by class."""
    counts = data.class_counts()
    if n > len(data):
        raise ConfigError(f"{what} {n}: only {len(data)} images are available")
    quota = _quota(counts, n, balanced, generator)
    picks = []
    for c, (want, have) in enumerate(zip(quota, counts)):
        if want > have:
            raise ConfigError(
                f"{what} {n}: class {data.class_names[c]!r} has only {have} images, {want} needed; "
                "lower the size or draw proportionally"
            )
        idx = torch.nonzero(data.labels == c).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=generator)[:want]])
    return torch.cat(picks).sort().values


def carve_validation(data: ImageSet, fraction: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``data`` into (train, val) indices: ``fraction`` of every class (at least one image
    of each class that has two or more; none when ``fraction`` is 0)."""
    val = []
    if fraction > 0:
        for c in range(data.num_classes):
            idx = torch.nonzero(data.labels == c).flatten()
            if len(idx) < 2:
                continue
            k = min(len(idx) - 1, max(1, int(fraction * len(idx) + 0.5)))
            val.append(idx[torch.randperm(len(idx), generator=generator)[:k]])
    val_idx = torch.cat(val).sort().values if val else torch.zeros(0, dtype=torch.long)
    mask = torch.ones(len(data), dtype=torch.bool)
    mask[val_idx] = False
    return torch.nonzero(mask).flatten(), val_idx


def ids_digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


# -- the comparison --------------------------------------------------------------------------------


class Compare:
    """One comparison run; see the module docstring."""

    def __init__(self, config: CompareConfig, progress: Progress | None = None, resume: bool = False,
                 splits: DataSplits | None = None):
        config.validate()
        self.cfg = config
        self.progress = progress or Progress(quiet=True)
        self.resume = resume
        self.splits = splits
        self.run = RunDir(config.out)
        self.arms = config.resolved_arms()
        self.device = resolve_device(config.device)
        self.ens_cfg = config.ensemble_config()
        self.classic = ClassicAugment(config.classic_config())
        self.needs_method = any(a in (config.method, f"{CLASSIC}+{config.method}") for a in self.arms)

    # -- set-up --------------------------------------------------------------------------------
    def prepare(self) -> None:
        import lagaug.core.cnn  # noqa: F401  (registers garay_cnn / garay_cnn_small in timm)

        cfg = self.cfg
        method_cls = get_plugin_manager().get_method(cfg.method)  # unknown method fails first
        self.set_values = apply_overrides(method_cls.default_config(), cfg.set, source=f"--set (method {cfg.method})")
        if self.splits is None:
            from lagaug.core.data.sources import load_data

            self.splits = load_data(cfg.data, image_size=cfg.image_size, seed=cfg.seed, unlabeled=cfg.unlabeled,
                                    bad_images=cfg.bad_images, progress=self.progress)
        pool = self.splits.train
        if cfg.train_size is not None and len(self.splits.val):
            pool = pool.concat(self.splits.val)
        if cfg.train_size is not None and cfg.train_size < pool.num_classes:
            raise ConfigError(f"--train-size {cfg.train_size} is smaller than the {pool.num_classes} classes")
        self.pool = pool
        self.test = self._test_set()
        if self.needs_method or DUPLICATE in self.arms:
            method_cls.check_image_shape((pool.channels, *pool.image_size))
        check_classifier_input(self.ens_cfg.classifier, pool.channels, pool.image_size, pool.num_classes)
        self.run.start(dataclasses.asdict(cfg), self.resume)

    def _test_set(self) -> ImageSet:
        test = self.splits.test
        if not len(test):
            raise DataError("the data has no test images; compare evaluates every arm on the test split")
        if self.cfg.test_size is not None and self.cfg.test_size < len(test):
            idx = draw_subset(test, self.cfg.test_size, stage_generator(self.cfg.seed, "test"), True, "--test-size")
            test = test.subset(idx)
        return test

    def split(self, r: int) -> tuple[ImageSet, ImageSet]:
        """The training and validation images of repeat ``r`` (never test images)."""
        cfg = self.cfg
        gen = stage_generator(cfg.seed, "split", r if cfg.train_size is not None else 0)
        if cfg.train_size is None and len(self.splits.val):
            train, val = self.splits.train, self.splits.val
        else:
            data = self.pool
            if cfg.train_size is not None:
                data = data.subset(draw_subset(data, cfg.train_size, gen, cfg.balanced))
            tr, va = carve_validation(data, cfg.val_fraction, gen)
            train, val = data.subset(tr), data.subset(va)
        leaked = set(val.ids) & set(self.test.ids)
        if leaked:
            raise DataError(f"validation image {sorted(leaked)[0]!r} is also a test image; the splits overlap")
        return train, val

    # -- generator and synthetic images --------------------------------------------------------
    def plan_sources(self, train: ImageSet, r: int) -> torch.Tensor:
        """Training-image index of every extra image: each image ``floor``/``ceil`` of the ratio."""
        n = int(round(self.cfg.synthetic_per_image * len(train)))
        if n < 1:
            raise ConfigError(
                f"--synthetic-per-image {self.cfg.synthetic_per_image} makes no image from {len(train)} "
                "training images; raise it"
            )
        gen = stage_generator(self.cfg.seed, "sources", r)
        rounds = [torch.randperm(len(train), generator=gen) for _ in range(math.ceil(n / len(train)))]
        return torch.cat(rounds)[:n].sort().values

    def generator(self, r: int, train: ImageSet, val: ImageSet) -> GeneratorMethod:
        folder = self.repeat_dir(r) / "generator"
        if (folder / GENERATOR_JSON).exists():
            return load_generator(folder, expect_method=self.cfg.method)
        splits = DataSplits(train, val if self.cfg.generator_val else train.subset([]), train.subset([]),
                            self.splits.unlabeled)
        return fit_generator(self.cfg.method, splits, overrides=self.cfg.set, seed=derive_seed(self.cfg.seed, "repeat", r),
                             device=self.device, progress=self.progress, out=folder)

    def synthetic(self, r: int, train: ImageSet, val: ImageSet) -> ImageSet:
        """The repeat's synthesized images (made once, then read back from the run directory)."""
        from lagaug.core.loop import synthetic_set_from_manifest

        lines = self._manifest(r)
        if lines is None:
            method = self.generator(r, train, val)
            sources = self.plan_sources(train, r)
            options = {k: getattr(self.set_values, k) for k in self.cfg.set}
            ctx = StageContext(generator=stage_generator(self.cfg.seed, "synthesize", r), device=self.device,
                               variants=1, options=options, progress=self.progress)
            start = time.perf_counter()
            with self.progress.task(f"repeat {r}: synthesize {len(sources)} images with {method.name}", 1) as task:
                synth = synthesize(method, train.float_images(sources), train.targets()[sources], ctx)
                task.advance(1, status=f"{len(synth)} images")
            lines = self._write_synthetic(r, train, sources, synth, time.perf_counter() - start)
        made = synthetic_set_from_manifest(RunDir(self.repeat_dir(r)), lines, train)
        if made is None:
            raise DataError(f"repeat {r}: the method made no images (all were filtered out)")
        return made

    def _manifest(self, r: int) -> list[dict] | None:
        path = self.repeat_dir(r) / "synthetic" / "manifest.jsonl"
        if not path.exists():
            return None
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def _write_synthetic(self, r: int, train: ImageSet, sources: torch.Tensor, synth, seconds: float) -> list[dict]:
        from lagaug.core.report import save_pair_grid

        folder = self.repeat_dir(r) / "synthetic"
        lines = []
        for j in range(len(synth)):
            src = int(sources[synth.source[j]])
            soft = synth.soft[j].float()
            save_png(folder / f"{j:05d}.png", synth.images[j])
            lines.append({
                "id": f"synthetic/r{r:03d}/{j:05d}", "file": f"synthetic/{j:05d}.png", "repeat": r,
                "method": self.cfg.method, "seed": derive_seed(self.cfg.seed, "synthesize", r),
                "source": train.ids[src], "source_label": train.class_names[train.labels[src]],
                "label": train.class_names[int(soft.argmax())], "label_index": int(soft.argmax()),
                "soft": [round(float(v), 6) for v in soft],
                **{k: round(float(v[j]), 6) for k, v in synth.metrics.items()},
            })
        # a preview: one source image of every class, beside everything made from it
        rows = sources[synth.source]
        shown = sorted({int(rows[torch.nonzero(train.labels[rows] == c).flatten()[0]])
                        for c in range(train.num_classes) if bool((train.labels[rows] == c).any())})
        position = {t: i for i, t in enumerate(shown)}
        pick = [j for j in range(len(synth)) if int(rows[j]) in position]
        save_pair_grid(self.repeat_dir(r) / "grid.png", train.float_images(shown), synth.images[pick],
                       torch.tensor([position[int(rows[j])] for j in pick], dtype=torch.long))
        atomic_write_json(self.repeat_dir(r) / "synthesis.json",
                          {"planned": len(sources), "made": len(synth), "seconds": round(seconds, 3)})
        atomic_write_lines(folder / "manifest.jsonl", (json.dumps(l) for l in lines))
        return lines

    # -- arms ----------------------------------------------------------------------------------
    def arm_set(self, arm: str, train: ImageSet, extra: ImageSet | None, dup_sources: list[int]) -> ImageSet:
        """The training set of ``arm`` in one repeat."""
        m = self.cfg.method
        if arm in (REAL, CLASSIC):
            return train
        if arm in (m, f"{CLASSIC}+{m}"):
            return train.concat(extra)
        copies = train.subset(dup_sources)  # DUPLICATE: copies of the source images, real images
        copies.ids = [f"duplicate/{j:05d}" for j in range(len(copies))]
        copies.sources = [train.ids[i] for i in dup_sources]
        return train.concat(copies)

    def run_cell(self, r: int, arm: str, train: ImageSet, val: ImageSet, data: ImageSet) -> dict:
        """Train and evaluate the classifiers of ``arm`` (training set ``data``, made from the
        repeat's ``train``) in repeat ``r``; write and return the cell's metrics."""
        folder = self.cell_dir(r, arm)
        start = time.perf_counter()
        ens_cfg = self.arm_ensemble_config(train, data)
        ensemble = train_ensemble(
            data, val if len(val) else None, ens_cfg, stage_generator(self.cfg.seed, "ensemble", r),
            device=self.device, progress=self.progress,
            transform=self.classic if arm.startswith(CLASSIC) else None,
            checkpoint_dir=folder / "ensemble", label=f"repeat {r}: {arm}",
        )
        result = ensemble.evaluate(self.test)
        cell = {
            "repeat": r, "arm": arm, "train_size": len(data), "real": len(train), "added": len(data) - len(train),
            "val_size": len(val), "test_size": len(self.test),
            "train_ids": ids_digest(train.ids), "val_ids": ids_digest(val.ids),
            "epochs": ens_cfg.epochs, "member_seeds": [h["seed"] for h in ensemble.history],
            "kept_epochs": [_kept_epoch(h, ens_cfg.select_best) for h in ensemble.history],
            **{k: result[f"{k}_mean"] for k in METRICS},
            "per_member": result["per_member"],
            "seconds": round(time.perf_counter() - start, 2),
        }
        atomic_write_json(folder / "metrics.json", cell)
        if not self.cfg.keep_checkpoints:
            shutil.rmtree(folder / "ensemble", ignore_errors=True)
        return cell

    def arm_ensemble_config(self, train: ImageSet, data: ImageSet) -> EnsembleConfig:
        """The classifier settings of one arm: ``epochs`` as given, or (``budget="steps"``) scaled
        so that the arm gets the optimisation steps of ``epochs`` passes over the largest arm."""
        cfg = self.ens_cfg
        if self.cfg.budget == "epochs":
            return cfg
        grows = any(a not in (REAL, CLASSIC) for a in self.arms)
        largest = len(train) + (int(round(self.cfg.synthetic_per_image * len(train))) if grows else 0)
        steps = math.ceil(largest / cfg.batch_size) * cfg.epochs
        return dataclasses.replace(cfg, epochs=math.ceil(steps / math.ceil(len(data) / cfg.batch_size)))

    # -- paths ---------------------------------------------------------------------------------
    def repeat_dir(self, r: int) -> Path:
        return self.run.root / "repeats" / f"r{r:03d}"

    def cell_dir(self, r: int, arm: str) -> Path:
        return self.repeat_dir(r) / "arms" / arm

    def cell(self, r: int, arm: str) -> dict | None:
        path = self.cell_dir(r, arm) / "metrics.json"
        return json.loads(path.read_text()) if path.exists() else None

    # -- the whole run -------------------------------------------------------------------------
    def execute(self) -> CompareResult:
        self.prepare()
        cfg, m = self.cfg, self.cfg.method
        total = cfg.repeats * len(self.arms)
        with self.progress.task(f"compare: {cfg.repeats} repeats x {len(self.arms)} arms", total) as overall:
            for r in range(cfg.repeats):
                todo = [a for a in self.arms if self.cell(r, a) is None]
                overall.advance(len(self.arms) - len(todo))
                if not todo:
                    continue
                train, val = self.split(r)
                atomic_write_json(self.repeat_dir(r) / "split.json", {"train": train.ids, "val": val.ids})
                extra, dup = None, []
                if any(a in (m, f"{CLASSIC}+{m}") for a in todo) or (DUPLICATE in todo and self.needs_method):
                    extra = self.synthetic(r, train, val)
                    index = {id_: i for i, id_ in enumerate(train.ids)}
                    dup = [index[s] for s in extra.sources]
                elif DUPLICATE in todo:
                    dup = self.plan_sources(train, r).tolist()
                for arm in todo:
                    overall.set_status(f"repeat {r}: {arm}")
                    self.run_cell(r, arm, train, val, self.arm_set(arm, train, extra, dup))
                    overall.advance(1)
                    self.write_cells()
        cells = self.write_cells()
        rows, comparisons = summarise_cells(cells, self.arms, m, cfg.test, cfg.alpha)
        self.write_results(rows, comparisons, cells)
        return CompareResult(self.run.root, cells, rows, comparisons, cfg)

    def all_cells(self) -> list[dict]:
        return [c for r in range(self.cfg.repeats) for a in self.arms if (c := self.cell(r, a)) is not None]

    def write_cells(self) -> list[dict]:
        cells = self.all_cells()
        atomic_write_lines(self.run.root / "cells.jsonl", (json.dumps(c) for c in cells))
        return cells

    def write_results(self, rows: list[dict], comparisons: list[dict], cells: list[dict]) -> None:
        root = self.run.root
        atomic_write_text(root / "results.csv", _csv(rows, RESULT_COLUMNS))
        atomic_write_text(root / "comparisons.csv", _csv(comparisons, COMPARISON_COLUMNS))
        atomic_write_json(root / "results.json", {"rows": rows, "comparisons": comparisons})
        atomic_write_text(root / "results.md", results_markdown(rows, comparisons, self.cfg))
        plot_results(rows, cells, root / "results.png")


def _kept_epoch(history: dict, select_best: bool) -> int | None:
    """The epoch whose weights a member kept (its best validation epoch, or its last)."""
    records = history.get("history") or []
    with_val = [h for h in records if "val_loss" in h]
    if not with_val or not select_best:
        return len(records) or None
    return min(with_val, key=lambda h: h["val_loss"])["epoch"]


# -- summaries -------------------------------------------------------------------------------------


def summarise_cells(cells: list[dict], arms: list[str], method: str, test: str = "auto",
                    alpha: float = 0.05) -> tuple[list[dict], list[dict]]:
    """Per-arm rows (mean ± 95% CI over repeats, paired test vs ``real``) and the comparisons.

    Comparisons: every arm vs ``real``; METHOD vs ``duplicate``; ``classic+``METHOD vs ``classic``
    (when both arms ran), on every metric, paired over the repeats both arms finished.
    """
    by_arm = {a: {c["repeat"]: c for c in cells if c["arm"] == a} for a in arms}
    pairs = [(a, REAL) for a in arms if a != REAL and REAL in arms]
    if method in arms and DUPLICATE in arms:
        pairs.append((method, DUPLICATE))
    if f"{CLASSIC}+{method}" in arms and CLASSIC in arms:
        pairs.append((f"{CLASSIC}+{method}", CLASSIC))
    comparisons = []
    for arm, base in pairs:
        common = sorted(set(by_arm[arm]) & set(by_arm[base]))
        for metric in METRICS:
            t = paired_test([by_arm[arm][r][metric] for r in common], [by_arm[base][r][metric] for r in common], test)
            comparisons.append({"arm": arm, "baseline": base, "metric": metric, "n": t["n"], "delta": t["delta"],
                                "p": t["p"], "test": t["test"], "significant": bool(t["p"] < alpha)})
    rows = []
    for arm in arms:
        got = [by_arm[arm][r] for r in sorted(by_arm[arm])]
        if not got:
            continue
        row: dict[str, Any] = {"arm": arm, "repeats": len(got),
                               "train_size": float(np.mean([c["train_size"] for c in got])),
                               "added": float(np.mean([c["added"] for c in got]))}
        for metric in METRICS:
            row[f"{metric}_mean"], row[f"{metric}_ci"] = mean_ci([c[metric] for c in got])
        vs = next((c for c in comparisons if c["arm"] == arm and c["baseline"] == REAL and c["metric"] == "f1"), None)
        row["f1_delta_vs_real"] = vs["delta"] if vs else float("nan")
        row["f1_p_vs_real"] = vs["p"] if vs else float("nan")
        row["f1_significant_vs_real"] = vs["significant"] if vs else None
        rows.append(row)
    return rows, comparisons


def _csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def pct(mean: float, half: float | None = None) -> str:
    """``85.40 ± 1.23`` (metric values in [0, 1] shown in percent)."""
    if mean != mean:
        return "n/a"
    return f"{100 * mean:.2f}" if half is None else f"{100 * mean:.2f} ± {100 * half:.2f}"


def p_text(p: float, alpha: float) -> str:
    if p != p:
        return "—"
    return f"{p:.3g}{' *' if p < alpha else ''}"


def results_markdown(rows: list[dict], comparisons: list[dict], cfg: CompareConfig) -> str:
    """The results as markdown: the arm table, the comparisons, and how to read them."""
    n = max((r["repeats"] for r in rows), default=0)
    test = next((c["test"] for c in comparisons), "paired test")
    lines = [
        f"# lagaug compare — method `{cfg.method}`", "",
        "| arm | train images | added | macro-F1 % | accuracy % | AUC % | Δ F1 vs real | p vs real |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        delta = "—" if r["arm"] == REAL else f"{100 * r['f1_delta_vs_real']:+.2f}"
        lines.append(
            f"| {r['arm']} | {r['train_size']:.0f} | {r['added']:.0f} | {pct(r['f1_mean'], r['f1_ci'])} | "
            f"{pct(r['accuracy_mean'], r['accuracy_ci'])} | {pct(r['auc_mean'], r['auc_ci'])} | {delta} | "
            f"{p_text(r['f1_p_vs_real'], cfg.alpha)} |"
        )
    lines += ["", "| comparison | metric | Δ (points) | p | significant |", "|---|---|---:|---:|---|"]
    for c in comparisons:
        lines.append(f"| {c['arm']} vs {c['baseline']} | {METRIC_NAMES[c['metric']]} | {100 * c['delta']:+.2f} | "
                     f"{p_text(c['p'], cfg.alpha)} | {'yes' if c['significant'] else 'no'} |")
    lines += [
        "",
        f"Mean ± 95% confidence interval (Student t) over {n} repeats; the test set is the same for every "
        f"repeat and arm. p: paired two-sided {test} test over repeats; * = p < {cfg.alpha}. With {n} "
        f"repeats the smallest possible p is {smallest_p(n):.3g}.",
        f"Arms share each repeat's training images ({'a fresh draw of ' + str(cfg.train_size) if cfg.train_size else 'the source split'}"
        f", validation carved from them: {cfg.val_fraction:.0%} per class) and classifier seeds. "
        f"The duplicate arm adds copies of the very images the `{cfg.method}` arm's extra images were made from.",
        "",
    ]
    return "\n".join(lines)


def plot_results(rows: list[dict], cells: list[dict], path: str | Path) -> Path | None:
    """Each metric per arm: the mean with its 95% interval, and every repeat as a dot."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lagaug.core.store import atomic_write_bytes

    arms = [r["arm"] for r in rows]
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.6), dpi=120)
    for ax, metric in zip(axes, METRICS):
        for i, row in enumerate(rows):
            values = [100 * c[metric] for c in cells if c["arm"] == row["arm"]]
            offsets = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else [0.0]
            ax.scatter([i + o for o in offsets], values, s=10, color="0.6", zorder=1)
            ax.errorbar([i], [100 * row[f"{metric}_mean"]], yerr=[100 * row[f"{metric}_ci"]], fmt="o",
                        capsize=5, color="C0" if row["arm"] != REAL else "C3", zorder=2)
        ax.set_xticks(range(len(arms)))
        ax.set_xticklabels(arms, rotation=30, ha="right")
        ax.set_title(f"{METRIC_NAMES[metric]} % (mean, 95% CI)")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def run_compare(config: CompareConfig, progress: Progress | None = None, resume: bool = False,
                splits: DataSplits | None = None) -> CompareResult:
    """Run the comparison as configured; see :class:`Compare`.

    ``splits`` gives the data directly (else ``config.data`` is loaded with
    :func:`lagaug.core.data.sources.load_data`).
    """
    return Compare(config, progress, resume, splits).execute()
