"""Shared fixtures: tiny data, and plugins exposed as installed distributions."""

from __future__ import annotations

import os
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PLUGIN = ROOT / "examples" / "lagaug-example-plugin"

os.environ.setdefault("OMP_NUM_THREADS", "2")


def make_distribution(site: Path, name: str, version: str, entry_points: dict[str, str],
                      modules: dict[str, str] | None = None) -> Path:
    """Write an installed distribution (dist-info + modules) into the folder ``site``."""
    dist = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[lagaug]\n{lines}")
    for mod, source in (modules or {}).items():
        (site / f"{mod}.py").write_text(textwrap.dedent(source))
    return dist


def expose_example_plugin(site: Path) -> None:
    """Expose examples/lagaug-example-plugin as installed, reading its own pyproject.toml."""
    meta = tomllib.loads((EXAMPLE_PLUGIN / "pyproject.toml").read_text())["project"]
    make_distribution(site, meta["name"], meta["version"], meta["entry-points"]["lagaug"])
    (site / "lagaug_example_plugin").symlink_to(EXAMPLE_PLUGIN / "lagaug_example_plugin")


@pytest.fixture
def plugin_site(tmp_path, monkeypatch):
    """A folder on sys.path (and PYTHONPATH, for subprocesses) that plugins get 'installed' into."""
    from lagaug.core.plugins import reset_plugin_manager

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delenv("LAGAUG_LOAD_PLUGINS", raising=False)
    import importlib

    importlib.invalidate_caches()
    reset_plugin_manager()
    yield site
    reset_plugin_manager()
    for mod in [m for m in sys.modules if m.startswith(("lagaug_example_plugin", "broken_", "clash_"))]:
        del sys.modules[mod]


@pytest.fixture
def example_plugin(plugin_site):
    expose_example_plugin(plugin_site)
    return plugin_site


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
