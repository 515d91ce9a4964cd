"""How the classifier ensemble is trained: :class:`EnsembleConfig`, the presets, and one resolver.

:func:`resolve_ensemble_config` is the one place that turns a preset name plus overrides (from the
CLI, a config file or Python) into a checked :class:`EnsembleConfig`; every bad value is a one-line
:class:`~lagaug.core.errors.ConfigError` that names the option. :data:`PRESETS` holds only the
values a preset changes from the :class:`EnsembleConfig` defaults, so help text can be generated
from :func:`preset_values`.

Settings named ``auto`` are decided per data set when training starts (and recorded in each
member's history): ``balance`` by the training set's class counts, ``aug`` by whether the data's
labels survive flips and 90-degree rotations (:func:`resolve_classifier_aug`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

from lagaug.core.errors import ConfigError

OPTIMIZERS = ("adamw", "sgd")
BALANCE_CHOICES = ("auto", "sampler", "sqrt", "loss", "none")
AUG_CHOICES = ("auto", "none", "light", "dihedral")
SCHEDULES = ("cosine", "constant")
SELECT_CHOICES = ("auc+f1", "auc", "f1", "loss")
IMBALANCE_RATIO = 1.5  # ``balance="auto"`` balances when the largest class has this many times the smallest's images


@dataclass
class EnsembleConfig:
    """How the ensemble is built and trained. The defaults are the ``cpu`` preset.

    :ivar classifier: timm model name (random weights; lagaug's ``garay_cnn*`` are registered too).
    :ivar members: classifiers in the ensemble, each trained from its own seed.
    :ivar epochs: training epochs per member.
    :ivar batch_size: images per optimisation step.
    :ivar min_epoch_size: an epoch draws at least this many training images (repeating the set), so
        that a set of 30 images still gets several optimisation steps per epoch; 0 = one pass.
    :ivar optimizer: ``adamw`` or ``sgd``.
    :ivar lr: peak learning rate.
    :ivar momentum: SGD's momentum (unused by AdamW).
    :ivar weight_decay: decoupled (AdamW) or L2 (SGD) weight decay.
    :ivar warmup_epochs: the learning rate rises linearly from ``lr / 10`` to ``lr`` over these epochs
        (at most ``epochs - 1``)...
    :ivar schedule: ...then stays (``constant``) or falls along a half cosine to ``lr / 100`` (``cosine``).
    :ivar balance: ``sampler`` draws every class equally often per epoch; ``sqrt`` draws each class in
        proportion to the square root of its count (200:20 images become 76%:24% of the draws
        instead of 91%:9%); ``loss`` weights the loss by inverse class frequency; ``none``;
        ``auto`` = ``sqrt`` when the training set is imbalanced (largest class at least
        :data:`IMBALANCE_RATIO` times the smallest), else ``none``. Full balancing moves the
        decision threshold towards the rare class, which costs precision when the test set is as
        imbalanced as the training set; the square root was the better compromise in
        ``benchmarks/bench_classifiers.py`` (docs/benchmarks.md).
    :ivar aug: augmentation of the training images for the classifier: ``none``; ``light`` (shifts of
        up to 1/16 of the side, the edge repeated); ``dihedral`` (``light`` plus flips and 90-degree
        rotations, for data whose labels do not depend on orientation); ``auto`` (see
        :func:`resolve_classifier_aug`).
    :ivar bn_recal: before each evaluation, re-estimate BatchNorm running statistics on the training
        images (unaugmented, in the class proportions the member trains with; at most 128 of them)
        instead of keeping the running averages of the last few batches.
    :ivar select_best: keep the epoch with the best validation score (else the last epoch).
    :ivar select: the validation score: ``auc+f1`` (mean of AUC and macro-F1), ``auc``, ``f1``, or
        ``loss`` (lowest cross-entropy). Ties go to the later epoch.
    """

    classifier: str = "test_resnet"
    members: int = 5
    epochs: int = 30
    # batches of 64 at lr 4e-3 (4 steps per epoch below 256 images): on a CPU a step of 64 costs
    # little more than one of 32; against 32 at 2e-3 a member took 40% less time at the same test
    # AUC and macro-F1 within the noise of 16 seeds (docs/benchmarks.md, "The main job's wall time")
    batch_size: int = 64
    min_epoch_size: int = 256
    optimizer: str = "adamw"
    lr: float = 4e-3
    momentum: float = 0.9
    weight_decay: float = 0.05
    warmup_epochs: int = 3
    schedule: str = "cosine"
    balance: str = "auto"
    aug: str = "auto"
    bn_recal: bool = True
    select_best: bool = True
    select: str = "auc+f1"


PRESETS: dict[str, dict[str, Any]] = {
    # the default: fields as in EnsembleConfig
    "cpu": {},
    # Høj & Møgelmoose's protocol: 20 ConvNeXt-tiny, 150 epochs, SGD lr 0.001 momentum 0.9, batch 32.
    # The paper states no schedule, augmentation or resampling: none here (its data was balanced).
    "paper": dict(classifier="convnext_tiny", members=20, epochs=150, optimizer="sgd", lr=1e-3,
                  momentum=0.9, weight_decay=0.0, batch_size=32, min_epoch_size=0, warmup_epochs=0,
                  schedule="constant", aug="none"),
}

_CHOICES = {"optimizer": OPTIMIZERS, "balance": BALANCE_CHOICES, "aug": AUG_CHOICES,
            "schedule": SCHEDULES, "select": SELECT_CHOICES}
_KINDS = {"int": int, "float": float, "str": str, "bool": bool}  # field annotations are strings here
_AT_LEAST = {"members": 1, "epochs": 1, "batch_size": 1, "min_epoch_size": 0, "warmup_epochs": 0}


def preset_values(name: str) -> dict[str, Any]:
    """Every field of preset ``name`` with the value it takes (for help text and records)."""
    return dataclasses.asdict(preset(name))


def preset(name: str, **overrides) -> EnsembleConfig:
    """Preset ``name`` with ``overrides`` applied and checked (see :func:`resolve_ensemble_config`)."""
    return resolve_ensemble_config(name, overrides)


def _coerce(key: str, value: Any, kind: type, source: str) -> Any:
    """``value`` (possibly a CLI string) as ``kind``; a ConfigError names ``source key``."""
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            low = str(value).strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            out = float(value)
            if not math.isfinite(out):
                raise ValueError
            return out
        return str(value).strip()
    except (TypeError, ValueError):
        raise ConfigError(f"{source} {key}: expected {kind.__name__}, got {value!r}") from None


def _check(cfg: EnsembleConfig, source: str) -> None:
    for key, low in _AT_LEAST.items():
        if getattr(cfg, key) < low:
            raise ConfigError(f"{source} {key} must be at least {low}, got {getattr(cfg, key)}")
    for key, choices in _CHOICES.items():
        if getattr(cfg, key) not in choices:
            raise ConfigError(f"{source} {key} must be one of {', '.join(choices)}, got {getattr(cfg, key)!r}")
    if not cfg.lr > 0:
        raise ConfigError(f"{source} lr must be positive, got {cfg.lr}")
    for key in ("momentum", "weight_decay"):
        if getattr(cfg, key) < 0:
            raise ConfigError(f"{source} {key} must not be negative, got {getattr(cfg, key)}")
    if not cfg.classifier:
        raise ConfigError(f"{source} classifier: give a timm model name")


def resolve_ensemble_config(preset: str = "cpu", overrides: Mapping[str, Any] | None = None, *,
                            source: str = "ensemble option") -> EnsembleConfig:
    """Preset ``preset`` with ``overrides`` (field name -> value or CLI string), checked.

    ``source`` names where the overrides came from in error messages (e.g. ``"--classifier-set"``).
    Raises :class:`ConfigError` for an unknown preset, an unknown key (listing the valid ones) or
    a bad value. Whether timm knows ``classifier`` is checked by
    :func:`lagaug.core.classifier.check_classifier_name` (it imports timm).
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown ensemble preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    kinds = {f.name: _KINDS[f.type] for f in dataclasses.fields(EnsembleConfig)}
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(kinds))
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}; valid keys: {', '.join(kinds)}")
    values = {k: _coerce(k, v, kinds[k], source) for k, v in overrides.items()}
    cfg = replace(EnsembleConfig(**PRESETS[preset]), **values)
    _check(cfg, source)
    return cfg


def steps_per_epoch(n_images: int, cfg: EnsembleConfig) -> int:
    """Optimisation steps a member takes per epoch on ``n_images`` training images."""
    return math.ceil(max(n_images, cfg.min_epoch_size) / cfg.batch_size)


def resolve_classifier_aug(name: str, orientation_invariant: bool | None) -> str:
    """The augmentation to use: ``name``, or for ``auto`` ``dihedral`` when the data's labels are
    known not to depend on orientation (``orientation_invariant=True``: surfaces, textures) and
    ``light`` otherwise (digits, text, unknown data: shifts only)."""
    if name not in AUG_CHOICES:
        raise ConfigError(f"--classifier-aug must be one of {', '.join(AUG_CHOICES)}, got {name!r}")
    if name != "auto":
        return name
    return "dihedral" if orientation_invariant is True else "light"
