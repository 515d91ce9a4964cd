"""The comparison run: per repeat, a split, a generator, its synthetic images, and one cell per arm.

Run directory (``RUN`` is ``out``)::

    RUN/config.json                          the resolved configuration (written first)
    RUN/data.json                            the data: images per class and split, seeds
    RUN/arms.json                            every arm (kind, source) and source (method, options,
                                             classes, fit group), and what the generators were fitted on
    RUN/repeats/r000/split.json              ids of the repeat's training and validation images
    RUN/repeats/r000/generator/              the repeat's fitted generator (of --method's arms)
    RUN/repeats/r000/synthetic/*.png         its synthesized images; manifest.jsonl marks them done
                                             (label_fidelity per image, and dropped / reason with METHOD+gate)
    RUN/repeats/r000/grid.png                some sources (left) beside what was made from them
    RUN/repeats/r000/methods/L/              the same (generator/ when it fits one) for every other source L
    RUN/repeats/r000/reference/              with a +gate or the pseudo-label arm: the classifiers that
                                             judge the labels and label the pool
    RUN/repeats/r000/pseudo-label/           round1.jsonl (round2.jsonl): the pool images chosen, with
                                             predicted label and confidence; summary.json
    RUN/repeats/r000/arms/ARM/metrics.json   one finished cell (its presence marks it done)
    RUN/cells.jsonl                          every finished cell, one line each
    RUN/results.csv, results.md, results.json, comparisons.csv, results.png

Every file is written atomically; ``resume=True`` redoes nothing that finished.

Each cell is one job of the run's executor (:mod:`lagaug.core.executor`; :mod:`.cells`): in this
process, or as a Ray task while the driver goes on to the next repeat's generator. The driver
alone writes the run directory, as each cell finishes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from lagaug.core.classifier import EnsembleConfig, check_classifier_input, steps_per_epoch
from lagaug.core.classifier.classic import ClassicAugment
from lagaug.core.compare.arms import ARM_HELP, CLASSIC_SYNTHETIC, GATE, PSEUDO, SYNTHETIC, primary_source
from lagaug.core.compare.cells import CellSpec, cell_job
from lagaug.core.compare.config import CLASSIC, DUPLICATE, REAL, CompareConfig
from lagaug.core.compare.draws import carve_validation, draw_subset
from lagaug.core.compare.pseudo import PseudoLabelStage
from lagaug.core.compare.results import write_results
from lagaug.core.compare.summary import summarise_cells
from lagaug.core.compare.synth import LOADED, SourcePlan, SynthesisStage
from lagaug.core.contract.plugins import LagaugPluginManager, plugins_or_default
from lagaug.core.data.dataset import DataSplits, ImageSet
from lagaug.core.errors import ConfigError, DataError
from lagaug.core.executor import Executor, node_label
from lagaug.core.progress import Progress
from lagaug.core.run.generators import checked_options, load_generator, method_config
from lagaug.core.run.job import RunJob
from lagaug.core.runtime import derive_seed, resolve_device, stage_generator
from lagaug.core.store.atomic import atomic_write_json, atomic_write_lines
from lagaug.core.store.rundir import RunDir


@dataclass
class CompareResult:
    """What a finished comparison produced: one cell per (repeat, arm), one row per arm."""

    run_dir: Path
    cells: list[dict]
    rows: list[dict]
    comparisons: list[dict]
    config: CompareConfig


class Compare(RunJob, SynthesisStage, PseudoLabelStage):
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
        self.plan, self.sources = config.plan()
        self.arms = [a.name for a in self.plan]
        self.arm = {a.name: a for a in self.plan}
        self.device = resolve_device(config.device)
        self.ens_cfg = config.ensemble_config()
        self.classic = ClassicAugment(config.classic_config())
        self.duplicated = primary_source(self.plan, config.method)  # the source whose sources duplicate copies
        self.executor: Executor | None = None
        self._fitted: dict = {}  # (repeat, fit group) -> the fitted generator, while the repeat runs
        self._fits_by_key: dict = {}  # a fit's cache key -> the folder it was saved in (repeats of one draw)
        self._anomaly: dict = {}  # repeat -> its anomaly model (regions found without masks)
        self._reference: dict = {}  # repeat -> its reference classifier

    # -- set-up --------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Check everything that can be checked, then create (or reopen) the run directory."""
        import lagaug.core.classifier.cnn  # noqa: F401  (registers garay_cnn / garay_cnn_small in timm)
        from lagaug.core.data.pools import check_pool_disjoint
        from lagaug.core.store.atomic import check_output_dir

        cfg = self.cfg
        check_output_dir(cfg.out)
        if cfg.method is not None:
            method_config(self.pm.get_method(cfg.method), cfg.set)  # an unknown method or --set key fails first
        self._check_source_methods()
        given = self.splits is not None
        if not given:
            from lagaug.core.data.sources import load_data

            self.splits = load_data(cfg.data, image_size=cfg.image_size, seed=cfg.split_seed,
                                    unlabeled=cfg.unlabeled, bad_images=cfg.bad_images, progress=self.progress)
        pool = self.splits.train
        if cfg.train_size is not None and len(self.splits.val):
            pool = pool.concat(self.splits.val)
        if cfg.train_size is not None and cfg.train_size < pool.num_classes:
            raise ConfigError(f"--train-size {cfg.train_size} is smaller than the {pool.num_classes} classes")
        self.pool = pool
        from lagaug.core.regions.masks import check_masks, resolve_normal_classes

        self.normal = resolve_normal_classes(cfg.normal_classes, pool.class_names,
                                             self.splits.extra.get("normal_classes"))
        check_masks({"train": self.splits.train, "val": self.splits.val, "test": self.splits.test}, self.normal,
                    cfg.data or "the embedded data")
        self.test = self._test_set()
        loaded = cfg.method if cfg.generator and any(s.method == cfg.method for s in self.sources.values()) else None
        self.source_plan = SourcePlan(self.sources, self.pm, pool.class_names,
                                      cfg.method if cfg.method in self.sources else None, cfg.variants, loaded)
        for method in sorted({s.method for s in self.sources.values()}):
            self.pm.get_method(method).check_image_shape((pool.channels, *pool.image_size))
        check_classifier_input(self.ens_cfg.classifier, pool.channels, pool.image_size, pool.num_classes)
        self._check_pool(given, check_pool_disjoint)
        self.loaded = None
        if loaded:
            from lagaug.core.run.loop import check_generator_dir

            check_generator_dir(cfg.generator, cfg.method, pool)
            self.loaded = load_generator(cfg.generator, expect_method=cfg.method, plugins=self.pm)
        shape = (pool.channels, *pool.image_size)
        for label, src in self.sources.items():  # every source's options, for these images, before any write
            checked_options(self.pm.get_method(src.method), src.options, shape, pool.class_names,
                            saved=self.loaded if self.source_plan.group[label] == LOADED else None)
        self.plugin_options = self.pm.plugin_options(cfg.set)
        self.open_run(may_grow=frozenset({"repeats"}))  # more --repeats on --resume add repeats
        atomic_write_json(self.run.root / "arms.json", self.arms_record())
        self.progress.log(self.splits.counts_line())

    def _check_source_methods(self) -> None:
        """Every source names a registered method (an arm that names none is an unknown arm)."""
        known = set(self.pm.method_names())
        for label, src in self.sources.items():
            if src.method in known:
                continue
            if label in self.cfg.variants:
                self.pm.get_method(src.method)  # the one-line unknown-method error, listing what exists
            arm = next(a.name for a in self.plan if a.source == label)
            raise ConfigError(f"--arms: unknown arm {arm!r}; {ARM_HELP} (methods: {', '.join(sorted(known))}"
                              + (f"; --arm labels: {', '.join(self.cfg.variants)}" if self.cfg.variants else "") + ")")

    def _check_pool(self, given: bool, check_pool_disjoint) -> None:
        """The pool: needed by ``pseudo-label``, of the training images' shape, never holding a
        test image (:func:`load_data` checked a pool it loaded; here one handed in is checked)."""
        pool, train = self.splits.unlabeled, self.splits.train
        if PSEUDO in self.arms:
            if pool is None or not len(pool):
                raise ConfigError(f"--arms {PSEUDO}: the arm labels an unlabelled pool; give one with --unlabeled")
            if pool.channels != train.channels or tuple(pool.image_size) != tuple(train.image_size):
                raise DataError(f"unlabeled pool: images are {pool.channels}x{tuple(pool.image_size)}, the training "
                                f"images {train.channels}x{tuple(train.image_size)}; give both the same channels and size")
        if given:
            check_pool_disjoint(pool, self.splits.test)

    def arms_record(self) -> dict:
        """``arms.json``: the arms, the sources they draw on, and what the generators were fitted on."""
        cfg, pool = self.cfg, self.splits.unlabeled
        if self.source_plan.sources and all(g == LOADED for g in self.source_plan.group.values()):
            fitted = f"none: the saved generator {cfg.generator} serves every repeat"
        else:
            fitted = ("per repeat, on the repeat's training images"
                      + (" (validation images for early stopping)" if cfg.generator_val else "")
                      + (f" plus the unlabelled pool ({len(pool)} images; a method that cannot use one ignores it)"
                         if pool is not None and len(pool) else "")
                      + (f"; {cfg.method}'s arms use the saved generator {cfg.generator}" if cfg.generator else ""))
        return {"arms": [dataclasses.asdict(a) for a in self.plan], "duplicate_copies": self.duplicated,
                "sources": {label: self.source_plan.record(label) for label in self.sources},
                "generators_fitted": fitted, "pool": None if pool is None else len(pool),
                "pseudo_label": ({"threshold": cfg.pseudo_threshold, "cap": cfg.pseudo_cap, "rounds": cfg.pseudo_rounds}
                                 if PSEUDO in self.arms else None)}

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

    # -- arms ----------------------------------------------------------------------------------
    def added_images(self, r: int, todo: list[str], train: ImageSet, val: ImageSet) -> dict[str, ImageSet | None]:
        """What each arm of ``todo`` adds to the real images in repeat ``r``: a source's synthetic
        images (or those the gate kept), copies of the duplicated source's source images, the
        pseudo-labelled pool images, or nothing."""
        arms = [self.arm[a] for a in todo]
        labels = list(dict.fromkeys(a.source for a in arms if a.source is not None))
        if DUPLICATE in todo and self.duplicated is not None and self.duplicated not in labels:
            labels.append(self.duplicated)
        made = {label: self.synthetic(r, train, val, label) for label in labels}
        self.forget_fits(r)
        added: dict[str, ImageSet | None] = {}
        for arm in arms:
            if arm.kind in (REAL, CLASSIC):
                added[arm.name] = None
            elif arm.kind in (SYNTHETIC, CLASSIC_SYNTHETIC):
                added[arm.name] = made[arm.source][0]
            elif arm.kind == GATE:
                added[arm.name] = made[arm.source][1]
            elif arm.kind == PSEUDO:
                added[arm.name] = self.pseudo_labels(r, train, val)
            else:  # DUPLICATE: copies of the very source images the duplicated source's images were made from
                index = {id_: i for i, id_ in enumerate(train.ids)}
                dup = ([index[s[0]] for s in made[self.duplicated][0].sources] if self.duplicated is not None
                       else self.plan_sources(train, r).tolist())
                added[arm.name] = duplicate_copies(train, dup)
        return added

    def arm_set(self, arm: str, train: ImageSet, added: ImageSet | None) -> ImageSet:
        """The training set of ``arm`` in one repeat: the real images plus what the arm adds."""
        return train if added is None else train.concat(added)

    def submit_cell(self, r: int, arm: str, data: dict, overall) -> None:
        """Hand the cell ``(r, arm)`` to the executor; :meth:`cell_done` records it when it finishes.
        ``data``: the repeat's images, each put to the executor once (``train``, ``val``, and per
        arm what it adds, ``added``) and their sizes (``n_train``, ``n_data``)."""
        folder = self.cell_dir(r, arm)
        local = self.executor.in_process
        spec = CellSpec(r, arm, self.arm_ensemble_config(data["n_train"], data["n_data"][arm]), self.cfg.seed,
                        self.executor.job_device(self.device), self.classic if self.arm[arm].classic else None,
                        self.splits.extra.get("orientation_invariant"),
                        return_members=self.cfg.keep_checkpoints and not local)
        finished = None if local else self.finished_members(folder / "ensemble")
        overall.set_status(f"repeat {r}: {arm}" if local else f"repeat {r}: cells on {self.executor.describe()}")
        self.executor.submit(
            cell_job, spec, data["train"], data["val"], data["added"][arm], self.test_ref, finished,
            name=f"lagaug cell r{r} {arm}", on_done=functools.partial(self.cell_done, r, arm, overall),
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
        steps of ``epochs`` passes over the largest arm (planned: the real images plus
        ``synthetic_per_image`` times as many)."""
        cfg = self.ens_cfg
        if self.cfg.budget == "epochs":
            return cfg
        grows = any(a.kind not in (REAL, CLASSIC) for a in self.plan)
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
        rows, comparisons = summarise_cells(cells, self.plan, test=cfg.test, alpha=cfg.alpha)
        write_results(self.run.root, rows, comparisons, cells, cfg, self.arms_record())
        return CompareResult(self.run.root, cells, rows, comparisons, cfg)

    def run_repeat(self, r: int, todo: list[str], overall) -> None:
        """The repeat's split, synthetic and pseudo-labelled images (here, on the driver), then one
        job per cell."""
        train, val = self.split(r)
        atomic_write_json(self.repeat_dir(r) / "split.json", {"train": train.ids, "val": val.ids})
        added = self.added_images(r, todo, train, val)
        refs: dict[int, object] = {}  # every image set goes to the executor once, whichever arms share it
        for images in added.values():
            if images is not None and id(images) not in refs:
                refs[id(images)] = self.executor.put(images)
        data = {"train": self.executor.put(train), "val": self.executor.put(val), "n_train": len(train),
                "added": {a: None if x is None else refs[id(x)] for a, x in added.items()},
                "n_data": {a: len(train) + (0 if x is None else len(x)) for a, x in added.items()}}
        for arm in todo:
            self.submit_cell(r, arm, data, overall)

    def all_cells(self) -> list[dict]:
        return [c for r in range(self.cfg.repeats) for a in self.arms if (c := self.cell(r, a)) is not None]

    def write_cells(self) -> list[dict]:
        cells = self.all_cells()
        atomic_write_lines(self.run.root / "cells.jsonl", (json.dumps(c) for c in cells))
        return cells


def duplicate_copies(train: ImageSet, rows: list[int]) -> ImageSet:
    """The ``duplicate`` arm's extra images: copies of the training images ``rows`` (real images,
    ids ``duplicate/NNNNN``, each naming the image it copies as its source)."""
    copies = train.subset(rows)
    copies.ids = [f"duplicate/{j:05d}" for j in range(len(copies))]
    copies.sources = [(train.ids[i],) for i in rows]
    return copies


def run_compare(config: CompareConfig, progress: Progress | None = None, resume: bool = False,
                splits: DataSplits | None = None, plugins: LagaugPluginManager | None = None) -> CompareResult:
    """Run the comparison as configured; see :class:`Compare`.

    ``splits`` gives the data directly (else ``config.data`` is loaded with
    :func:`lagaug.core.data.sources.load_data`); ``plugins`` is the plugin manager to use.
    """
    return Compare(config, progress, resume, splits, plugins).execute()
