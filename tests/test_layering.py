"""The import arrows of the package, read from the source: the core never imports the CLI or a
plugin, and no circle runs through the CLI's modules (module-level imports, and those inside
functions alike)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lagaug"


def imports_of(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m.startswith("lagaug")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def graph(folder: Path) -> dict[str, set[str]]:
    modules = {module_name(p): p for p in folder.rglob("*.py")}
    return {name: {m for m in imports_of(p) if m in modules and m != name} for name, p in modules.items()}


def cycle_in(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [node])):
                return found
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start, [])):
            return found
    return None


def test_the_cli_has_no_import_circle():
    edges = graph(PACKAGE / "cli")
    edges.pop("lagaug.cli.__main__", None)
    assert cycle_in(edges) is None, cycle_in(edges)
    assert "lagaug.cli.main" not in set().union(*edges.values())  # the commands take their options from options.py


def test_the_core_never_imports_the_cli_a_plugin_or_the_old_ensemble_path():
    # lagaug.core.ensemble stays for importers outside; the core imports lagaug.core.classifier
    for path in (PACKAGE / "core").rglob("*.py"):
        bad = {m for m in imports_of(path) if m.startswith(("lagaug.cli", "lagaug.plugins", "lagaug.core.ensemble"))}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_no_method_and_its_importer_import_each_other():
    edges = graph(PACKAGE / "plugins")
    assert cycle_in(edges) is None, cycle_in(edges)
