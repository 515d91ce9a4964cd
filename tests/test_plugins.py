"""Plugin discovery, the method registry, diagnostics, LAGAUG_LOAD_PLUGINS, and list-plugins."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from helpers import make_distribution

from lagaug.core.contract.plugins import make_plugin_manager
from lagaug.core.errors import ConfigError, PluginError


def infos_by_name(pm):
    return {i.name: i for i in pm.plugin_infos()}


def test_builtins_load_through_entry_points(plugin_site):
    pm = make_plugin_manager()
    infos = infos_by_name(pm)
    assert {"core", "hardness", "vae", "vqvae2"} <= set(infos)
    assert infos["hardness"].distribution == "lagaug" and infos["hardness"].builtin
    assert infos["vae"].builtin and infos["vqvae2"].hooks == ["lagaug_register_methods"]
    assert infos["hardness"].hooks == ["lagaug_score", "lagaug_select"]
    assert "vae" in pm.method_names() and "vqvae2" in pm.method_names()


def test_third_party_plugin_is_listed_with_distribution_hooks_and_methods(example_plugin):
    info = infos_by_name(make_plugin_manager())["example"]
    assert (info.distribution, info.version, info.builtin) == ("lagaug-example-plugin", "0.2.0", False)
    assert info.hooks == ["lagaug_iteration_end", "lagaug_register_methods"]
    assert info.methods == ["jitter"]
    assert info.error is None


def test_method_classes_load_lazily_and_by_name(example_plugin):
    pm = make_plugin_manager()
    assert "lagaug_example_plugin.method" not in sys.modules
    cls = pm.get_method("jitter")
    assert cls.__name__ == "JitterMethod" and cls.name == "jitter"


def test_unknown_method_lists_the_available_ones(example_plugin):
    with pytest.raises(ConfigError, match=r"unknown method 'nope'; available methods: .*jitter.*vae"):
        make_plugin_manager().get_method("nope")


BROKEN_IMPORT = "raise RuntimeError('boom at import')\n"
BROKEN_REGISTER = """
from lagaug import hookimpl
@hookimpl
def lagaug_register_methods(register):
    raise ValueError("cannot register")
"""
MISSPELT = """
from lagaug import hookimpl
@hookimpl
def lagaug_iteration_ends(iteration, metrics, added, run_dir):
    pass
"""
CLASH = """
from lagaug import hookimpl
@hookimpl
def lagaug_register_methods(register):
    register("x:Y", name="vae", description="another vae")
"""


@pytest.mark.parametrize("module,source,error", [
    ("broken_import", BROKEN_IMPORT, "failed to import broken_import: RuntimeError: boom at import"),
    ("broken_register", BROKEN_REGISTER, "ValueError: cannot register"),
    ("broken_misspelt", MISSPELT, "unknown hook 'lagaug_iteration_ends' (misspelt?)"),
])
def test_a_broken_plugin_is_reported_and_the_rest_keep_working(plugin_site, module, source, error):
    make_distribution(plugin_site, "broken-thing", "1.0", {"broken": module}, {module: source})
    pm = make_plugin_manager()
    info = infos_by_name(pm)["broken"]
    assert error in info.error
    assert info.hooks == [] and info.methods == []
    assert pm.get_method("vae").name == "vae"  # built-ins unaffected


def test_two_methods_with_one_name_is_a_clear_error(plugin_site):
    make_distribution(plugin_site, "clash-plugin", "1.0", {"clash": "clash_mod"}, {"clash_mod": CLASH})
    pm = make_plugin_manager()
    msg = "method name 'vae' is registered twice: by plugin 'vae' and by plugin 'clash'"
    assert msg in infos_by_name(pm)["clash"].error
    with pytest.raises(PluginError, match=msg):
        pm.get_method("vae")


def test_env_var_limits_third_party_plugins(example_plugin, monkeypatch):
    monkeypatch.setenv("LAGAUG_LOAD_PLUGINS", "")
    assert "example" not in infos_by_name(make_plugin_manager())
    assert "vae" in make_plugin_manager().method_names()  # built-ins always load
    monkeypatch.setenv("LAGAUG_LOAD_PLUGINS", "lagaug-example-plugin")
    assert "jitter" in make_plugin_manager().method_names()
    monkeypatch.setenv("LAGAUG_LOAD_PLUGINS", "example")
    assert "jitter" in make_plugin_manager().method_names()


def run_cli(args, pm=None):
    from lagaug.cli.main import make_cli

    pm = pm or make_plugin_manager()
    # a wide terminal: rich wraps table cells to the width, and a wrapped cell splits the text looked for
    return CliRunner().invoke(make_cli(pm), args, obj=pm, env={"COLUMNS": "200"})


def test_list_plugins_json(example_plugin):
    result = run_cli(["list-plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["example"] == {
        "name": "example", "distribution": "lagaug-example-plugin", "version": "0.2.0", "builtin": False,
        "hooks": ["lagaug_iteration_end", "lagaug_register_methods"], "methods": ["jitter"], "options": [],
        "error": None,
    }


def test_list_plugins_table_shows_errors(plugin_site, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # at 80 columns rich wraps the error cell, "boom at" | "import"
    make_distribution(plugin_site, "broken-thing", "1.0", {"broken": "broken_import"},
                      {"broken_import": BROKEN_IMPORT})
    result = run_cli(["list-plugins"])
    assert result.exit_code == 0
    assert "broken" in result.output and "boom at import" in result.output


def test_help_and_list_plugins_import_no_torch_nor_ray(example_plugin):
    code = ("import sys\nfrom lagaug.cli.main import main\n"
            "for args in (['--help'], ['list-plugins'], ['augment', '--help'], ['compare', '--help']):\n"
            "    try:\n        main(args)\n    except SystemExit as e:\n        assert e.code == 0, e.code\n"
            "print('torch' in sys.modules, 'ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "jitter" in out.stdout and "--executor" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "False False"


def test_nothing_builds_a_manager_at_import_and_each_call_gets_its_own(example_plugin):
    code = ("import lagaug, lagaug.cli.main, lagaug.core.contract.plugins as p, lagaug.core.run.generators\n"
            "calls = []\norig = p.LagaugPluginManager.__init__\n"
            "p.LagaugPluginManager.__init__ = lambda self: (calls.append(1), orig(self))[1]\n"
            "import lagaug.core.run.loop, lagaug.core.compare\nprint(len(calls))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
    assert make_plugin_manager() is not make_plugin_manager()


UNMARKED = """
def lagaug_register_methods(register):
    register("x:Y", name="unmarked")
"""


def test_an_unmarked_function_is_not_a_hook_implementation(plugin_site):
    make_distribution(plugin_site, "unmarked-plugin", "1.0", {"unmarked": "unmarked_mod"}, {"unmarked_mod": UNMARKED})
    pm = make_plugin_manager()
    assert "unmarked" not in pm.method_names()
    assert infos_by_name(pm)["unmarked"].hooks == []


def test_registration_goes_through_pluggy_and_is_traced(example_plugin, monkeypatch):
    monkeypatch.setenv("LAGAUG_TRACE_PLUGINS", "1")
    code = "from lagaug.core.contract.plugins import make_plugin_manager\nmake_plugin_manager().hook.lagaug_iteration_end(iteration=0, metrics={}, added=0, run_dir='.')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "lagaug_iteration_end" in out.stderr and "iteration: 0" in out.stderr
    # registration hooks are called through pluggy too, once per plugin with its own register
    assert out.stderr.count("lagaug_register_methods [hook]") >= 3  # vae, vqvae2, example
