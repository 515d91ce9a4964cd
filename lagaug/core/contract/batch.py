"""What flows between the stages of synthesis: :class:`Latents` (encode → resample → decode),
:class:`Synthesis` (what decode returns: images, soft labels, provenance, metrics, regions),
:class:`Regions` (where the class evidence lies in each source image), and the contexts a method
is handed: :class:`StageContext` (every stage) and :class:`FitContext` (``fit``). The method
contract itself is :mod:`lagaug.core.contract.method`, which re-exports these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lagaug.core.progress import Progress


def as_sources(source: torch.Tensor, weight: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise provenance to ``(N, S)`` int64 source rows and ``(N, S)`` float32 weights.

    A 1-D ``source`` is one source per row with weight 1. Rows with fewer than ``S`` sources pad
    with source ``-1`` and weight 0.
    """
    source = torch.as_tensor(source).to(torch.int64).cpu()
    if source.dim() == 1:
        source = source[:, None]
    if source.dim() != 2:
        raise ValueError(f"source must be (N,) or (N, S), got shape {tuple(source.shape)}")
    if weight is None:
        weight = (source >= 0).to(torch.float32)
    weight = torch.as_tensor(weight, dtype=torch.float32).cpu()
    if weight.dim() == 1:
        weight = weight[:, None]
    if tuple(weight.shape) != tuple(source.shape):
        raise ValueError(f"weight has shape {tuple(weight.shape)}, source {tuple(source.shape)}; they must match")
    return source, weight


@dataclass
class Latents:
    """Latent codes of a batch.

    ``codes`` holds method-specific tensors whose first dimension is the row count N.
    ``source`` ``(N, S)`` names the images each row came from, as rows of ``ctx.pool`` (the image
    set the batch was drawn from; ``ctx.batch_index`` are the batch's own rows), and ``weight``
    ``(N, S)`` how much each source contributes (1 for a single source; λ and 1 − λ for a mix;
    -1 / 0 pad rows with fewer sources). A 1-D ``source`` means one source per row, weight 1.
    ``soft`` holds the soft label of every row ``(N, K)``.
    """

    codes: dict[str, torch.Tensor]
    source: torch.Tensor
    soft: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)
    weight: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.source, self.weight = as_sources(self.source, self.weight)

    def __len__(self) -> int:
        return int(self.source.shape[0])

    def repeat(self, variants: int) -> "Latents":
        """Every row repeated ``variants`` times, consecutively (a0 a0 a1 a1 ...)."""
        rep = lambda t: t.repeat_interleave(variants, dim=0)  # noqa: E731
        return Latents(
            codes={k: rep(v) for k, v in self.codes.items()},
            source=rep(self.source),
            soft=rep(self.soft),
            info=dict(self.info),
            weight=rep(self.weight),
        )


@dataclass
class Synthesis:
    """Decoded images: float32 ``(N, C, H, W)`` in ``[0, 1]``, soft labels ``(N, K)``, and their
    provenance: ``source`` ``(N, S)`` rows of ``ctx.pool`` with ``weight`` ``(N, S)`` (see
    :class:`Latents`; the first column is the primary source). ``metrics`` holds optional
    per-image measurements (tensors of shape ``(N,)``) that the run records, e.g. how much
    structure was kept. ``dropped`` ``(N,)`` bool and ``reasons`` (``str`` or ``None`` per image)
    are set by :func:`lagaug.core.run.pipeline.synthesize` when it keeps the images the
    ``lagaug_filter_synthesized`` hooks rejected (``keep_dropped=True``), so they can be recorded;
    ``filters`` then names the plugins whose filter gave a verdict."""

    images: torch.Tensor
    soft: torch.Tensor
    source: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)
    weight: torch.Tensor | None = None
    dropped: torch.Tensor | None = None
    reasons: list | None = None
    masks: torch.Tensor | None = None  # bool (N, H, W): where each image's kept region (its defect) lies
    notes: list[dict[str, Any]] | None = None  # per image: JSON-able facts for its manifest line
    filters: list | None = None

    def __post_init__(self) -> None:
        self.source, self.weight = as_sources(self.source, self.weight)
        if self.notes is not None and len(self.notes) != len(self):
            raise ValueError(f"notes has {len(self.notes)} entries for {len(self)} images")

    def note(self, j: int) -> dict[str, Any]:
        """Image ``j``'s notes (a new dict to write into; the list is created on first use)."""
        if self.notes is None:
            self.notes = [{} for _ in range(len(self))]
        return self.notes[j]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def primary(self) -> torch.Tensor:
        """``(N,)``: the first (primary) source row of every image."""
        return self.source[:, 0]

    def subset(self, keep: torch.Tensor) -> "Synthesis":
        return Synthesis(
            images=self.images[keep],
            soft=self.soft[keep],
            source=self.source[keep],
            metrics={k: v[keep] for k, v in self.metrics.items()},
            weight=self.weight[keep],
            dropped=None if self.dropped is None else self.dropped[keep],
            reasons=None if self.reasons is None else [r for r, k in zip(self.reasons, keep.tolist()) if k],
            masks=None if self.masks is None else self.masks[keep],
            notes=None if self.notes is None else [n for n, k in zip(self.notes, keep.tolist()) if k],
            filters=self.filters,
        )

    @property
    def kept(self) -> "Synthesis":
        """The images no filter dropped (all of them when nothing was recorded as dropped)."""
        return self if self.dropped is None or not bool(self.dropped.any()) else self.subset(~self.dropped)


@dataclass
class Regions:
    """Where the class evidence of each image of a batch lies: ``rows`` ``(N,)`` the images' pool
    rows, ``masks`` bool ``(N, H, W)`` (all false: nothing to keep), and ``source`` per image —
    ``"mask"`` (given with the data), ``"anomaly"``, ``"saliency"``, ``"normal class"`` (a
    defect-free class: nothing to keep) or ``"none"``."""

    rows: torch.Tensor
    masks: torch.Tensor
    source: list[str]
    images: torch.Tensor | None = None  # the batch's images (N, C, H, W), what a kept region comes from
    soft: torch.Tensor | None = None  # and their soft labels (N, K)

    def __post_init__(self) -> None:
        self.rows = torch.as_tensor(self.rows, dtype=torch.int64).reshape(-1).cpu()
        self.masks = torch.as_tensor(self.masks).to(torch.bool).cpu()
        if self.masks.dim() != 3 or len(self.masks) != len(self.rows) or len(self.source) != len(self.rows):
            raise ValueError(f"regions: {len(self.rows)} rows, masks {tuple(self.masks.shape)}, "
                             f"{len(self.source)} sources; they must match (masks (N, H, W))")

    def for_rows(self, rows: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        """The masks ``(M, H, W)`` and sources of pool ``rows`` (a row not in the batch: no region)."""
        where = {int(r): i for i, r in enumerate(self.rows.tolist())}
        rows = torch.as_tensor(rows).reshape(-1).tolist()
        out = torch.zeros(len(rows), *self.masks.shape[1:], dtype=torch.bool)
        names = []
        for j, r in enumerate(rows):
            i = where.get(int(r))
            if i is not None:
                out[j] = self.masks[i]
            names.append("none" if i is None else self.source[i])
        return out, names

    def positions(self, rows: torch.Tensor) -> torch.Tensor:
        """The batch position of every pool row in ``rows`` (-1 for a row not in the batch)."""
        where = {int(r): i for i, r in enumerate(self.rows.tolist())}
        return torch.tensor([where.get(int(r), -1) for r in torch.as_tensor(rows).reshape(-1).tolist()],
                            dtype=torch.long)

    def any(self) -> bool:
        return bool(self.masks.any())


@dataclass
class StageContext:
    """What every stage receives besides its data.

    ``generator`` is the run's seeded ``torch.Generator`` (CPU): draw all randomness from it.
    ``device`` is where models run. ``variants`` is how many new images to make per source image.
    ``options`` holds the method options the user set (``--set``), already typed by the method's
    ``Config``; read one with :meth:`GeneratorMethod.option`.
    ``pool`` is the :class:`~lagaug.ImageSet` the batch was drawn from: the run's current training
    images, real and synthetic (check ``pool.synthetic``); for ``lagaug sample``, the given images
    (not the unlabelled pool ``fit`` pre-trains on) — methods that mix images draw partners from
    it — and ``batch_index`` the pool rows of the encoded batch, in batch order. ``probs`` holds
    the current classifier ensemble's mean class probabilities for every pool row ``(P, K)``, or
    ``None`` outside the loop. ``Latents.source`` and ``Synthesis.source`` are pool rows.
    ``classify`` maps images ``(N, C, H, W)`` in ``[0, 1]`` to class probabilities ``(N, K)`` under
    a classifier that did not see them (in the loop: the current iteration's ensemble, its
    members' mean), or is ``None``; the core's ``quality`` plugin scores every synthetic image's
    label fidelity with it. ``gate`` holds the quality gate's settings
    (:class:`lagaug.core.defaults.quality.GateConfig`) when the user switched it on, else ``None``.

    Regions (:mod:`lagaug.core.regions`): ``region_source`` says how the ``lagaug_find_region``
    stage finds where each image's class evidence lies (``auto``, ``mask``, ``anomaly``,
    ``saliency`` or ``none``), ``normal_classes`` which classes are defect-free (no region),
    ``anomaly`` a fitted :class:`~lagaug.core.regions.anomaly.AnomalyModel` (or ``None``), and
    ``regions`` the :class:`Regions` found for the batch, set before ``lagaug_encode`` runs: a method
    keeps them (``GeneratorMethod.region_mode``). ``unlabeled`` is the run's unlabelled pool (an
    ``ImagePool`` or ``None``); a method that puts a region onto a defect-free background drawn
    from it registers the drawn images with :meth:`add_backgrounds`, whose rows follow the pool's
    in ``source`` (:meth:`source_set` names every row).
    ``ensemble`` is the iteration's trained classifier ensemble in the loop (``score``, ``select``
    and the stages after them see it; ``predict_proba(images)`` gives ``(M, N, K)``), else ``None``.
    ``plugin_options`` holds, per plugin that declares options (``lagaug_options``), its options
    with the user's ``--set PLUGIN.key=value`` applied: ``{plugin name: options dataclass}``.
    """

    generator: torch.Generator
    device: torch.device = torch.device("cpu")
    variants: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    iteration: int = 0
    progress: Progress = field(default_factory=lambda: Progress(quiet=True))
    pool: Any = None  # ImageSet | None
    batch_index: torch.Tensor | None = None
    probs: torch.Tensor | None = None
    classify: Any = None  # Callable[[Tensor], Tensor] | None
    gate: Any = None  # lagaug.core.defaults.quality.GateConfig | None
    region_source: str = "auto"
    normal_classes: list[int] | None = None
    anomaly: Any = None  # lagaug.core.regions.anomaly.AnomalyModel | None
    regions: "Regions | None" = None
    unlabeled: Any = None  # ImagePool | None
    backgrounds: Any = None  # ImageSet | None: drawn defect-free images; rows len(pool) + i in source
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, filled by synthesize

    def source_set(self) -> Any:
        """The image set every ``source`` row indexes: ``pool``, then the drawn ``backgrounds``."""
        if self.backgrounds is None or not len(self.backgrounds):
            return self.pool
        return self.pool.concat(self.backgrounds) if self.pool is not None else self.backgrounds

    def add_backgrounds(self, images: torch.Tensor, ids: list[str], label: int) -> torch.Tensor:
        """Register images ``(n, C, H, W)`` in ``[0, 1]`` drawn from outside the pool (e.g. the
        unlabelled pool) as sources; returns their rows in :meth:`source_set`."""
        from lagaug.core.data.dataset import ImageSet

        new = ImageSet(images=images, labels=torch.full((len(images),), int(label), dtype=torch.long),
                       class_names=list(self.pool.class_names), ids=list(ids))
        start = (0 if self.pool is None else len(self.pool)) + (0 if self.backgrounds is None else len(self.backgrounds))
        self.backgrounds = new if self.backgrounds is None else self.backgrounds.concat(new)
        return torch.arange(start, start + len(images))
    ensemble: Any = None  # lagaug.core.classifier.Ensemble | None
    plugin_options: dict[str, Any] = field(default_factory=dict)

    def batch_rows(self, n: int) -> torch.Tensor:
        """The pool rows of a batch of ``n`` images (``0 .. n-1`` when no pool was given)."""
        if self.batch_index is None:
            return torch.arange(n)
        if len(self.batch_index) != n:
            raise ValueError(f"batch_index has {len(self.batch_index)} rows but the batch has {n} images")
        return self.batch_index.to(torch.int64).cpu()


@dataclass
class FitContext:
    """What :meth:`GeneratorMethod.fit` receives: the seeded generator, the device, a progress
    reporter, an optional working directory for checkpoints (a resumed fit may find them there),
    and an optional validation set for checkpoint choice (never the test set)."""

    generator: torch.Generator
    device: torch.device = torch.device("cpu")
    progress: Progress = field(default_factory=lambda: Progress(quiet=True))
    work_dir: Path | None = None
    val: Any = None  # ImageSet | None
