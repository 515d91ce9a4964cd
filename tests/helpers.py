"""Helpers shared by the test modules (import them from here, not from conftest)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PLUGIN = ROOT / "examples" / "lagaug-example-plugin"


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


class CliResult:
    """What a command printed and returned, like ``subprocess.CompletedProcess``."""

    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def invoke(*args, plugins=None, env: dict | None = None) -> CliResult:
    """Run ``lagaug ARGS`` in this process (no interpreter start-up, no torch import per call)
    with ``plugins`` (default: a new plugin manager, as ``main()`` builds one)."""
    from click.testing import CliRunner

    from lagaug.cli.main import make_cli
    from lagaug.core.contract.plugins import make_plugin_manager

    pm = plugins if plugins is not None else make_plugin_manager()
    result = CliRunner(env=env).invoke(make_cli(pm), [str(a) for a in args], obj=pm, catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)
