"""Test helpers for lagaug and its plugins (imports pytest; not loaded by lagaug itself).

* :class:`MethodContract` — the one contract test every generator method runs (the built-ins,
  the example plugin, and yours): subclass it in a test module, name the method, give a tiny
  configuration.
* :func:`learnable_set` / :func:`learnable_splits` / :func:`learnable_npz` — tiny image sets that
  a tiny classifier learns in seconds but not perfectly, so tests compare figures that can differ;
  :data:`TEST_ENSEMBLE` / :func:`test_ensemble_config` — the ensemble setting that learns them.
* :func:`defect_set` / :func:`defect_npz` — ``ok`` surfaces and ``defect`` ones with a drawn line
  or blob and its exact mask (regions, anomaly maps, keeping and transplanting a defect).
"""

try:
    import pytest  # noqa: F401
except ImportError:  # pragma: no cover - exercised in a process without pytest
    raise ImportError('lagaug.testing needs pytest: install the test extra, pip install "lagaug[test]"') from None

from lagaug.testing.contract import MethodContract
from lagaug.testing.data import (
    CLASS_NAMES, DEFECT_CLASSES, TEST_ENSEMBLE, defect_npz, defect_set, learnable_images, learnable_npz, learnable_set,
    learnable_splits, test_ensemble_config,
)

__all__ = ["CLASS_NAMES", "DEFECT_CLASSES", "MethodContract", "TEST_ENSEMBLE", "defect_npz", "defect_set",
           "learnable_images", "learnable_npz", "learnable_set", "learnable_splits", "test_ensemble_config"]
