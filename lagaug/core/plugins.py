"""The plugin manager: entry-point discovery, the method registry, and plugin diagnostics.

Plugins are found through the ``lagaug`` entry-point group. The built-ins are declared in lagaug's
own ``pyproject.toml`` and travel the same road as third-party plugins. ``LAGAUG_LOAD_PLUGINS``
limits what loads: a comma-separated list of plugin (entry-point) names or distribution names;
empty means the built-ins only. A plugin that fails to import or register is recorded with its
error and skipped; everything else keeps working.

Nothing here imports torch: methods registered as ``"module:Class"`` strings load on first use.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from lagaug.core import hookspecs
from lagaug.core.errors import ConfigError, PluginError

ENTRY_POINT_GROUP = "lagaug"
BUILTIN_DISTRIBUTION = "lagaug"
ENV_LOAD = "LAGAUG_LOAD_PLUGINS"
ENV_TRACE = "LAGAUG_TRACE_PLUGINS"


@dataclass
class MethodEntry:
    """One registered generator method; ``target`` is a class or a ``"module:Class"`` string."""

    name: str
    target: Any
    description: str
    plugin: str

    def load(self):
        """The method class (imports its module on first use)."""
        if isinstance(self.target, str):
            module_name, _, attr = self.target.partition(":")
            try:
                self.target = getattr(importlib.import_module(module_name), attr)
            except Exception as exc:
                raise PluginError(
                    f"method {self.name!r} of plugin {self.plugin!r} failed to load: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        return self.target


@dataclass
class PluginInfo:
    """What ``lagaug list-plugins`` shows about one plugin."""

    name: str
    distribution: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "hooks": self.hooks,
            "methods": self.methods,
            "error": self.error,
        }


class LagaugPluginManager(pluggy.PluginManager):
    """A pluggy manager that also keeps the method registry and per-plugin diagnostics."""

    def __init__(self) -> None:
        super().__init__("lagaug")
        self.add_hookspecs(hookspecs)
        self.methods: dict[str, MethodEntry] = {}
        self.infos: dict[str, PluginInfo] = {}
        self.conflicts: dict[str, str] = {}
        self.notes: list[str] = []  # what the user should hear about loading (e.g. a filter matching nothing)

    # -- methods -------------------------------------------------------------------------------
    def method_names(self) -> list[str]:
        return sorted(self.methods)

    def get_method(self, name: str):
        """The method class registered under ``name`` (unknown: error listing what exists)."""
        if name in self.conflicts:
            raise PluginError(self.conflicts[name])
        if name not in self.methods:
            known = ", ".join(self.method_names()) or "none"
            broken = sorted(i.name for i in self.infos.values() if i.error)
            hint = (f"; plugins that failed to load: {', '.join(broken)} (see `lagaug list-plugins`)"
                    if broken else "")
            raise ConfigError(f"unknown method {name!r}; available methods: {known}{hint}")
        return self.methods[name].load()

    def _registrar(self, plugin_name: str, added: list[MethodEntry]):
        """The ``register`` callable handed to one plugin's ``lagaug_register_methods``."""

        def register(target, name: str | None = None, description: str | None = None):
            if isinstance(target, str):
                if not name:
                    raise PluginError(f"plugin {plugin_name!r}: register({target!r}) needs name=")
                entry_name = name
            else:
                entry_name = name or getattr(target, "name", "")
                if not entry_name:
                    raise PluginError(f"plugin {plugin_name!r}: method class {target!r} has no name")
            desc = description or ("" if isinstance(target, str) else getattr(target, "description", ""))
            other = self.methods.get(entry_name) or next((m for m in added if m.name == entry_name), None)
            if other is not None:
                self.conflicts[entry_name] = (
                    f"method name {entry_name!r} is registered twice: by plugin {other.plugin!r} "
                    f"and by plugin {plugin_name!r}; uninstall one or set {ENV_LOAD}"
                )
                raise PluginError(self.conflicts[entry_name])
            added.append(MethodEntry(entry_name, target, desc, plugin_name))

        return register

    def call_for(self, plugin: Any, hook_name: str, **kwargs) -> list:
        """Call hook ``hook_name`` of ``plugin`` alone, through pluggy (its own arguments).

        Registration hooks are called once per plugin so that each gets its own ``register`` and
        an error names the plugin that raised it. (Stage hooks never go through here: a subset
        caller would drop other plugins' wrappers.)
        """
        others = [p for p in self.get_plugins() if p is not plugin]
        return self.subset_hook_caller(hook_name, remove_plugins=others)(**kwargs)

    def _register_methods_of(self, plugin_name: str, plugin: Any) -> list[str]:
        added: list[MethodEntry] = []
        self.call_for(plugin, "lagaug_register_methods", register=self._registrar(plugin_name, added))
        for entry in added:
            self.methods[entry.name] = entry
        return [m.name for m in added]

    def add_commands(self, cli: Any, warn) -> None:
        """Let every plugin add its commands to the click group ``cli``; a plugin that fails is
        reported through ``warn(message)`` and the others go on."""
        for name, plugin in self.list_name_plugin():
            if not any(h.name == "lagaug_register_commands" for h in self.get_hookcallers(plugin) or []):
                continue
            try:
                self.call_for(plugin, "lagaug_register_commands", cli=cli)
            except Exception as exc:  # a broken plugin never takes the CLI down
                warn(f"plugin {name!r} failed to add commands: {type(exc).__name__}: {exc}")

    def call_stage(self, hook_name: str, **kwargs) -> Any:
        """Call a ``firstresult`` stage hook; every implementation passing (``None``) is an error."""
        result = getattr(self.hook, hook_name)(**kwargs)
        if result is None:
            raise PluginError(
                f"no plugin gave a result for {hook_name}: every implementation returned None "
                "(a plugin that overrides a stage must return a value or leave it to the next one)"
            )
        return result

    # -- loading -------------------------------------------------------------------------------
    def add_plugin(self, plugin: Any, name: str, *, distribution: str = "", version: str = "",
                   builtin: bool = False) -> PluginInfo:
        """Register a plugin object and its methods; on failure, record the error and unregister."""
        info = PluginInfo(name, distribution or "-", version or "-", builtin)
        self.infos[name] = info
        try:
            self._check_hook_names(plugin)
            self.register(plugin, name=name)
            info.hooks = sorted(h.name for h in self.get_hookcallers(plugin) or [])
            info.methods = self._register_methods_of(name, plugin)
        except PluginError as exc:
            if self.is_registered(plugin):
                self.unregister(plugin)
            info.error = str(exc)
            info.hooks, info.methods = [], []
        except Exception as exc:  # a broken third-party plugin never takes lagaug down
            if self.is_registered(plugin):
                self.unregister(plugin)
            info.error = f"{type(exc).__name__}: {exc}"
            info.hooks, info.methods = [], []
        return info

    def _check_hook_names(self, plugin: Any) -> None:
        """A misspelt hook (an implementation with no matching spec) is this plugin's error."""
        for attr in dir(plugin):
            if self.parse_hookimpl_opts(plugin, attr) is None:
                continue
            if getattr(self.hook, attr, None) is None or not getattr(self.hook, attr).has_spec():
                raise PluginError(f"unknown hook {attr!r} (misspelt?); known hooks: {', '.join(hook_names())}")

    def load_entry_points(self, allowed: set[str] | None) -> None:
        """Import and register every ``lagaug`` entry point (filtered by ``allowed``)."""
        eps = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=_builtin_first)
        seen: set[str] = set()
        matched: set[str] = set()
        for ep in eps:
            dist = ep.dist.name if ep.dist is not None else ""
            version = ep.dist.version if ep.dist is not None else ""
            builtin = _normalise(dist) == BUILTIN_DISTRIBUTION
            if ep.name in seen:
                continue
            seen.add(ep.name)
            if not builtin and allowed is not None and not ({ep.name, _normalise(dist)} & allowed):
                continue
            matched |= {ep.name, _normalise(dist)}
            try:
                plugin = ep.load()
            except Exception as exc:
                self.infos[ep.name] = PluginInfo(
                    ep.name, dist or "-", version or "-", builtin,
                    error=f"failed to import {ep.value}: {type(exc).__name__}: {exc}",
                )
                continue
            self.add_plugin(plugin, ep.name, distribution=dist, version=version, builtin=builtin)
        unmatched = sorted({a for a in allowed or () if _normalise(a) == a} - matched)
        if unmatched:
            self.notes.append(f"{ENV_LOAD} names {', '.join(unmatched)}, which matched no installed plugin; "
                              f"see `lagaug list-plugins` for the names")

    def check_targets(self, import_classes: bool = False) -> None:
        """Record an error on every plugin whose registered ``"module:Class"`` target does not
        exist: the module is looked up without importing it (no torch), or, with
        ``import_classes``, imported and the class checked."""
        import importlib.util

        for entry in self.methods.values():
            if not isinstance(entry.target, str):
                continue
            module_name, _, attr = entry.target.partition(":")
            info = self.infos.get(entry.plugin)
            try:
                if import_classes:
                    entry.load()
                else:
                    try:
                        found = importlib.util.find_spec(module_name) is not None
                    except (ImportError, ValueError):
                        found = False
                    if not found:
                        raise PluginError(f"method {entry.name!r}: module {module_name!r} does not exist")
            except PluginError as exc:
                if info is not None and info.error is None:
                    info.error = str(exc)

    def plugin_infos(self) -> list[PluginInfo]:
        return sorted(self.infos.values(), key=lambda i: (not i.builtin, i.name))


def hook_names() -> list[str]:
    """Names of every hook lagaug specifies."""
    return sorted(n for n in dir(hookspecs) if n.startswith("lagaug_"))


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-")


def _builtin_first(ep) -> tuple:
    dist = ep.dist.name if ep.dist is not None else ""
    return (_normalise(dist) != BUILTIN_DISTRIBUTION, ep.name)


def _allowed_from_env() -> set[str] | None:
    value = os.environ.get(ENV_LOAD)
    if value is None:
        return None
    return {_normalise(v.strip()) for v in value.split(",") if v.strip()} | {
        v.strip() for v in value.split(",") if v.strip()
    }


def make_plugin_manager(extra_plugins: list[tuple[str, Any]] | None = None) -> LagaugPluginManager:
    """A new plugin manager: the core's own hooks, the ``lagaug`` entry points (filtered by
    ``LAGAUG_LOAD_PLUGINS``), then ``extra_plugins`` (``(name, plugin)`` pairs, e.g. in tests).

    Build it once where the work starts (the CLI's ``main()``, a test fixture, your script) and
    hand it to :func:`lagaug.run_augment`, :func:`lagaug.run_compare`, :func:`lagaug.fit_generator`
    and :func:`lagaug.load_generator`. Nothing in lagaug keeps one per process.
    """
    from lagaug.core import hardness, quality, stages

    pm = LagaugPluginManager()
    if os.environ.get(ENV_TRACE):  # before any plugin loads: registration calls are traced too
        pm.trace.root.setwriter(lambda msg: sys.stderr.write(msg))
        pm.enable_tracing()
    version = _lagaug_version()
    pm.add_plugin(stages, "core", distribution=BUILTIN_DISTRIBUTION, version=version, builtin=True)
    pm.add_plugin(hardness, "hardness", distribution=BUILTIN_DISTRIBUTION, version=version, builtin=True)
    pm.add_plugin(quality, "quality", distribution=BUILTIN_DISTRIBUTION, version=version, builtin=True)
    pm.load_entry_points(_allowed_from_env())
    for name, plugin in extra_plugins or []:
        pm.add_plugin(plugin, name)
    return pm


def plugins_or_default(pm: LagaugPluginManager | None) -> LagaugPluginManager:
    """``pm``, or a new manager when the caller gave none (convenience for the Python API)."""
    return pm if pm is not None else make_plugin_manager()


def _lagaug_version() -> str:
    from lagaug import __version__

    return __version__
