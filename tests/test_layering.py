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


def test_every_package_says_what_lives_in_it():
    # the first docstring of each package names each of its modules: a newcomer reading it finds
    # a thing where its name says, and a module added without a word there fails here
    for init in sorted(PACKAGE.rglob("__init__.py")):
        folder = init.parent
        if folder == PACKAGE or folder.parent.name == "plugins" or folder.name in ("cli", "plugins"):
            continue
        text = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert text, f"{init.relative_to(PACKAGE)} has no docstring"
        members = [p.stem for p in folder.glob("*.py") if p.stem != "__init__"]
        members += [p.name for p in folder.iterdir() if (p / "__init__.py").is_file()]
        missing = [m for m in members if f".{m}`" not in text and f".{m}." not in text]
        assert not missing, f"{init.relative_to(PACKAGE)}'s docstring does not mention {missing}"


def core_group(module: str) -> str:
    parts = module.split(".")
    return parts[2] if parts[:2] == ["lagaug", "core"] and len(parts) > 2 else ".".join(parts[:2])


def test_inside_the_core_run_and_compare_are_the_top_and_the_basics_import_no_contract():
    # the arrows docs/architecture.md draws inside the core
    top, upper = {"run", "compare"}, {"contract", "defaults", "run", "compare"}
    for path in (PACKAGE / "core").rglob("*.py"):
        group = core_group(module_name(path))
        targets = {core_group(m) for m in imports_of(path)} - {group}
        if group not in top:
            assert not targets & top, f"{path.relative_to(PACKAGE)} imports {sorted(targets & top)}"
        if group not in upper | {"regions", "store"}:
            assert not targets & upper, f"{path.relative_to(PACKAGE)} imports {sorted(targets & upper)}"


def test_the_package_has_no_import_circle():
    # module-level and in-function imports alike: a lazy import that closes a circle still makes
    # two modules that cannot be read (or moved) one without the other
    edges = graph(PACKAGE)
    assert cycle_in(edges) is None, cycle_in(edges)
