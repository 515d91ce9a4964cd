"""The generative side of a comparison: one generator fit per fit group and repeat, and each
source's synthetic images (made once per repeat, then read back from the run directory).

A **source** (:class:`lagaug.core.compare.arms.Source`) is a method with its options and an
optional class restriction. Sources of one method whose *fit-time* configuration is the same form
a **fit group** and share one fit per repeat: two configurations count as the same when every
option the method does not declare in :attr:`GeneratorMethod.stage_options
<lagaug.core.contract.method.GeneratorMethod.stage_options>` resolves to the same value (a method that
declares nothing has every option fit-time: a variant that sets any option gets its own fit).
The group's fit is given the first source's options, less the stage options its sources set
differently; each source's own options reach its stages as ``ctx.options``.

Every generator is fitted on the repeat's training images (validation images for early stopping
with ``generator_val``) plus the run's unlabelled pool, when there is one (the method decides
whether it uses it); ``--generator DIR`` replaces the fits of ``--method``'s sources with one saved
generator for every repeat.

Folders (``rNNN`` is a repeat's folder): the source named by ``--method`` (the *primary* one)
keeps ``rNNN/generator/``, ``rNNN/synthetic/``, ``rNNN/grid.png`` and ``rNNN/synthesis.json``;
every other source ``L`` has ``rNNN/methods/L/`` with the same files, its ``generator/`` only
when it is the first source of its fit group.
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from lagaug.core.compare.arms import GATE, Source
from lagaug.core.config import config_to_dict, resolve_options
from lagaug.core.contract.method import GENERATOR_JSON, GeneratorMethod, StageContext
from lagaug.core.data.dataset import DataSplits, ImageSet
from lagaug.core.defaults.quality import GateConfig, summarize
from lagaug.core.errors import ConfigError, DataError
from lagaug.core.run.generators import fit_generator, load_generator
from lagaug.core.run.pipeline import synthesize
from lagaug.core.runtime import derive_seed, stage_generator
from lagaug.core.store.atomic import atomic_write_json
from lagaug.core.store.synthetic import read_manifest, read_synthetic, write_synthetic

LOADED = "--generator"  # the fit group of --method's sources when a saved generator serves them


class SourcePlan:
    """Each source's typed stage options, class restriction and fit group, checked before any work.

    ``sources``: label -> :class:`Source`; ``primary``: the label that keeps the classic folder
    layout (``--method``'s); ``loaded``: the method name a saved generator serves (or ``None``)."""

    def __init__(self, sources: dict[str, Source], plugins, class_names: list[str], primary: str | None,
                 variants: dict[str, Any], loaded: str | None = None):
        self.sources = sources
        self.primary = primary
        self.options: dict[str, dict[str, Any]] = {}
        self.classes: dict[str, list[int] | None] = {}
        self.group: dict[str, str] = {}  # label -> its fit group's first label (or LOADED)
        self.fit_options: dict[str, dict[str, Any]] = {}  # group -> the options its fit is given
        keys: dict[str, str] = {}
        configs: dict[str, dict[str, Any]] = {}
        for label, src in sources.items():
            cls = plugins.get_method(src.method)
            where = f"--arm {label}" if label in variants else f"--set (method {cls.name})"
            try:
                config, self.options[label] = resolve_options(cls.default_config(), src.options, source=where)
            except ConfigError as exc:  # a value's own check names the key, not the variant
                raise (ConfigError(f"{where}: {exc}") if not str(exc).startswith(where) else exc) from None
            configs[label] = config_to_dict(config)
            self.classes[label] = self._class_indices(src, class_names)
            if loaded is not None and src.method == loaded:
                self.group[label] = LOADED
                continue
            stage = set(getattr(cls, "stage_options", None) or ())
            fit_fields = {k: v for k, v in configs[label].items() if k not in stage}
            key = json.dumps([src.method, fit_fields], sort_keys=True, default=str)
            self.group[label] = keys.setdefault(key, label)
        for group in set(self.group.values()) - {LOADED}:
            members = [lb for lb in sources if self.group[lb] == group]
            differ = {k for lb in members for k in configs[lb] if configs[lb][k] != configs[group][k]}
            self.fit_options[group] = {k: v for k, v in sources[group].options.items() if k not in differ}

    @staticmethod
    def _class_indices(src: Source, class_names: list[str]) -> list[int] | None:
        if src.classes is None:
            return None
        missing = [c for c in src.classes if c not in class_names]
        if missing:
            raise ConfigError(f"--arm {src.label}: classes={missing[0]!r} is not a class of the data "
                              f"({', '.join(class_names)})")
        return [class_names.index(c) for c in src.classes]

    def record(self, label: str) -> dict[str, Any]:
        """What ``arms.json`` says of a source: its recipe, its stage options and its fit group."""
        group = self.group[label]
        return {**self.sources[label].record(), "fit_group": group,
                "fit_options": None if group == LOADED else self.fit_options[group]}


class SynthesisStage:
    """The generator fits and synthetic images of :class:`lagaug.core.compare.run.Compare` (a
    mixin: it uses the run's ``cfg``, ``splits``, ``pm``, ``device``, ``progress``, ``arms``,
    ``loaded``, ``source_plan``, ``_fitted`` (a dict) and ``repeat_dir``)."""

    def source_dir(self, r: int, label: str) -> Path:
        root = self.repeat_dir(r)
        return root if label == self.source_plan.primary else root / "methods" / label

    def plan_sources(self, train: ImageSet, r: int, classes: list[int] | None = None) -> torch.Tensor:
        """Training-image index of every extra image: each image of ``classes`` (``None``: all)
        ``floor``/``ceil`` of the ratio ``synthetic_per_image``."""
        pick = (torch.arange(len(train)) if classes is None
                else torch.nonzero(torch.isin(train.labels, torch.tensor(classes))).flatten())
        n = int(round(self.cfg.synthetic_per_image * len(pick)))
        if n < 1:
            raise ConfigError(
                f"--synthetic-per-image {self.cfg.synthetic_per_image} makes no image from {len(pick)} "
                "training images; raise it"
            )
        gen = stage_generator(self.cfg.seed, "sources", r)
        rounds = [pick[torch.randperm(len(pick), generator=gen)] for _ in range(math.ceil(n / len(pick)))]
        return torch.cat(rounds)[:n].sort().values

    def generator_for(self, r: int, label: str, train: ImageSet, val: ImageSet) -> GeneratorMethod:
        """The repeat's generator for source ``label``: a fresh copy of the saved one, of its fit
        group's fit (fitted here once, then read back), never a copy another source's stages used."""
        plan = self.source_plan
        group = plan.group[label]
        if group == LOADED:
            # a fresh copy per repeat: what a stage learns lazily (e.g. stylegan2's class
            # directions, fitted on the repeat's images) must not carry into the next repeat,
            # or a resumed run would differ from an uninterrupted one
            return copy.deepcopy(self.loaded)
        cache = self._fitted
        if (r, group) not in cache:
            method = plan.sources[group].method
            folder = self.source_dir(r, group) / "generator"
            if (folder / GENERATOR_JSON).exists():
                cache[r, group] = load_generator(folder, expect_method=method, plugins=self.pm)
            else:
                cache[r, group] = self.fit_once(r, group, method, train, val, folder)
        return copy.deepcopy(cache[r, group])

    def fit_once(self, r: int, group: str, method: str, train: ImageSet, val: ImageSet, folder: Path):
        """Fit group ``group``'s generator for repeat ``r``: the same fit for every repeat with the same
        training draw (its seed follows the draw, not the repeat), taken from the cache when an earlier
        run or repeat made it (:mod:`lagaug.core.store.cache`), else fitted and kept there."""
        from lagaug.core.data.identity import sets_fingerprint
        from lagaug.core.store.cache import _link_or_copy, cache_key, reuse_or_make

        draw = r if self.cfg.train_size is not None else 0
        fit_val = val if self.cfg.generator_val else train.subset([])
        options = self.source_plan.fit_options[group]
        cls = self.pm.get_method(method)
        key = cache_key({"kind": "generator", "method": method, "version": cls.version,
                         "config": config_to_dict(resolve_options(cls.default_config(), options)[0]),
                         "data": sets_fingerprint(train, fit_val), "unlabeled": self.identity["unlabeled"],
                         "seed": derive_seed(self.cfg.seed, "repeat", draw), "device": self.device.type})
        same = self._fits_by_key.get(key)
        if same is not None and (same / GENERATOR_JSON).exists():  # an earlier repeat's (with the cache off too)
            for path in same.iterdir():
                if path.is_file():
                    _link_or_copy(path, folder / path.name)
            return load_generator(folder, expect_method=method, plugins=self.pm)
        splits = DataSplits(train, fit_val, train.subset([]), self.splits.unlabeled)
        made, _ = reuse_or_make(
            "generator", key, folder,
            make=lambda: fit_generator(method, splits, overrides=options, seed=derive_seed(self.cfg.seed, "repeat", draw),
                                       device=self.device, progress=self.progress, out=folder, plugins=self.pm),
            load=lambda: load_generator(folder, expect_method=method, plugins=self.pm),
            refit=self.cfg.refit, meta={"run": str(self.run.root)}, log=self.progress.log)
        self._fits_by_key[key] = folder
        return made

    def synthetic(self, r: int, train: ImageSet, val: ImageSet, label: str) -> tuple[ImageSet, ImageSet | None]:
        """Source ``label``'s images in repeat ``r`` (made once, then read back from the run
        directory): all of them, and (with the ``label+gate`` arm) those the quality gate kept."""
        root = self.source_dir(r, label)
        src, primary = self.source_plan.sources[label], label == self.source_plan.primary
        lines = read_manifest(root / "synthetic" / "manifest.jsonl")
        gated = f"{label}+{GATE}" in self.arms
        if lines is None:
            method = self.generator_for(r, label, train, val)
            sources = self.plan_sources(train, r, self.source_plan.classes[label])
            parts = ("synthesize", r) if primary else ("synthesize", r, label)
            ctx = StageContext(generator=stage_generator(self.cfg.seed, *parts), device=self.device,
                               variants=1, options=dict(self.source_plan.options[label]), progress=self.progress,
                               pool=train, batch_index=sources, region_source=self.cfg.region_source,
                               normal_classes=list(self.normal), unlabeled=self.splits.unlabeled,
                               plugin_options=dict(self.plugin_options))
            if gated:
                ctx.classify, ctx.gate = self.reference_classifier(r, train, val), GateConfig(
                    min_distance=self.cfg.gate_distance)
            elif self.cfg.region_source == "saliency":
                ctx.classify = self.reference_classifier(r, train, val)
            ctx.anomaly = self.anomaly_for(r, train, val, sources)
            start = time.perf_counter()
            what = method.name if label == src.method else f"{label} ({method.name})"
            with self.progress.task(f"repeat {r}: synthesize {len(sources)} images with {what}", 1) as task:
                synth = synthesize(self.pm, method, train.float_images(sources), train.targets()[sources], ctx,
                                   keep_dropped=True)
                task.advance(1, status=f"{len(synth)} images")
            seconds = time.perf_counter() - start
            everything = ctx.source_set()  # the training images, then any background drawn from the pool
            self.write_preview(root / "grid.png", everything, synth)
            atomic_write_json(root / "synthesis.json",
                              {"planned": len(sources), "made": len(synth), "seconds": round(seconds, 3),
                               **({"quality": summarize(synth, train.class_names)} if gated else {})})
            extra = {"repeat": r} if primary else {"repeat": r, "arm_source": label}
            lines = write_synthetic(root, "synthetic", synth, everything, method=src.method,
                                    seed=derive_seed(self.cfg.seed, *parts),
                                    id_prefix=f"synthetic/r{r:03d}" if primary else f"synthetic/{label}/r{r:03d}",
                                    extra=extra)
        made = read_synthetic(root, [{**line, "dropped": False} for line in lines], train)
        if made is None:
            raise DataError(f"repeat {r}: {label} made no images (all were filtered out)")
        kept = read_synthetic(root, lines, train) if gated else None
        if gated and kept is None:
            raise DataError(f"repeat {r}: the quality gate dropped every synthetic image; the "
                            f"{label}+{GATE} arm has nothing to add")
        return made, kept

    def anomaly_for(self, r: int, train: ImageSet, val: ImageSet, sources: torch.Tensor):
        """Repeat ``r``'s anomaly model, when a region must be found without a mask (``--region-source
        anomaly``, or ``auto`` with an unlabelled pool and a source image of a defect class that has
        none): fitted on the
        repeat's normal-class training images and the pool, saved in ``rNNN/regions/``."""
        from lagaug.core.regions.anomaly import fit_anomaly_model

        source = self.cfg.region_source
        if source == "auto":
            if self.splits.unlabeled is None:  # auto finds regions only in the pool regime
                return None
            defect = ~torch.isin(train.labels[sources], torch.tensor(self.normal, dtype=torch.long))
            if not bool((defect & ~train.mask_rows(sources).flatten(1).any(1)).any()):
                return None
        elif source != "anomaly":
            return None
        if r not in self._anomaly:
            splits = DataSplits(train, val, train.subset([]), self.splits.unlabeled)
            self._anomaly[r] = fit_anomaly_model(splits, self.normal, generator=stage_generator(self.cfg.seed, "anomaly", r),
                                                 device=self.device, progress=self.progress,
                                                 out=self.repeat_dir(r) / "regions")
        return self._anomaly[r]

    def forget_fits(self, r: int) -> None:
        """Drop repeat ``r``'s fitted generators from memory (they are saved in the run directory)."""
        for key in [k for k in self._fitted if k[0] == r]:
            del self._fitted[key]

    def write_preview(self, path: Path, train: ImageSet, synth) -> None:
        """``grid.png``: one source image of every class, beside everything made from it."""
        from lagaug.core.plots import partner_images, save_pair_grid

        rows = synth.primary
        shown = sorted({int(rows[torch.nonzero(train.labels[rows] == c).flatten()[0]])
                        for c in range(train.num_classes) if bool((train.labels[rows] == c).any())})
        position = {t: i for i, t in enumerate(shown)}
        pick = [j for j in range(len(synth)) if int(rows[j]) in position]
        save_pair_grid(path, train.float_images(shown), synth.images[pick],
                       torch.tensor([position[int(rows[j])] for j in pick], dtype=torch.long),
                       partners=partner_images(train, synth.source[pick]))
