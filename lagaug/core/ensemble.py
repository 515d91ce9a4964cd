"""The classifier ensemble (kept at this path for importers; the code is in :mod:`lagaug.core.classifier`)."""

from lagaug.core.classifier import (  # noqa: F401
    AUG_CHOICES,
    BALANCE_CHOICES,
    PRESETS,
    SELECT_CHOICES,
    Ensemble,
    EnsembleConfig,
    Transform,
    build_classifier,
    chance_warning,
    check_classifier_input,
    check_classifier_name,
    member_seeds,
    preset,
    preset_values,
    resolve_classifier_aug,
    resolve_ensemble_config,
    steps_per_epoch,
    train_ensemble,
    train_member,
)

__all__ = [
    "AUG_CHOICES", "BALANCE_CHOICES", "PRESETS", "SELECT_CHOICES", "Ensemble", "EnsembleConfig",
    "Transform", "build_classifier", "chance_warning", "check_classifier_input", "check_classifier_name",
    "member_seeds", "preset", "preset_values", "resolve_classifier_aug", "resolve_ensemble_config",
    "steps_per_epoch", "train_ensemble", "train_member",
]
