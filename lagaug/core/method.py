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
from lagaug.core.errors import CheckpointError, ConfigError
from lagaug.core.progress import Progress

GENERATOR_JSON = "generator.json"
GENERATOR_WEIGHTS = "weights.safetensors"


@dataclass
class Latents:
    """Latent codes of a batch.

    ``codes`` holds method-specific tensors whose first dimension is the row count N.
    ``source[i]`` is the index, in the batch given to ``encode``, of the image row i came from.
    ``soft`` holds the soft label of every row ``(N, K)``.
    """

    codes: dict[str, torch.Tensor]
    source: torch.Tensor
    soft: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)

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
        )


@dataclass
class Synthesis:
    """Decoded images: float32 ``(N, C, H, W)`` in ``[0, 1]``, soft labels ``(N, K)``, and
    ``source`` (row index in the encoded batch). ``metrics`` holds optional per-image measurements
    (tensors of shape ``(N,)``) that the run records, e.g. how much structure was kept."""

    images: torch.Tensor
    soft: torch.Tensor
    source: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, keep: torch.Tensor) -> "Synthesis":
        return Synthesis(
            images=self.images[keep],
            soft=self.soft[keep],
            source=self.source[keep],
            metrics={k: v[keep] for k, v in self.metrics.items()},
        )


@dataclass
class StageContext:
    """What every stage receives besides its data.

    ``generator`` is the run's seeded ``torch.Generator`` (CPU): draw all randomness from it.
    ``device`` is where models run. ``variants`` is how many new images to make per source image.
    ``options`` holds method-specific sampling options (from ``--set``), e.g. a temperature.
    """

    generator: torch.Generator
    device: torch.device = torch.device("cpu")
    variants: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    iteration: int = 0
    progress: Progress = field(default_factory=lambda: Progress(quiet=True))


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

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    # -- stages --------------------------------------------------------------------------------
    def fit(self, train: Any, ctx: FitContext, unlabeled: Any = None) -> dict[str, Any]:
        """Train on ``train`` (an ImageSet) and the optional ``unlabeled`` pool; return metrics."""
        raise NotImplementedError

    def encode(self, images: torch.Tensor, soft: torch.Tensor, ctx: StageContext) -> Latents:
        raise NotImplementedError

    def resample(self, latents: Latents, ctx: StageContext) -> Latents:
        raise NotImplementedError

    def decode(self, latents: Latents, ctx: StageContext) -> Synthesis:
        raise NotImplementedError

    # -- persistence ---------------------------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        """The networks whose state is saved, by name. Override."""
        return {}

    def extra_state(self) -> dict[str, Any]:
        """JSON-serialisable state besides the weights (e.g. a chosen checkpoint). Override."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

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
        from safetensors.torch import save_file

        from lagaug import __version__
        from lagaug.core.store import atomic_write_text

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / (GENERATOR_WEIGHTS + ".tmp")
        save_file(self.state_tensors(), str(tmp))
        os.replace(tmp, directory / GENERATOR_WEIGHTS)
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
        if meta["method"] != cls.name:
            raise CheckpointError(
                f"{directory}: this generator was saved by method {meta['method']!r}, not {cls.name!r}"
            )
        if int(meta.get("method_version", 1)) > cls.version:
            raise CheckpointError(
                f"{directory}: saved by a newer version of method {cls.name!r} "
                f"(v{meta['method_version']}, this lagaug reads up to v{cls.version}); upgrade lagaug"
            )
        config = config_from_dict(cls.Config, meta["config"], source=str(directory / GENERATOR_JSON))
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
    """Read and validate ``generator.json`` of a saved generator directory."""
    path = Path(directory) / GENERATOR_JSON
    if not path.is_file():
        raise CheckpointError(f"{directory}: not a saved generator (no {GENERATOR_JSON}); use `lagaug fit` to make one")
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable ({exc})") from None
    for key in ("method", "config", "image_shape", "class_names"):
        if key not in meta:
            raise CheckpointError(f"{path}: missing key {key!r}")
    return meta
