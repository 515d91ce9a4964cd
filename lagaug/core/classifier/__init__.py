"""The classifier ensemble that every lagaug figure comes from.

* :mod:`~lagaug.core.classifier.config` — :class:`EnsembleConfig`, :data:`PRESETS`,
  :func:`resolve_ensemble_config`, :func:`resolve_classifier_aug`;
* :mod:`~lagaug.core.classifier.augment` — label-preserving augmentation for the classifier;
* :mod:`~lagaug.core.classifier.models` — timm classifiers and early checks of name and image size;
* :mod:`~lagaug.core.classifier.training` — one member's training recipe;
* :mod:`~lagaug.core.classifier.ensemble` — :class:`Ensemble`, :func:`train_ensemble`;
* :mod:`~lagaug.core.classifier.chance` — :func:`chance_warning` for a baseline at chance;
* :mod:`~lagaug.core.classifier.testing` — a tiny set and config that learn in seconds, for tests.
"""

from lagaug.core.classifier.chance import chance_warning
from lagaug.core.classifier.config import (
    AUG_CHOICES, BALANCE_CHOICES, PRESETS, SELECT_CHOICES, EnsembleConfig, preset, preset_values,
    resolve_classifier_aug, resolve_ensemble_config,
)
from lagaug.core.classifier.ensemble import Ensemble, Transform, member_seeds, train_ensemble
from lagaug.core.classifier.models import build_classifier, check_classifier_input, check_classifier_name
from lagaug.core.classifier.training import train_member

__all__ = [
    "AUG_CHOICES", "BALANCE_CHOICES", "PRESETS", "SELECT_CHOICES", "Ensemble", "EnsembleConfig",
    "Transform", "build_classifier", "chance_warning", "check_classifier_input", "check_classifier_name",
    "member_seeds", "preset", "preset_values", "resolve_classifier_aug", "resolve_ensemble_config",
    "train_ensemble", "train_member",
]
