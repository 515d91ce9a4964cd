"""lagaug's fixtures reach a test suite through the ``pytest11`` entry point, with no import."""

from __future__ import annotations

import os

import numpy as np


def test_a_plugin_manager_with_exactly_the_plugins_a_test_gives(lagaug_plugins):
    from lagaug import hookimpl

    class Scorer:
        @hookimpl
        def lagaug_score(self, method, ensemble, dataset, context):
            return None

    bare = lagaug_plugins(("my-scorer", Scorer()))
    assert bare.method_names() == []  # no installed plugin, lagaug's own methods included
    assert "my-scorer" in {name for name, _ in bare.list_name_plugin()} and "core" in bare.infos
    assert {"vqvae2", "cut-paste"} <= set(lagaug_plugins(installed=True).method_names())


def test_the_data_and_cache_fixtures(learnable_data, defect_data, lagaug_cache):
    with np.load(learnable_data) as npz:
        assert npz["x_train"].shape[0] == 90 and list(npz["class_names"]) == ["ok", "spot", "line"]
    with np.load(defect_data) as npz:
        assert npz["m_train"].shape == npz["x_train"].shape and npz["m_train"][npz["y_train"] == 1].any()
    assert os.environ["LAGAUG_CACHE"] == str(lagaug_cache)


def test_the_pytest_plugin_does_not_import_torch():
    # it loads with every test session where lagaug is installed, torch or not used
    import subprocess
    import sys

    code = "import sys, lagaug.testing.fixtures; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
