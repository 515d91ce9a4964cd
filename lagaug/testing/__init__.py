"""Test helpers for lagaug and its plugins (imports pytest; not loaded by lagaug itself).

* :class:`MethodContract` — the one contract test every generator method runs (the built-ins,
  the example plugin, and yours): subclass it in a test module, name the method, give a tiny
  configuration.
* :func:`learnable_set` / :func:`learnable_splits` / :func:`learnable_npz` — tiny image sets that
  a tiny classifier learns in seconds but not perfectly, so tests compare figures that can differ;
  :data:`TEST_ENSEMBLE` / :func:`test_ensemble_config` — the ensemble setting that learns them.
* :func:`defect_set` / :func:`defect_npz` — ``ok`` surfaces and ``defect`` ones with a drawn line
  or blob and its exact mask (regions, anomaly maps, keeping and transplanting a defect).
* :func:`disk_set` / :func:`disk_images` — bright disks, ``big`` or ``small``, on a textured
  background: what a generator learns in a few dozen steps (the VQ-VAE-2 and StyleGAN2 tests).

They live in :mod:`.contract` and :mod:`.data`; :mod:`.fixtures` is the pytest plugin (entry point
``pytest11``) that hands them to a plugin author's tests as fixtures.
"""

try:
    import pytest  # noqa: F401
except ImportError:  # pragma: no cover - exercised in a process without pytest
    raise ImportError('lagaug.testing needs pytest: install the test extra, pip install "lagaug[test]"') from None

_EXPORTS = {
    "MethodContract": "lagaug.testing.contract",
    **{name: "lagaug.testing.data" for name in (
        "CLASS_NAMES", "DEFECT_CLASSES", "DISK_CLASSES", "TEST_ENSEMBLE", "defect_npz", "defect_set", "disk_images",
        "disk_set", "learnable_images",
        "learnable_npz", "learnable_set", "learnable_splits", "test_ensemble_config")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Imported on first use: the pytest plugin (:mod:`lagaug.testing.fixtures`) loads with every
    test session where lagaug is installed, and must not import torch for suites that never use it."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lagaug.testing' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
