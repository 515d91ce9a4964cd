"""The contract every generator method implements, and how a fitted generator is saved.

A method is a class registered through the ``lagaug_register_methods`` hook. The loop calls its
stages through the plugin hooks (so other plugins may wrap them); the default hook implementations
delegate to the methods below:

* :meth:`GeneratorMethod.fit` trains the generator on real training images (and an optional
  unlabelled pool);
* :meth:`GeneratorMethod.encode` maps images to :class:`Latents`;
* :meth:`GeneratorMethod.resample` returns new latents (``ctx.variants`` per source row);
* :meth:`GeneratorMethod.decode` turns latents into a :class:`Synthesis`.

What flows between the stages (:class:`Latents`, :class:`Synthesis`, :class:`Regions`,
:class:`StageContext`, :class:`FitContext`) lives in :mod:`lagaug.core.contract.batch` and is re-exported
here. A fitted generator saves as a directory: ``generator.json`` (method name, method version, config,
image shape, class names) and ``weights.safetensors``. Never pickle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import torch

from lagaug.core.config import config_from_dict, config_to_dict
from lagaug.core.contract.batch import FitContext, Latents, Regions, StageContext, Synthesis, as_sources  # noqa: F401
from lagaug.core.errors import CheckpointError, ConfigError, DataError
from lagaug.core.store.generator import GENERATOR_JSON, GENERATOR_WEIGHTS, read_generator_meta  # noqa: F401


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
        #: JSON-serialisable facts of the fit (a chosen checkpoint, the precision used), saved with
        #: the weights by the default :meth:`extra_state` and restored by :meth:`load_extra_state`
        self.state: dict[str, Any] = {}

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
        """JSON-serialisable state besides the weights, saved in ``generator.json``: by default
        :attr:`state`. Override to save something else."""
        return dict(self.state)

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned (by default into :attr:`state`)."""
        self.state = dict(state or {})

    def to_device(self, device: str | torch.device) -> None:
        """Every network of :meth:`modules` on ``device``, in eval mode: ready to sample."""
        for module in self.modules().values():
            module.to(device).eval()

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
        from lagaug.core.store.atomic import atomic_save_safetensors, atomic_write_text

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
