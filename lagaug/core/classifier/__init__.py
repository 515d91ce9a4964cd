"""The classifier ensemble that every lagaug figure comes from.

* :mod:`~lagaug.core.classifier.config` — :class:`EnsembleConfig`, :data:`PRESETS`,
  :func:`resolve_ensemble_config`, :func:`resolve_classifier_aug` (imports no torch: the CLI's
  help text can read the presets);
* :mod:`~lagaug.core.classifier.augment` — label-preserving augmentation for the classifier;
* :mod:`~lagaug.core.classifier.models` — timm classifiers and early checks of name and image size;
* :mod:`~lagaug.core.classifier.training` — one member's training recipe;
* :mod:`~lagaug.core.classifier.ensemble` — :class:`Ensemble`, :func:`train_ensemble`;
* :mod:`~lagaug.core.classifier.chance` — :func:`chance_warning` for a baseline at chance;
* :mod:`~lagaug.core.classifier.cnn` — the small CNN of Garay-Maestre et al., registered as timm models;
* :mod:`~lagaug.core.classifier.classic` — classical (geometric) augmentation, batched: the
  ``classic`` arm of ``compare`` and the classifier's own ``--classifier-aug``;
* the test-size data and ensemble setting live in :mod:`lagaug.testing`.

The names below are importable from this package; the torch-using ones load on first use.
"""

from importlib import import_module

from lagaug.core.classifier.config import (
    AUG_CHOICES,
    BALANCE_CHOICES,
    PRESETS,
    SELECT_CHOICES,
    EnsembleConfig,
    preset,
    preset_values,
    resolve_classifier_aug,
    resolve_ensemble_config,
    steps_per_epoch,
)

_LAZY = {
    "chance_warning": "chance", "Ensemble": "ensemble", "Transform": "ensemble", "member_seeds": "ensemble",
    "train_ensemble": "ensemble", "build_classifier": "models", "check_classifier_input": "models",
    "check_classifier_name": "models", "train_member": "training",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AUG_CHOICES", "BALANCE_CHOICES", "PRESETS", "SELECT_CHOICES", "EnsembleConfig", "preset", "preset_values",
    "resolve_classifier_aug", "resolve_ensemble_config", "steps_per_epoch", *_LAZY,
]
