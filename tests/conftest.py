"""Shared fixtures: tiny data, and plugins exposed as installed distributions."""

from __future__ import annotations

import os
import sys

import pytest
from helpers import expose_example_plugin

os.environ.setdefault("OMP_NUM_THREADS", "1")  # a shared 2-core machine: one thread is faster and repeatable
os.environ["LAGAUG_CACHE"] = "off"  # runs in tests compute everything; the cache's tests turn it on (cache_dir)


@pytest.fixture
def cache_dir(lagaug_cache):
    """The cache of fits and baselines, on, in a fresh folder (lagaug's own pytest fixture)."""
    return lagaug_cache


@pytest.fixture
def plugin_site(tmp_path, monkeypatch):
    """A folder on sys.path (and PYTHONPATH, for subprocesses) that plugins get 'installed' into."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delenv("LAGAUG_LOAD_PLUGINS", raising=False)
    import importlib

    importlib.invalidate_caches()
    yield site
    for mod in [m for m in sys.modules if m.startswith(("lagaug_example_plugin", "broken_", "clash_", "hello_"))]:
        del sys.modules[mod]


@pytest.fixture
def example_plugin(plugin_site):
    expose_example_plugin(plugin_site)
    return plugin_site


@pytest.fixture
def plugins(example_plugin):
    """A plugin manager built the way ``lagaug``'s ``main()`` builds one, with the example plugin
    installed; tests add their own plugins with ``make_plugin_manager(extra_plugins=...)``."""
    from lagaug.core.contract.plugins import make_plugin_manager

    return make_plugin_manager()


@pytest.fixture
def learn_npz(tmp_path):
    """A tiny 2-class .npz that a tiny classifier learns well but not perfectly."""
    from lagaug.testing import learnable_npz

    return learnable_npz(tmp_path / "learn.npz")


@pytest.fixture
def tiny_npz(tmp_path):
    """A small 2-class .npz (16x16 gray): bright squares vs dark background, some noise."""
    import numpy as np

    rng = np.random.default_rng(0)

    def make(n):
        x = (rng.random((n, 16, 16)) * 60).astype(np.uint8)
        y = np.arange(n) % 2
        for i in np.flatnonzero(y == 1):
            r, c = rng.integers(2, 10, size=2)
            x[i, r : r + 5, c : c + 5] = 200
        return x, y.astype(np.uint8)

    x_train, y_train = make(48)
    x_test, y_test = make(40)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path
