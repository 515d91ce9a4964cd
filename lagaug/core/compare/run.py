"""The comparison run: per repeat, a split, a generator, its synthetic images, and one cell per arm.

Run directory (``RUN`` is ``out``)::

    RUN/config.json                          the resolved configuration (written first)
    RUN/data.json                            the data: images per class and split, seeds
    RUN/repeats/r000/split.json              ids of the repeat's training and validation images
    RUN/repeats/r000/generator/              the repeat's fitted generator
    RUN/repeats/r000/synthetic/*.png         its synthesized images; manifest.jsonl marks them done
                                             (label_fidelity per image, and dropped / reason with METHOD+gate)
    RUN/repeats/r000/reference/              with METHOD+gate: the classifiers that judge the labels
    RUN/repeats/r000/grid.png                some sources (left) beside what was made from them
    RUN/repeats/r000/arms/ARM/metrics.json   one finished cell (its presence marks it done)
    RUN/cells.jsonl                          every finished cell, one line each
    RUN/results.csv, results.md, results.json, comparisons.csv, results.png

Every file is written atomically; ``resume=True`` redoes nothing that finished.

Each cell is one job of the run's executor (:mod:`lagaug.core.executor`; :mod:`.cells`): in this
process, or as a Ray task while the driver goes on to the next repeat's generator. The driver
alone writes the run directory, as each cell finishes.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from lagaug.core.classic import ClassicAugment
from lagaug.core.compare.cells import CellSpec, arm_size, arm_training_set, cell_job
from lagaug.core.compare.config import CLASSIC, DUPLICATE, REAL, CompareConfig
from lagaug.core.compare.draws import carve_validation, draw_subset
from lagaug.core.compare.report import write_results
from lagaug.core.compare.summary import summarise_cells
from lagaug.core.data.dataset import DataSplits, ImageSet
from lagaug.core.ensemble import EnsembleConfig, check_classifier_input, steps_per_epoch, train_ensemble
from lagaug.core.errors import ConfigError, DataError
from lagaug.core.executor import Executor, job_resources, make_executor, node_label
from lagaug.core.generators import checked_options, fit_generator, load_generator, method_config, synthesize
from lagaug.core.method import GENERATOR_JSON, GeneratorMethod, StageContext
from lagaug.core.plugins import LagaugPluginManager, plugins_or_default
from lagaug.core.progress import Progress
from lagaug.core.quality import GateConfig, ensemble_classifier, summarize
from lagaug.core.rundir import RunDir
from lagaug.core.runjob import RunJob
from lagaug.core.runtime import derive_seed, resolve_device, stage_generator
from lagaug.core.store import atomic_write_json, atomic_write_lines
from lagaug.core.synthstore import read_manifest, read_synthetic, write_synthetic


@dataclass
class CompareResult:
    """What a finished comparison produced: one cell per (repeat, arm), one row per arm."""

    run_dir: Path
    cells: list[dict]
    rows: list[dict]
    comparisons: list[dict]
    config: CompareConfig


class Compare(RunJob):
    """One comparison run; see the module docstring and :mod:`lagaug.core.compare`."""

    def __init__(self, config: CompareConfig, progress: Progress | None = None, resume: bool = False,
                 splits: DataSplits | None = None, plugins: LagaugPluginManager | None = None):
        config.validate()
        self.cfg = config
        self.progress = progress or Progress(quiet=True)
        self.resume = resume
        self.splits = splits
        self.pm = plugins_or_default(plugins)
        self.run = RunDir(config.out)
        self.arms = config.resolved_arms()
        self.device = resolve_device(config.device)
        self.ens_cfg = config.ensemble_config()
        self.classic = ClassicAugment(config.classic_config())
        self.needs_method = any(a in config.method_arms() for a in self.arms)
        self.executor: Executor | None = None

    # -- set-up --------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Check everything that can be checked, then create (or reopen) the run directory."""
        import lagaug.core.cnn  # noqa: F401  (registers garay_cnn / garay_cnn_small in timm)
        from lagaug.core.data.identity import generator_fingerprint, pool_fingerprint, splits_fingerprint
        from lagaug.core.store import check_output_dir

        cfg = self.cfg
        check_output_dir(cfg.out)
        method_cls = self.pm.get_method(cfg.method)  # unknown method fails first
        _, self.options = method_config(method_cls, cfg.set)
        if self.splits is None:
            from lagaug.core.data.sources import load_data

            self.splits = load_data(cfg.data, image_size=cfg.image_size, seed=cfg.split_seed,
                                    unlabeled=cfg.unlabeled, bad_images=cfg.bad_images, progress=self.progress)
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
        self.loaded = None
        if cfg.generator and self.needs_method:
            from lagaug.core.loop import check_generator_dir

            check_generator_dir(cfg.generator, cfg.method, pool)
            self.loaded = load_generator(cfg.generator, expect_method=cfg.method, plugins=self.pm)
        _, self.options = checked_options(method_cls, cfg.set, (pool.channels, *pool.image_size), pool.class_names,
                                          saved=self.loaded)
        self.plugin_options = self.pm.plugin_options(cfg.set)
        identity = {"data": splits_fingerprint(self.splits), "unlabeled": pool_fingerprint(self.splits.unlabeled),
                    "generator": generator_fingerprint(cfg.generator)}
        self.executor = make_executor(cfg.executor, cfg.ray_address,  # an unreachable cluster: before any write
                                      job_resources(cfg.threads, self.device.type, cfg.ray_gpus))
        self.run.start(dataclasses.asdict(cfg), self.resume, identity)
        self.run.write_data_summary(self.splits.summary())
        self.progress.log(self.splits.counts_line())

    def _test_set(self) -> ImageSet:
        test = self.splits.test
        if not len(test):
            raise DataError("the data has no test images; compare evaluates every arm on the test split")
        if self.cfg.test_size is not None and self.cfg.test_size < len(test):
            idx = draw_subset(test, self.cfg.test_size, stage_generator(self.cfg.split_seed, "test"), True,
                              "--test-size")
            test = test.subset(idx)
        return test

    def split(self, r: int) -> tuple[ImageSet, ImageSet]:
        """The training and validation images of repeat ``r`` (never test images)."""
        cfg = self.cfg
        draw = r if cfg.train_size is not None else 0
        if cfg.train_size is None and len(self.splits.val):
            train, val = self.splits.train, self.splits.val
        else:
            data = self.pool
            if cfg.train_size is not None:
                data = data.subset(draw_subset(data, cfg.train_size, stage_generator(cfg.seed, "split", draw),
                                               cfg.balanced))
            tr, va = carve_validation(data, cfg.val_fraction, derive_seed(cfg.seed, "validation", draw))
            train, val = data.subset(tr), data.subset(va)
        leaked = (set(val.ids) | set(train.ids)) & set(self.test.ids)
        if leaked:
            raise DataError(f"image {sorted(leaked)[0]!r} is both a training/validation and a test image; "
                            "the splits overlap")
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
        if self.loaded is not None:
            # a fresh copy per repeat: what a stage learns lazily (e.g. stylegan2's class
            # directions, fitted on the repeat's images) must not carry into the next repeat,
            # or a resumed run would differ from an uninterrupted one
            return copy.deepcopy(self.loaded)
        folder = self.repeat_dir(r) / "generator"
        if (folder / GENERATOR_JSON).exists():
            return load_generator(folder, expect_method=self.cfg.method, plugins=self.pm)
        splits = DataSplits(train, val if self.cfg.generator_val else train.subset([]), train.subset([]),
                            self.splits.unlabeled)
        return fit_generator(self.cfg.method, splits, overrides=self.cfg.set,
                             seed=derive_seed(self.cfg.seed, "repeat", r), device=self.device,
                             progress=self.progress, out=folder, plugins=self.pm)

    def synthetic(self, r: int, train: ImageSet, val: ImageSet) -> tuple[ImageSet, ImageSet | None]:
        """The repeat's synthesized images (made once, then read back from the run directory):
        all of them, and (with the METHOD+gate arm) those the quality gate kept."""
        root = self.repeat_dir(r)
        lines = read_manifest(root / "synthetic" / "manifest.jsonl")
        gated = self.cfg.gated_arm() in self.arms
        if lines is None:
            method = self.generator(r, train, val)
            sources = self.plan_sources(train, r)
            ctx = StageContext(generator=stage_generator(self.cfg.seed, "synthesize", r), device=self.device,
                               variants=1, options=dict(self.options), progress=self.progress,
                               pool=train, batch_index=sources, plugin_options=dict(self.plugin_options))
            if gated:
                ctx.classify, ctx.gate = self.reference_classifier(r, train, val), GateConfig(
                    min_distance=self.cfg.gate_distance)
            start = time.perf_counter()
            with self.progress.task(f"repeat {r}: synthesize {len(sources)} images with {method.name}", 1) as task:
                synth = synthesize(self.pm, method, train.float_images(sources), train.targets()[sources], ctx,
                                   keep_dropped=True)
                task.advance(1, status=f"{len(synth)} images")
            seconds = time.perf_counter() - start
            self.write_preview(r, train, synth)
            atomic_write_json(root / "synthesis.json",
                              {"planned": len(sources), "made": len(synth), "seconds": round(seconds, 3),
                               **({"quality": summarize(synth, train.class_names)} if gated else {})})
            lines = write_synthetic(root, "synthetic", synth, train, method=self.cfg.method,
                                    seed=derive_seed(self.cfg.seed, "synthesize", r),
                                    id_prefix=f"synthetic/r{r:03d}", extra={"repeat": r})
        made = read_synthetic(root, [{**line, "dropped": False} for line in lines], train)
        if made is None:
            raise DataError(f"repeat {r}: the method made no images (all were filtered out)")
        kept = read_synthetic(root, lines, train) if gated else None
        if gated and kept is None:
            raise DataError(f"repeat {r}: the quality gate dropped every synthetic image; the "
                            f"{self.cfg.gated_arm()} arm has nothing to add")
        return made, kept

    def reference_classifier(self, r: int, train: ImageSet, val: ImageSet):
        """The classifiers that judge the synthetic images' labels for the gate: trained on the
        repeat's real training images (validation for early stopping), like the ``real`` arm."""
        ensemble = train_ensemble(train, val if len(val) else None, self.ens_cfg,
                                  stage_generator(self.cfg.seed, "reference", r), device=self.device,
                                  progress=self.progress, checkpoint_dir=self.repeat_dir(r) / "reference",
                                  label=f"repeat {r}: reference classifier",
                                  orientation_invariant=self.splits.extra.get("orientation_invariant"),
                                  executor=self.executor)
        return ensemble_classifier(ensemble)

    def write_preview(self, r: int, train: ImageSet, synth) -> None:
        """``grid.png``: one source image of every class, beside everything made from it."""
        from lagaug.core.report import partner_images, save_pair_grid

        rows = synth.primary
        shown = sorted({int(rows[torch.nonzero(train.labels[rows] == c).flatten()[0]])
                        for c in range(train.num_classes) if bool((train.labels[rows] == c).any())})
        position = {t: i for i, t in enumerate(shown)}
        pick = [j for j in range(len(synth)) if int(rows[j]) in position]
        save_pair_grid(self.repeat_dir(r) / "grid.png", train.float_images(shown), synth.images[pick],
                       torch.tensor([position[int(rows[j])] for j in pick], dtype=torch.long),
                       partners=partner_images(train, synth.source[pick]))

    # -- arms ----------------------------------------------------------------------------------
    def arm_set(self, arm: str, train: ImageSet, extra: ImageSet | None, dup_sources: list[int],
                kept: ImageSet | None = None) -> ImageSet:
        """The training set of ``arm`` in one repeat."""
        return arm_training_set(arm, self.cfg.method_arms(), train, extra, dup_sources, self.cfg.gated_arm(), kept)

    def submit_cell(self, r: int, arm: str, data: dict, overall) -> None:
        """Hand the cell ``(r, arm)`` to the executor; :meth:`cell_done` records it when it finishes.
        ``data``: the repeat's images, each put to the executor once (``train``, ``val``, ``extra``,
        ``kept``, ``dup``) and their sizes (``n_train``, ``n_data``)."""
        folder = self.cell_dir(r, arm)
        local = self.executor.in_process
        spec = CellSpec(r, arm, self.cfg.method_arms(), self.arm_ensemble_config(data["n_train"], data["n_data"][arm]),
                        self.cfg.seed, self.executor.job_device(self.device), self.classic,
                        self.splits.extra.get("orientation_invariant"), gated_arm=self.cfg.gated_arm(),
                        return_members=self.cfg.keep_checkpoints and not local)
        finished = None if local else self.finished_members(folder / "ensemble")
        overall.set_status(f"repeat {r}: {arm}" if local else f"repeat {r}: cells on {self.executor.describe()}")
        self.executor.submit(
            cell_job, spec, data["train"], data["val"], data["extra"], data["dup"], self.test_ref, finished,
            data["kept"], name=f"lagaug cell r{r} {arm}", on_done=functools.partial(self.cell_done, r, arm, overall),
            inproc={"progress": self.progress, "checkpoint_dir": folder / "ensemble"},
        )

    def cell_done(self, r: int, arm: str, overall, result: dict, node: dict) -> None:
        """Write a finished cell (the driver's side of :func:`~lagaug.core.compare.cells.cell_job`)."""
        from lagaug.core.classifier.ensemble import save_member

        folder = self.cell_dir(r, arm)
        for i, (state, record) in enumerate(result["members"] or []):
            path = folder / "ensemble" / f"member_{i:02d}.safetensors"
            if not path.exists():
                save_member(path, state, {**record, **node})
        cell = {**result["cell"], **node, "executor": self.executor.name}
        atomic_write_json(folder / "metrics.json", cell)
        if not self.cfg.keep_checkpoints:
            shutil.rmtree(folder / "ensemble", ignore_errors=True)
        overall.advance(1, status=f"repeat {r}: {arm} done on {node_label(node)}")
        self.write_cells()

    @staticmethod
    def finished_members(folder: Path) -> dict[int, tuple[dict, dict]] | None:
        """Members an interrupted in-process cell saved (index -> weights, record), for a task."""
        from lagaug.core.classifier.ensemble import read_member

        paths = sorted(folder.glob("member_*.safetensors")) if folder.is_dir() else []
        return {int(p.stem.split("_")[1]): read_member(p) for p in paths} or None

    def arm_ensemble_config(self, n_train: int, n_data: int) -> EnsembleConfig:
        """The classifier settings of one arm (``n_data`` images, made from ``n_train`` real ones):
        ``epochs`` as given, or (``budget="steps"``) scaled so that the arm gets the optimisation
        steps of ``epochs`` passes over the largest arm."""
        cfg = self.ens_cfg
        if self.cfg.budget == "epochs":
            return cfg
        grows = any(a not in (REAL, CLASSIC) for a in self.arms)
        largest = n_train + (int(round(self.cfg.synthetic_per_image * n_train)) if grows else 0)
        steps = steps_per_epoch(largest, cfg) * cfg.epochs
        return dataclasses.replace(cfg, epochs=math.ceil(steps / steps_per_epoch(n_data, cfg)))

    # -- paths ---------------------------------------------------------------------------------
    def repeat_dir(self, r: int) -> Path:
        return self.run.root / "repeats" / f"r{r:03d}"

    def cell_dir(self, r: int, arm: str) -> Path:
        return self.repeat_dir(r) / "arms" / arm

    def cell(self, r: int, arm: str) -> dict | None:
        path = self.cell_dir(r, arm) / "metrics.json"
        return json.loads(path.read_text()) if path.exists() else None

    # -- the whole run -------------------------------------------------------------------------
    def _run(self) -> CompareResult:
        cfg = self.cfg
        total = cfg.repeats * len(self.arms)
        self.test_ref = self.executor.put(self.test)  # once for every cell
        with self.progress.task(f"compare: {cfg.repeats} repeats x {len(self.arms)} arms", total) as overall:
            for r in range(cfg.repeats):
                todo = [a for a in self.arms if self.cell(r, a) is None]
                overall.advance(len(self.arms) - len(todo))
                if todo:
                    self.run_repeat(r, todo, overall)
                self.executor.poll()
            self.executor.wait()
        cells = self.write_cells()
        rows, comparisons = summarise_cells(cells, self.arms, cfg.method, cfg.test, cfg.alpha)
        write_results(self.run.root, rows, comparisons, cells, cfg)
        return CompareResult(self.run.root, cells, rows, comparisons, cfg)

    def run_repeat(self, r: int, todo: list[str], overall) -> None:
        """The repeat's split and synthetic images (here, on the driver), then one job per cell."""
        train, val = self.split(r)
        atomic_write_json(self.repeat_dir(r) / "split.json", {"train": train.ids, "val": val.ids})
        extra, kept, dup = None, None, []
        if any(a in self.cfg.method_arms() for a in todo) or (DUPLICATE in todo and self.needs_method):
            extra, kept = self.synthetic(r, train, val)
            index = {id_: i for i, id_ in enumerate(train.ids)}
            dup = [index[s[0]] for s in extra.sources]
        elif DUPLICATE in todo:
            dup = self.plan_sources(train, r).tolist()
        put = self.executor.put
        data = {"train": put(train), "val": put(val), "extra": None if extra is None else put(extra), "dup": dup,
                "kept": None if kept is None else put(kept), "n_train": len(train),
                "n_data": {a: arm_size(a, self.cfg.method_arms(), train, extra, dup, self.cfg.gated_arm(), kept)
                           for a in todo}}
        for arm in todo:
            self.submit_cell(r, arm, data, overall)

    def all_cells(self) -> list[dict]:
        return [c for r in range(self.cfg.repeats) for a in self.arms if (c := self.cell(r, a)) is not None]

    def write_cells(self) -> list[dict]:
        cells = self.all_cells()
        atomic_write_lines(self.run.root / "cells.jsonl", (json.dumps(c) for c in cells))
        return cells


def run_compare(config: CompareConfig, progress: Progress | None = None, resume: bool = False,
                splits: DataSplits | None = None, plugins: LagaugPluginManager | None = None) -> CompareResult:
    """Run the comparison as configured; see :class:`Compare`.

    ``splits`` gives the data directly (else ``config.data`` is loaded with
    :func:`lagaug.core.data.sources.load_data`); ``plugins`` is the plugin manager to use.
    """
    return Compare(config, progress, resume, splits, plugins).execute()
