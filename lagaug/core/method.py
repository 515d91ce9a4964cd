"""The contract every generator method implements, and how a fitted generator is saved.

A method is a class registered through the ``lagaug_register_methods`` hook. The loop calls its
stages through the plugin hooks (so other plugins may wrap them); the default hook implementations
delegate to the methods below:

* :meth:`GeneratorMethod.fit` trains the generator on real training images (and an optional
  unlabelled pool);
* :meth:`GeneratorMethod.encode` maps images to :class:`Latents`;
* :meth:`GeneratorMethod.resample` returns new latents (``ctx.variants`` per source row);
* :meth:`GeneratorMethod.decode` turns latents into a :class:`Synthesis`.

A fitted generator saves as a directory: ``generator.json`` (method name, method version, config,
image shape, class names) and ``weights.safetensors``. Never pickle.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from lagaug.core.config import config_from_dict, config_to_dict
from lagaug.core.errors import CheckpointError, ConfigError, DataError
from lagaug.core.progress import Progress

GENERATOR_JSON = "generator.json"
GENERATOR_WEIGHTS = "weights.safetensors"


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
    are set by :func:`lagaug.core.generators.synthesize` when it keeps the images the
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
    (:class:`lagaug.core.quality.GateConfig`) when the user switched it on, else ``None``.

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
    gate: Any = None  # lagaug.core.quality.GateConfig | None
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


class GeneratorMethod:
    """Base class of generator methods. Subclasses set the class attributes and the stages."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    version: ClassVar[int] = 1
    Config: ClassVar[type] = object
    min_image_size: ClassVar[int] = 4
    #: what happens to a region the ``lagaug_find_region`` stage found (``ctx.regions``): ``"blend"``
    #: — the core puts the region's source pixels back into each decoded image (feathered); ``"self"``
    #: — the method keeps it in its own stages (e.g. ``vqvae2`` keeps the codes under it); ``"ignore"``
    region_mode: ClassVar[str] = "blend"
    #: the ``Config`` keys only the stages read (through ``ctx.options``), never ``fit``: a saved
    #: generator takes them at sampling time (``--set`` of any other key on a saved generator is
    #: refused unless it repeats the fitted value), and generators whose configurations differ only in
    #: them are the same fit (``compare`` fits it once for all its arms). ``None``: not declared —
    #: every key is handed to the stages, and every key counts as a fit-time key for sharing fits
    stage_options: ClassVar[frozenset[str] | None] = None

    def __init__(self, config: Any, image_shape: tuple[int, int, int], class_names: list[str]):
        self.config = config
        self.image_shape = tuple(int(v) for v in image_shape)
        self.class_names = list(class_names)
        self.check_image_shape(self.image_shape)

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def default_config(cls) -> Any:
        return cls.Config()

    @classmethod
    def check_image_shape(cls, image_shape: tuple[int, int, int]) -> None:
        """Raise :class:`ConfigError` when images are too small for this method."""
        _, h, w = image_shape
        if min(h, w) < cls.min_image_size:
            raise ConfigError(
                f"method {cls.name!r} needs images of at least {cls.min_image_size}x"
                f"{cls.min_image_size} pixels, got {h}x{w}; raise --image-size"
            )

    @classmethod
    def check_train(cls, config: Any, train: Any) -> None:
        """Raise a one-line :class:`DataError` / :class:`ConfigError` when ``train`` (an
        ImageSet) cannot be fitted with ``config`` (e.g. a class with too few images). Called
        before any work starts. Override; the default accepts anything."""

    @classmethod
    def check_options(cls, config: Any, image_shape: tuple[int, int, int], class_names: list[str]) -> None:
        """Raise a one-line :class:`ConfigError` when ``config`` cannot work for images of
        ``image_shape`` ``(C, H, W)`` and these classes (e.g. a region outside the latent map, a
        class name that does not exist). Called by ``augment``, ``compare``, ``fit`` and ``sample``
        before any work starts — with the saved generator's config and the ``--set`` values on
        top for a saved one. Override; the default accepts anything."""

    def usable_pool(self, unlabeled: Any) -> Any:
        """``unlabeled`` (the pool ``fit`` was given) when it can pre-train this generator: ``None``
        for no pool or an empty one, a one-line :class:`DataError` when its images differ from
        the training images in channels or size."""
        if unlabeled is None:
            return None
        if unlabeled.channels != self.image_shape[0] or tuple(unlabeled.image_size) != tuple(self.image_shape[1:]):
            raise DataError(
                f"unlabeled pool: images are {unlabeled.channels}x{tuple(unlabeled.image_size)}, the training "
                f"images {tuple(self.image_shape)}; give both the same channels and size")
        return unlabeled if len(unlabeled) else None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def option(self, ctx: StageContext, key: str) -> Any:
        """A stage option: the value the user set (``ctx.options``), else this method's config."""
        if key in ctx.options:
            return ctx.options[key]
        return getattr(self.config, key)

    # -- stages --------------------------------------------------------------------------------
    def fit(self, train: Any, ctx: FitContext, unlabeled: Any = None) -> dict[str, Any]:
        """Train on ``train`` (an ImageSet) and the optional ``unlabeled`` pool; return metrics."""
        raise NotImplementedError

    def encode(self, images: torch.Tensor, soft: torch.Tensor, ctx: StageContext) -> Latents:
        """Map ``images`` (float32 ``(N, C, H, W)`` in [0, 1]) with soft labels ``soft`` ``(N, K)``
        into this method's latent space.

        Return :class:`Latents` with ``N`` rows: ``codes`` (method-specific tensors, first
        dimension ``N``), ``soft`` as given, and ``source=ctx.batch_rows(N)`` (the pool rows of
        the batch), so provenance survives ``resample``. Draw any randomness from
        ``ctx.generator``; run models on ``ctx.device``.
        """
        raise NotImplementedError

    def resample(self, latents: Latents, ctx: StageContext) -> Latents:
        """New latents from encoded ones: ``ctx.variants`` rows per row of ``latents``, each row's
        variants consecutive (``latents.repeat(ctx.variants)`` gives that layout, sources and
        weights included).

        Read sampling options with :meth:`option` (``ctx.options`` over the config). All
        randomness comes from ``ctx.generator``: the same generator state gives the same rows.
        A mixing method may add sources (rows of ``ctx.pool``) with their weights.
        """
        raise NotImplementedError

    def decode(self, latents: Latents, ctx: StageContext) -> Synthesis:
        """Turn ``latents`` into images: a :class:`Synthesis` with float32 ``images``
        ``(N, C, H, W)`` in [0, 1] (finite), ``soft`` labels, ``source`` and ``weight`` carried
        from ``latents``, and optional per-image ``metrics`` (``(N,)`` tensors) for the manifest.
        Run models on ``ctx.device``; a decoder that draws noise draws it from ``ctx.generator``.
        """
        raise NotImplementedError

    # -- foreign checkpoints -------------------------------------------------------------------
    @classmethod
    def import_checkpoint(cls, files: dict[str, str], *, out: str | os.PathLike, class_names: list[str],
                          image_size: int | None = None, **options: Any) -> "GeneratorMethod":
        """Build (and save to ``out``) a generator from another implementation's checkpoint files
        (``files``: role -> path; ``"checkpoint"`` is the file given without a role). Methods that
        can read a foreign format override this; the default refuses."""
        raise ConfigError(f"method {cls.name!r} cannot import checkpoints; methods that can: vqvae2, stylegan2")

    def describe_import(self) -> str:
        """A few words on what an imported generator holds (for ``lagaug import-checkpoint``)."""
        return f"method version {self.version}"

    # -- persistence ---------------------------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        """The networks whose state is saved, by name. Override."""
        return {}

    def extra_state(self) -> dict[str, Any]:
        """JSON-serialisable state besides the weights (e.g. a chosen checkpoint). Override."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    @classmethod
    def upgrade_config(cls, config: dict[str, Any], saved_version: int) -> dict[str, Any]:
        """The saved configuration of a generator written by method version ``saved_version``, with
        the values that version used for options it did not yet have (override when a new option's
        default differs from what older generators did). Default: unchanged."""
        return config

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for mod_name, module in self.modules().items():
            for key, value in module.state_dict().items():
                out[f"{mod_name}.{key}"] = value.detach().cpu().contiguous()
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], *, source: str) -> None:
        for mod_name, module in self.modules().items():
            prefix = mod_name + "."
            state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            expected = module.state_dict()
            missing = sorted(set(expected) - set(state))
            if missing:
                raise CheckpointError(f"{source}: missing weight {prefix + missing[0]}")
            for key, value in state.items():
                if key in expected and expected[key].shape != value.shape:
                    raise CheckpointError(
                        f"{source}: weight {prefix + key} has shape {tuple(value.shape)}, "
                        f"expected {tuple(expected[key].shape)}"
                    )
            module.load_state_dict(state, strict=True)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``generator.json`` + ``weights.safetensors`` atomically into ``directory``."""
        from lagaug import __version__
        from lagaug.core.store import atomic_save_safetensors, atomic_write_text

        directory = Path(directory)
        atomic_save_safetensors(directory / GENERATOR_WEIGHTS, self.state_tensors())
        meta = {
            "method": self.name,
            "method_version": self.version,
            "lagaug_version": __version__,
            "config": config_to_dict(self.config),
            "image_shape": list(self.image_shape),
            "class_names": self.class_names,
            "extra": self.extra_state(),
        }
        atomic_write_text(directory / GENERATOR_JSON, json.dumps(meta, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "GeneratorMethod":
        """Load a generator saved by :meth:`save` (checks method name and version)."""
        from safetensors.torch import load_file

        directory = Path(directory)
        meta = read_generator_meta(directory)
        path = directory / GENERATOR_JSON
        if meta["method"] != cls.name:
            raise CheckpointError(
                f"{directory}: this generator was saved by method {meta['method']!r}, not {cls.name!r}"
            )
        if meta["method_version"] > cls.version:
            raise CheckpointError(
                f"{directory}: saved by a newer version of method {cls.name!r} "
                f"(v{meta['method_version']}, this lagaug reads up to v{cls.version}); upgrade lagaug"
            )
        try:
            saved = cls.upgrade_config(dict(meta["config"]), meta["method_version"])
            config = config_from_dict(cls.Config, saved, source=f"{path}: config",
                                      label=f"{path}: config key {{key}}")
        except ConfigError as exc:  # worded as an error in the file, not in --set
            message = str(exc).replace("; valid keys", " (a newer lagaug wrote it?); valid keys")
            if str(path) not in message:
                message = f"{path}: config {message.removeprefix('--set ')}"
            raise CheckpointError(message) from None
        method = cls(config, tuple(meta["image_shape"]), meta["class_names"])
        weights = directory / GENERATOR_WEIGHTS
        try:
            tensors = load_file(str(weights))
        except Exception as exc:  # safetensors raises several types
            raise CheckpointError(f"{weights}: cannot read weights ({exc})") from None
        method.load_state_tensors(tensors, source=str(weights))
        method.load_extra_state(meta.get("extra", {}))
        return method


def read_generator_meta(directory: str | os.PathLike) -> dict[str, Any]:
    """Read and validate ``generator.json`` of a saved generator directory.

    Every problem is a one-line :class:`CheckpointError` that names the file; a generator saved by
    a newer lagaug is reported with a warning (it may still load)."""
    import warnings

    path = Path(directory) / GENERATOR_JSON
    if not path.is_file():
        raise CheckpointError(f"{directory}: not a saved generator (no {GENERATOR_JSON}); use `lagaug fit` to make one")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable ({exc}); save the generator again") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    for key in ("method", "config", "image_shape", "class_names"):
        if key not in meta:
            raise CheckpointError(f"{path}: missing key {key!r}")
    version = meta.get("method_version", 1)
    checks = (
        ("method", isinstance(meta["method"], str) and meta["method"], "a method name"),
        ("method_version", isinstance(version, int) and not isinstance(version, bool) and version >= 1,
         "a positive whole number"),
        ("config", isinstance(meta["config"], dict), "an object of config keys"),
        ("image_shape", isinstance(meta["image_shape"], list) and len(meta["image_shape"]) == 3
         and all(isinstance(v, int) and v > 0 for v in meta["image_shape"]), "[channels, height, width]"),
        ("class_names", isinstance(meta["class_names"], list) and meta["class_names"]
         and all(isinstance(v, str) for v in meta["class_names"]), "a list of class names"),
        ("extra", isinstance(meta.get("extra", {}), dict), "an object"),
    )
    for key, ok, expected in checks:
        if not ok:
            value = meta.get(key, version if key == "method_version" else None)
            raise CheckpointError(f"{path}: {key} must be {expected}, got {value!r}")
    meta["method_version"] = version
    saved_by = str(meta.get("lagaug_version", ""))
    if saved_by and _newer(saved_by):
        from lagaug import __version__

        warnings.warn(f"{path}: saved by lagaug {saved_by}, newer than this lagaug {__version__}; "
                      "upgrade lagaug if it does not load as expected", stacklevel=2)
    return meta


def _newer(version: str) -> bool:
    """Whether lagaug ``version`` is newer than this one (numeric parts compared)."""
    from lagaug import __version__

    def parts(v: str) -> tuple[int, ...]:
        out = []
        for p in v.split("."):
            digits = "".join(ch for ch in p if ch.isdigit())
            out.append(int(digits) if digits else 0)
        return tuple(out)

    return parts(version) > parts(__version__)
