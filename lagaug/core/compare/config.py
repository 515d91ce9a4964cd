"""What ``lagaug compare`` is told: :class:`CompareConfig`, validated before any work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lagaug.core.classifier.classic import ClassicConfig
from lagaug.core.classifier.config import EnsembleConfig, resolve_ensemble_config
from lagaug.core.compare.arms import CLASSIC, DUPLICATE, GATE, PSEUDO, REAL, Arm, Source, resolve_plan  # noqa: F401  (re-exported)
from lagaug.core.config import check_at_least, config_from_dict
from lagaug.core.errors import ConfigError
from lagaug.core.executor import check_executor_options

METRICS = ("f1", "accuracy", "auc")
METRIC_NAMES = {"f1": "macro-F1", "accuracy": "accuracy", "auc": "AUC"}
PRIMARY_METRIC = "f1"


@dataclass
class CompareConfig:
    """Everything ``lagaug compare`` is told. Saved as the run's ``config.json``.

    :ivar method: the generator method of the ``METHOD`` arms (any registered plugin); ``--set``
        applies to it (and to its variants). ``None``: the arms name their methods themselves.
    :ivar arms: arm names (:mod:`lagaug.core.compare.arms`): ``real``, ``classic``, ``duplicate``,
        ``pseudo-label``, and for a registered method or a ``variants`` label ``L``: ``L``,
        ``classic+L`` and ``L+gate`` (L's images less those the quality gate drops, judged by a
        reference classifier trained on the repeat's real images); ``method`` stands for
        ``method``'s name. ``None`` = ``real``, ``classic``, METHOD, ``classic+``METHOD,
        ``duplicate`` and every variant's own arm.
    :ivar variants: named generative recipes, label -> ``{"method": NAME, "set": {key: value},
        "classes": [class, ...]}`` (``--arm LABEL=METHOD:key=value,...``; ``classes``: synthesize
        only from images of these classes). Arms of one method whose fit-time options agree share
        one generator fit per repeat (a method's ``stage_options`` may differ between them).
    :ivar pseudo_threshold: the ``pseudo-label`` arm: pool images whose ensemble confidence (the
        largest mean class probability) is at least this join training with their predicted label.
    :ivar pseudo_cap: at most this many pool images per class join (the most confident);
        ``None``: ``ceil(synthetic_per_image x real training images / classes)``, so that the arm
        adds about as many images as a METHOD arm.
    :ivar pseudo_rounds: 2: retrain on the real images plus round 1's pseudo-labels, label the pool
        again, and train the arm on round 2's.
    :ivar region_source: how the region a method keeps (an image's defect) is found
        (:mod:`lagaug.core.regions`): ``auto``, ``mask``, ``anomaly``, ``saliency`` (the repeat's
        reference classifier) or ``none``; ``normal_classes``: the defect-free classes (``None``: the
        data's own, else classes named ok / good / normal).
    :ivar refit: fit generators again instead of taking a cached fit of the same inputs
        (:mod:`lagaug.core.store.cache`); repeats with the same training draw share one fit either way.
    :ivar gate_distance: the gate's near-duplicate threshold (mean absolute difference to the source).
    :ivar repeats: how many repeats (each: own training subset if ``train_size``, own seeds).
    :ivar train_size: training images drawn per repeat from the source's training images
        (validation included); ``None`` = use the source's training split as it is.
    :ivar balanced: draw ``train_size`` with the same count per class (else proportionally).
    :ivar val_fraction: share of each class's training images carved off for validation (at least
        one per class with two or more images; 0 = no validation, the last epoch is kept).
    :ivar test_size: evaluate on a fixed class-balanced subset of this many test images.
    :ivar synthetic_per_image: synthetic images per real training image in the ``METHOD`` arms
        (fractions allowed: 0.5 makes one for every other image); the duplicate arm adds as many.
    :ivar classic: :class:`~lagaug.core.classifier.classic.ClassicConfig` overrides (rotation, shift_x, ...).
    :ivar ensemble: :class:`~lagaug.core.classifier.EnsembleConfig` overrides on top of ``preset``.
    :ivar budget: ``epochs`` — every arm trains ``epochs`` passes over its own training set (so arms
        with extra images also get more optimisation steps; the duplicate arm controls for that);
        ``steps`` — every arm gets the optimisation steps of ``epochs`` passes over the largest arm.
    :ivar set: method config overrides (``--set``), also passed to its stages as typed options.
    :ivar generator: a generator saved by ``lagaug fit`` (e.g. trained once on a large unlabelled
        source set, as DAPPER does) used by every repeat instead of fitting one per repeat.
    :ivar generator_val: let the generator see the validation images (for its own early stopping
        and checkpoint choice); ``False`` fits it on the training images alone, for its full length.
    :ivar alpha: significance level; "significant" means Holm-corrected p < alpha.
    :ivar test: ``wilcoxon`` (exact signed-rank, the default; ``auto`` means the same) or
        ``permutation`` (sign-flip on the mean difference).
    :ivar seed: drives classifiers, generators and draws; ``split_seed`` only the data's own split
        (validation/test carved from the source), so the test set never moves with ``seed``.
    :ivar keep_checkpoints: keep the classifiers of finished cells.
    :ivar executor: where the cells train: ``local`` (this process) or ``ray`` (one Ray task per
        cell; ``ray_address`` ``None`` starts Ray here, ``auto`` / ``HOST:PORT`` / ``ray://…``
        joins a cluster; ``ray_gpus``: the share of a GPU each task asks for on ``cuda``). Not part
        of the run's identity: a run may resume under another executor, with the same figures.
    """

    method: str | None = None
    arms: list[str] | None = None
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
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
    generator: str | None = None
    generator_val: bool = True
    alpha: float = 0.05
    test: str = "wilcoxon"
    seed: int = 0
    split_seed: int = 0
    device: str = "cpu"
    out: str = "lagaug-runs/compare"
    bad_images: str = "warn"
    keep_checkpoints: bool = False
    threads: int | None = None
    gate_distance: float = 0.01
    pseudo_threshold: float = 0.9
    pseudo_cap: int | None = None
    pseudo_rounds: int = 1
    region_source: str = "auto"
    normal_classes: list[str] | None = None
    refit: bool = False
    executor: str = "local"
    ray_address: str | None = None
    ray_gpus: float | None = None

    def plan(self) -> tuple[list[Arm], dict[str, Source]]:
        """The arms in order and the sources they draw on (see
        :func:`lagaug.core.compare.arms.resolve_plan`)."""
        return resolve_plan(self.arms, self.method, self.variants, self.set)

    def resolved_arms(self) -> list[str]:
        """The arm names, in order (``method`` replaced by the method's name)."""
        return [a.name for a in self.plan()[0]]

    def classic_config(self) -> ClassicConfig:
        return config_from_dict(ClassicConfig, self.classic, source="--classic-set")

    def ensemble_config(self) -> EnsembleConfig:
        """The preset with ``ensemble`` overrides (one resolver for augment and compare)."""
        return resolve_ensemble_config(self.preset, self.ensemble, source="--classifier-set")

    def validate(self) -> None:
        """Raise :class:`ConfigError` for a bad value (everything checkable without data)."""
        check_at_least((("--repeats", self.repeats, 1), ("--image-size", self.image_size, 8), ("--seed", self.seed, 0),
                        ("--split-seed", self.split_seed, 0), ("--train-size", self.train_size, 2),
                        ("--test-size", self.test_size, 1), ("--pseudo-cap", self.pseudo_cap, 1)))
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if not self.synthetic_per_image > 0:
            raise ConfigError(f"--synthetic-per-image must be positive, got {self.synthetic_per_image}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"--alpha must be between 0 and 1, got {self.alpha}")
        if self.budget not in ("epochs", "steps"):
            raise ConfigError(f"--budget must be epochs or steps, got {self.budget!r}")
        if self.test not in ("auto", "wilcoxon", "permutation"):
            raise ConfigError(f"--test must be wilcoxon or permutation, got {self.test!r}")
        if not 0 < self.pseudo_threshold <= 1:
            raise ConfigError(f"--pseudo-threshold must be in (0, 1], got {self.pseudo_threshold}")
        if self.pseudo_rounds not in (1, 2):
            raise ConfigError(f"--pseudo-rounds must be 1 or 2, got {self.pseudo_rounds}")
        self.plan()
        from lagaug.core.defaults.quality import GateConfig

        GateConfig(min_distance=self.gate_distance)
        self.classic_config()
        self.ensemble_config()
        check_executor_options(self.executor, self.ray_address, self.ray_gpus)
        from lagaug.core.regions.stage import check_region_source

        check_region_source(self.region_source)
