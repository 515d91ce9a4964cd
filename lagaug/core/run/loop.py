"""The iterative hard-sample loop (Høj & Møgelmoose 2023, Fig. 2).

Iteration ``i`` (0 .. ``iterations``): train the ensemble on the current training set, evaluate it on
the test split, score every training image; then, unless it is the last iteration, select the
``hard_k`` hardest, synthesize ``variants`` images from each through the generator, and add them:
they join the training set of iteration ``i + 1``. Iteration 0 is the baseline.

The members of every iteration's ensemble use the same seeds, so each iteration's change against
the baseline is paired member by member (``auc_delta`` with its interval).

Every synthetic image is scored by the ensemble of the iteration that chose its source (label
fidelity, :mod:`lagaug.core.defaults.quality`); with ``quality_gate`` the images whose intended class does
not win, or that nearly copy their source, are dropped: written and recorded (``dropped``,
``reason``) but not trained on. ``synthetic/itNNN/quality.json`` sums each batch up.

Everything is recorded in the run directory (:mod:`lagaug.core.store.rundir`); a killed run resumes with
``resume=True`` and redoes nothing that finished.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lagaug.core.classifier import chance_warning, check_classifier_name, train_ensemble
from lagaug.core.contract.method import GENERATOR_JSON, GeneratorMethod, StageContext, Synthesis, read_generator_meta
from lagaug.core.contract.plugins import LagaugPluginManager, plugins_or_default, record_plugins, warn_competing
from lagaug.core.data.dataset import DataSplits, ImageSet
from lagaug.core.defaults.hardness import check_hard_k
from lagaug.core.defaults.quality import ensemble_classifier
from lagaug.core.errors import CheckpointError, ConfigError, PluginWarning
from lagaug.core.executor import Executor
from lagaug.core.progress import Progress
from lagaug.core.regions.masks import check_masks, resolve_normal_classes
from lagaug.core.run.config import AugmentConfig
from lagaug.core.run.generators import checked_options, fit_generator, load_generator, method_config
from lagaug.core.run.job import RunJob
from lagaug.core.run.pipeline import synthesize
from lagaug.core.runtime import derive_seed, resolve_device, stage_generator
from lagaug.core.stats import paired_difference
from lagaug.core.store.cache import reuse_or_make
from lagaug.core.store.rundir import RunDir
from lagaug.core.store.synthetic import read_synthetic, write_sources, write_synthetic


def read_json_or_none(path: Path) -> dict | None:
    import json

    return json.loads(path.read_text()) if path.exists() else None


@dataclass
class AugmentResult:
    run_dir: Path
    rows: list[dict]
    generator: GeneratorMethod | None = None
    data: dict | None = None


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


def check_generator_dir(directory: str, method: str, train: ImageSet) -> None:
    """Fail before any work when a saved generator does not fit this run."""
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


class Loop(RunJob):
    """One run of the hard-sample loop; see the module docstring."""

    def __init__(self, config: AugmentConfig, progress: Progress | None = None, resume: bool = False,
                 plugins: LagaugPluginManager | None = None):
        config.validate()
        self.cfg = config
        self.progress = progress or Progress(quiet=True)
        self.resume = resume
        self.run = RunDir(config.out)
        self.pm = plugins_or_default(plugins)
        self.device = resolve_device(config.device)
        self.ens_cfg = config.ensemble_config()
        self.executor: Executor | None = None
        self.hardness: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # it -> (scores, mean probs)
        self.ensembles: dict[int, Any] = {}  # it -> the iteration's trained ensemble (label fidelity)
        self.anomaly: Any = None  # the anomaly model, fitted when a region must be found without a mask
        self.trained_on: dict[int, list[str]] = {}  # it -> the ids its ensemble was trained on
        self.seconds: dict[Any, Any] = {}  # wall time per stage: "generator", and per iteration a dict

    # -- set-up --------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Check everything that can be checked, then create (or reopen) the run directory.

        Nothing is written before every check has passed: a failed start leaves nothing behind.
        """
        from lagaug.core.data.sources import load_data
        from lagaug.core.store.atomic import check_output_dir

        cfg = self.cfg
        check_output_dir(cfg.out)
        method_cls = self.pm.get_method(cfg.method)  # unknown method: fails before any work
        check_classifier_name(self.ens_cfg.classifier)
        method_cfg, self.options = method_config(method_cls, cfg.set)
        self.plugin_options = self.pm.plugin_options(cfg.set)
        self.splits: DataSplits = load_data(
            cfg.data, image_size=cfg.image_size, seed=cfg.split_seed, unlabeled=cfg.unlabeled,
            bad_images=cfg.bad_images, progress=self.progress)
        train = self.splits.train
        method_cls.check_image_shape((train.channels, *train.image_size))
        self.classes = resolve_classes(cfg.classes, train.class_names)
        self.normal = resolve_normal_classes(cfg.normal_classes, train.class_names,
                                             self.splits.extra.get("normal_classes"))
        check_masks({"train": train, "val": self.splits.val, "test": self.splits.test}, self.normal,
                    cfg.data or "the embedded data")
        self.check_hard_k(train)
        self.loaded = None
        if cfg.generator:
            check_generator_dir(cfg.generator, cfg.method, train)
            self.loaded = load_generator(cfg.generator, expect_method=cfg.method, plugins=self.pm)
        method_cfg, self.options = checked_options(method_cls, cfg.set, (train.channels, *train.image_size),
                                                   train.class_names, saved=self.loaded)
        if self.loaded is None:
            method_cls.check_train(method_cfg, train)
        warn_competing(self.pm)
        self.pm.answered.clear()  # RUN/plugins.json: what answered in this run
        self.open_run()
        self.progress.log(self.splits.counts_line())

    def check_hard_k(self, train: ImageSet) -> None:
        """``--hard-k`` must not exceed the images the first selection can choose from."""
        candidates = torch.ones(len(train), dtype=torch.bool)
        if self.classes is not None:
            candidates &= torch.isin(train.labels, torch.tensor(self.classes))
        if self.cfg.iterations > 0:
            where = "in --classes " + ", ".join(self.cfg.classes) if self.classes is not None else "for training"
            check_hard_k(self.cfg.hard_k, int(candidates.sum()), f"images {where}")

    def generator(self) -> GeneratorMethod:
        """The run's generator: ``--generator``, the run's own (resume), the cache's copy of the same
        fit (same method, configuration, data, pool and seed), or a new fit (kept in the cache)."""
        from lagaug.core.config import config_to_dict
        from lagaug.core.store.cache import cache_key, reuse_or_make

        cfg, folder = self.cfg, self.run.generator_dir
        if self.loaded is not None:
            return self.loaded
        if (folder / GENERATOR_JSON).exists():
            return load_generator(folder, expect_method=cfg.method, plugins=self.pm)
        method_cls = self.pm.get_method(cfg.method)
        key = cache_key({"kind": "generator", "method": cfg.method, "version": method_cls.version,
                         "config": config_to_dict(method_config(method_cls, cfg.set)[0]),
                         "data": self.identity["data"], "unlabeled": self.identity["unlabeled"],
                         "seed": cfg.seed, "device": self.device.type})
        start = time.perf_counter()
        method, reused = reuse_or_make(
            "generator", key, folder,
            make=lambda: fit_generator(cfg.method, self.splits, overrides=cfg.set, seed=cfg.seed, device=self.device,
                                       progress=self.progress, out=folder, plugins=self.pm),
            load=lambda: load_generator(folder, expect_method=cfg.method, plugins=self.pm),
            refit=cfg.refit, meta={"run": str(self.run.root)}, log=self.progress.log)
        self.seconds["generator"] = round(time.perf_counter() - start, 3)
        self.seconds["generator_reused"] = reused is not None
        return method

    # -- one iteration -------------------------------------------------------------------------
    def ensemble(self, it: int, train: ImageSet):
        """The ensemble of iteration ``it``: loaded from its checkpoints (resume); for iteration 0,
        the cache's copy of the same baseline (same data, split, classifier settings and seed); for
        a round that added no image, the previous iteration's (the same training set and seeds: the
        same members); else trained."""
        if it in self.ensembles:
            return self.ensembles[it]
        folder = self.run.iteration_dir(it) / "ensemble"

        def train_it():
            return train_ensemble(
                train, self.splits.val, self.ens_cfg, stage_generator(self.cfg.seed, "ensemble"),
                device=self.device, progress=self.progress, checkpoint_dir=folder,
                label=f"iteration {it}: ensemble",
                orientation_invariant=self.splits.extra.get("orientation_invariant"), executor=self.executor)

        start = time.perf_counter()
        if it > 0 and train.ids == self.trained_on.get(it - 1) and (it - 1) in self.ensembles:
            self.copy_members(self.run.iteration_dir(it - 1) / "ensemble", folder)
            self.progress.log(f"iteration {it}: no image was added; its ensemble is iteration {it - 1}'s")
            ensemble = train_it()  # loads the copied members
            self.seconds.setdefault(it, {})["ensemble_reused"] = f"iteration {it - 1}"
        elif it == 0 and not any(folder.glob("member_*.safetensors")):
            ensemble, reused = reuse_or_make(
                "baseline", self.baseline_key(), folder, make=train_it, load=train_it, refit=self.cfg.refit,
                names=lambda f: sorted(p.name for p in f.glob("member_*.safetensors")),
                meta={"run": str(self.run.root)}, log=self.progress.log)
            if reused is not None:
                self.seconds.setdefault(it, {})["ensemble_reused"] = f"cache {reused.get('key')}"
        else:
            ensemble = train_it()
        self.seconds.setdefault(it, {})["ensemble"] = round(time.perf_counter() - start, 3)
        self.ensembles = {it: ensemble}
        self.trained_on[it] = list(train.ids)
        return ensemble

    def baseline_key(self) -> str:
        """What iteration 0's members depend on: data, split, classifier settings, seed, device."""
        from lagaug.core.store.cache import cache_key

        return cache_key({"kind": "baseline", "data": self.identity["data"], "ensemble": dataclasses.asdict(self.ens_cfg),
                          "seed": self.cfg.seed, "device": self.device.type,
                          "orientation": self.splits.extra.get("orientation_invariant")})

    @staticmethod
    def copy_members(src: Path, dst: Path) -> None:
        from lagaug.core.store.cache import _link_or_copy

        for path in sorted(src.glob("member_*.safetensors")):
            _link_or_copy(path, dst / path.name)

    def evaluate(self, it: int, train: ImageSet, added: int, method: GeneratorMethod) -> dict:
        """Train and evaluate the ensemble of iteration ``it`` and score the training set."""
        from lagaug.core.defaults.quality import QUALITY_FILE

        ensemble = self.ensemble(it, train)
        start = time.perf_counter()
        result = ensemble.evaluate(self.splits.test)
        seconds = self.seconds.setdefault(it, {})
        seconds["evaluate"] = round(time.perf_counter() - start, 3)
        quality = read_json_or_none(self.run.synthetic_dir(it) / QUALITY_FILE) if it > 0 else None
        metrics = {
            "iteration": it, "train_size": len(train), "synthetic_total": int(train.synthetic.sum()),
            "added": added, **{k: v for k, v in result.items() if k != "per_member"},
            **self.paired_deltas(it, result["per_member"]),
            **({} if quality is None else {"synthetic_quality": quality}),
            "per_member": result["per_member"],
            "members": [{k: h.get(k) for k in ("seed", "kept_epoch", "kept_because", "balance", "aug", "node", "node_id")
                         if k in h} for h in ensemble.history],
            "executor": self.executor.name,
        }
        if it == 0:
            warning = chance_warning(result, self.splits.test.labels)
            if warning:
                metrics["chance_warning"] = warning
        scores = probs = None
        if it < self.cfg.iterations:
            start = time.perf_counter()
            probs = ensemble.predict_proba(train.float_images()).mean(0)
            ctx = self.stage_context(it)
            ctx.pool, ctx.probs, ctx.ensemble = train, probs, ensemble
            scores = self.pm.call_stage("lagaug_score", method=method, ensemble=ensemble, dataset=train,
                                        context=ctx)
            scores = torch.as_tensor(scores, dtype=torch.float32).reshape(-1)
            self.hardness[it] = (scores, probs)
            seconds["score"] = round(time.perf_counter() - start, 3)
        if it == 0 and "generator" in self.seconds:
            seconds["generator_fit"] = self.seconds["generator"]
            seconds["generator_reused"] = self.seconds["generator_reused"]
        metrics["seconds"] = dict(seconds)  # wall time per stage (the only figures that differ between reruns)
        self.run.write_iteration(it, metrics, None if scores is None else (train, scores, probs))
        record_plugins(self.pm, self.run.root, self.progress)
        self.notify(it, metrics, added)
        return metrics

    def paired_deltas(self, it: int, per_member: list[dict]) -> dict:
        """Each metric's change against the baseline, member by member (same seeds), with its interval."""
        base = self.run.iteration_metrics(0) if it > 0 else None
        if base is None:
            return {}
        out = {}
        for key in ("auc", "f1", "accuracy"):
            now = [m[key] for m in per_member]
            then = [m[key] for m in base["per_member"]][: len(now)]
            out[f"{key}_delta"], out[f"{key}_delta_ci"] = paired_difference(now, then)
        return out

    def augment(self, it: int, train: ImageSet, method: GeneratorMethod) -> ImageSet | None:
        """Select the hardest images of iteration ``it`` and synthesize the batch for ``it + 1``."""
        if it not in self.hardness:
            self.hardness[it] = self.run.read_scores(it, train)
        scores, probs = self.hardness[it]
        ctx = self.stage_context(it)
        ensemble = self.ensemble(it, train)
        ctx.pool, ctx.probs, ctx.ensemble = train, probs, ensemble
        ctx.classify, ctx.gate = ensemble_classifier(ensemble), self.cfg.gate()
        chosen = self.pm.call_stage(
            "lagaug_select", method=method, scores=scores, dataset=train, k=self.cfg.hard_k,
            classes=self.classes, include_synthetic=self.cfg.include_synthetic, context=ctx,
        )
        chosen = torch.as_tensor(chosen, dtype=torch.long)
        ctx.batch_index = chosen
        ctx.anomaly = self.anomaly_model(train, chosen)
        start = time.perf_counter()
        with self.progress.task(f"iteration {it}: synthesize with {method.name}", 1) as task:
            synth = synthesize(self.pm, method, train.float_images(chosen), train.targets()[chosen], ctx,
                               keep_dropped=True)
            task.advance(1, status=f"{len(synth.kept)} of {len(synth)} images kept" if synth.dropped is not None
                         else f"{len(synth)} images")
        nxt = it + 1
        self.seconds.setdefault(nxt, {})["synthesis"] = {"total": round(time.perf_counter() - start, 3), **ctx.timings}
        start = time.perf_counter()
        sources = ctx.source_set()  # the training images, then any background drawn from the pool
        self.write_quality(nxt, synth, ctx.classify, it, train, probs)
        write_sources(self.run.root, f"synthetic/it{nxt:03d}/sources", sources, synth, chosen, scores)
        lines = write_synthetic(
            self.run.root, f"synthetic/it{nxt:03d}", synth, sources, method=self.cfg.method,
            seed=derive_seed(self.cfg.seed, "stage", it), id_prefix=f"synthetic/it{nxt:03d}",
            extra={"iteration": nxt},
            per_image=lambda j: {"source_score": [float(scores[r]) for r in synth.source[j].tolist() if 0 <= r < len(scores)]},
        )
        self.run.update_manifest(nxt)
        record_plugins(self.pm, self.run.root, self.progress)
        self.write_grid(nxt, sources, chosen, synth, scores)
        self.seconds[nxt]["write"] = round(time.perf_counter() - start, 3)
        return read_synthetic(self.run.root, lines, train)

    def anomaly_model(self, train: ImageSet, chosen: torch.Tensor):
        """The anomaly model, when a region must be found without a mask: ``--region-source
        anomaly``, or ``auto`` with an unlabelled pool and a chosen image of a defect class that has
        no mask. Fitted once per run (on the normal-class training images and the pool), saved in
        ``RUN/regions/``."""
        from lagaug.core.regions.anomaly import fit_anomaly_model

        if self.anomaly is not None:
            return self.anomaly
        source = self.cfg.region_source
        if source == "auto":
            if self.splits.unlabeled is None:  # auto finds regions only in the pool regime
                return None
            defect = ~torch.isin(train.labels[chosen], torch.tensor(self.normal, dtype=torch.long))
            bare = ~train.mask_rows(chosen).flatten(1).any(1)
            if not bool((defect & bare).any()):
                return None
        elif source != "anomaly":
            return None
        self.anomaly = fit_anomaly_model(self.splits, self.normal, generator=stage_generator(self.cfg.seed, "anomaly"),
                                         device=self.device, progress=self.progress, out=self.run.root / "regions")
        return self.anomaly

    def write_quality(self, nxt: int, synth: Synthesis, classify, it: int, train: ImageSet, probs) -> None:
        """``synthetic/itNNN/quality.json``: the batch's label fidelity and the gate's verdicts,
        class by class beside the same class's validation images and the images they were made
        from (``probs``: the ensemble's view of every training row), under the same ensemble."""
        from lagaug.core.defaults.quality import QUALITY_FILE, source_reference, summarize, validation_reference
        from lagaug.core.store.atomic import atomic_write_json

        names = self.splits.train.class_names
        summary = {"classifier": f"iteration {it} ensemble", **summarize(synth, names, self.classes)}
        val = self.splits.val
        if len(val):
            validation_reference(summary, classify(val.float_images()), val.targets(), names)
        if probs is not None:
            source_reference(summary, synth, probs, train.targets(), names)
        atomic_write_json(self.run.synthetic_dir(nxt) / QUALITY_FILE, summary)

    def write_grid(self, nxt: int, train: ImageSet, chosen: torch.Tensor, synth: Synthesis,
                   scores: torch.Tensor) -> None:
        from lagaug.core.plots import partner_images, save_pair_grid

        position = {int(r): i for i, r in enumerate(chosen)}
        index = torch.tensor([position.get(int(r), -1) for r in synth.primary], dtype=torch.long)
        save_pair_grid(self.run.root / "grids" / f"it{nxt:03d}.png", train.float_images(chosen), synth.images, index,
                       partners=partner_images(train, synth.source))

    def stage_context(self, it: int) -> StageContext:
        return StageContext(
            generator=stage_generator(self.cfg.seed, "stage", it), device=self.device,
            variants=self.cfg.variants, options=dict(self.options), iteration=it, progress=self.progress,
            region_source=self.cfg.region_source, normal_classes=list(self.normal), unlabeled=self.splits.unlabeled,
            plugin_options=dict(self.plugin_options),
        )

    def notify(self, it: int, metrics: dict, added: int) -> None:
        try:
            self.pm.hook.lagaug_iteration_end(iteration=it, metrics=metrics, added=added, run_dir=self.run.root)
        except Exception as exc:  # a logger plugin must not stop the run; said even under --quiet
            warnings.warn(f"a lagaug_iteration_end hook failed: {type(exc).__name__}: {exc}", PluginWarning,
                          stacklevel=2)

    # -- the whole run -------------------------------------------------------------------------
    def _run(self) -> AugmentResult:
        method = None
        train = self.splits.train
        for it in range(self.cfg.iterations + 1):
            added = 0
            if it > 0:
                lines = self.run.synthetic_manifest(it)
                if lines is None:
                    method = method or self.generator()  # no generator for --iterations 0
                    new = self.augment(it - 1, train, method)
                else:
                    new = read_synthetic(self.run.root, lines, train)
                added = 0 if new is None else len(new)
                train = train.concat(new) if added else train
            if self.run.iteration_metrics(it) is None:
                if it < self.cfg.iterations and method is None:
                    method = self.generator()  # fitted before the baseline: scoring may ask the method
                self.evaluate(it, train, added, method)
        rows = self.run.write_metrics_tables()
        from lagaug.core.plots import plot_metrics

        plot_metrics(rows, self.run.root / "metrics.png")
        return AugmentResult(self.run.root, rows, method, self.splits.summary())


def run_augment(config: AugmentConfig, progress: Progress | None = None, resume: bool = False,
                plugins: LagaugPluginManager | None = None) -> AugmentResult:
    """Run the hard-sample loop as configured; see :class:`Loop`. ``plugins``: the plugin manager
    to use (default: a new one, :func:`lagaug.core.contract.plugins.make_plugin_manager`)."""
    return Loop(config, progress, resume, plugins).execute()
