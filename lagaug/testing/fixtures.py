"""lagaug's pytest plugin: fixtures for a plugin author's tests, registered through the ``pytest11``
entry point, so that ``pip install lagaug[test]`` gives them to any test suite without an import.

* ``lagaug_plugins`` — a function: ``lagaug_plugins(("name", plugin), ...)`` returns a plugin
  manager with the core and exactly those plugins (no installed entry point: a test sees what it
  gives); ``lagaug_plugins(installed=True)`` adds every installed ``lagaug`` plugin.
* ``lagaug_cache`` — the cache of fits and baselines on, in a fresh folder (its path); without
  it a test's runs compute everything (see ``lagaug_no_cache``).
* ``lagaug_no_cache`` — ``LAGAUG_CACHE=off`` for one test.
* ``learnable_data`` — a tiny three-class ``.npz`` (``ok``, ``spot``, ``line``) that a tiny
  classifier learns in seconds but not perfectly (:func:`lagaug.testing.learnable_npz`).
* ``defect_data`` — a tiny ``ok``/``defect`` ``.npz`` whose defects come with masks
  (:func:`lagaug.testing.defect_npz`).

Nothing heavy is imported until a fixture is used.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def lagaug_plugins():
    from lagaug.core.contract.plugins import make_plugin_manager

    def build(*plugins, installed: bool = False):
        return make_plugin_manager(list(plugins), load_entrypoints=installed)

    return build


@pytest.fixture
def lagaug_cache(tmp_path, monkeypatch):
    folder = tmp_path / "lagaug-cache"
    monkeypatch.setenv("LAGAUG_CACHE", str(folder))
    return folder


@pytest.fixture
def lagaug_no_cache(monkeypatch):
    monkeypatch.setenv("LAGAUG_CACHE", "off")


@pytest.fixture
def learnable_data(tmp_path):
    from lagaug.testing import learnable_npz

    return learnable_npz(tmp_path / "learnable.npz")


@pytest.fixture
def defect_data(tmp_path):
    from lagaug.testing import defect_npz

    return defect_npz(tmp_path / "defects.npz")
