"""What ``lagaug augment`` is told: :class:`AugmentConfig`, saved as the run's ``config.json``
and checked before anything is written (:meth:`AugmentConfig.validate`). The loop that carries
it out is :mod:`lagaug.core.run.loop`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lagaug.core.classifier.config import EnsembleConfig, resolve_ensemble_config
from lagaug.core.config import check_at_least
from lagaug.core.defaults.quality import GateConfig
from lagaug.core.executor import check_executor_options


@dataclass
class AugmentConfig:
    """Everything ``lagaug augment`` is told. Saved as the run's ``config.json``.

    ``seed`` drives every random choice of the run (classifier and generator initialisation,
    sampling); ``split_seed`` only how validation/test images are carved from the data (and the
    embedded data itself), so changing ``seed`` never moves the test split. ``executor`` (``local``
    or ``ray``, with ``ray_address`` and ``ray_gpus``) only says where the members train: a run may
    resume under another executor and gives the same figures.
    """

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
    split_seed: int = 0
    preset: str = "cpu"
    ensemble: int | None = None
    epochs: int | None = None
    classifier: str | None = None
    classifier_aug: str = "auto"
    classifier_set: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    generator: str | None = None
    set: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    out: str = "lagaug-runs/augment"
    bad_images: str = "warn"
    quality_gate: bool = False
    gate_distance: float = 0.01
    region_source: str = "auto"
    normal_classes: list[str] | None = None
    refit: bool = False  # fit the generator and train the baseline again instead of taking them from the cache

    executor: str = "local"
    ray_address: str | None = None
    ray_gpus: float | None = None

    def gate(self) -> GateConfig | None:
        """The quality gate's settings, or ``None`` when it is off."""
        return GateConfig(min_distance=self.gate_distance) if self.quality_gate else None

    def ensemble_config(self) -> EnsembleConfig:
        """The preset with ``--ensemble``, ``--epochs``, ``--classifier``, ``--classifier-aug`` and
        ``--classifier-set`` applied (one resolver: :func:`lagaug.core.classifier.resolve_ensemble_config`)."""
        overrides = {k: v for k, v in (("members", self.ensemble), ("epochs", self.epochs),
                                       ("classifier", self.classifier)) if v is not None}
        overrides["aug"] = self.classifier_aug
        return resolve_ensemble_config(self.preset, {**overrides, **self.classifier_set}, source="--classifier-set")

    def validate(self) -> None:
        check_at_least((("--hard-k", self.hard_k, 1), ("--iterations", self.iterations, 0),
                        ("--variants", self.variants, 1), ("--image-size", self.image_size, 8),
                        ("--seed", self.seed, 0), ("--split-seed", self.split_seed, 0),
                        ("--ensemble", self.ensemble, 1), ("--epochs", self.epochs, 1)))
        GateConfig(min_distance=self.gate_distance)  # checks --gate-distance
        from lagaug.core.regions.stage import check_region_source

        check_region_source(self.region_source)
        check_executor_options(self.executor, self.ray_address, self.ray_gpus)
