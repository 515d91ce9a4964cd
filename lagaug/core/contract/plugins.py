"""The plugin manager: entry-point discovery, the method registry, and plugin diagnostics.

Plugins are found through the ``lagaug`` entry-point group. The built-ins are declared in lagaug's
own ``pyproject.toml`` and travel the same road as third-party plugins. ``LAGAUG_LOAD_PLUGINS``
limits what loads: a comma-separated list of plugin (entry-point) names or distribution names;
empty means the built-ins only. A plugin that fails to import or register is recorded with its
error and skipped; everything else keeps working.

Nothing here imports torch: methods registered as ``"module:Class"`` strings load on first use.
"""

from __future__ import annotations

import copy
import importlib
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from lagaug.core.contract import hookspecs
from lagaug.core.errors import ConfigError, PluginError, PluginWarning

ENTRY_POINT_GROUP = "lagaug"
#: the hooks a run records the answering plugins of (RUN/plugins.json)
STAGE_HOOKS = frozenset({"lagaug_encode", "lagaug_resample", "lagaug_decode", "lagaug_score", "lagaug_select",
                         "lagaug_filter_synthesized"})
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
    options: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "hooks": self.hooks,
            "methods": self.methods,
            "options": self.options,
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
        #: per stage hook, the plugins whose implementation gave a result, in the order first seen
        self.answered: dict[str, list[str]] = {}
        #: per stage hook, the plugins that gave a result in its latest call
        self.last_answers: dict[str, list[str]] = {}
        self._inner_hookexec = self._recording(self._inner_hookexec)

    # -- who answered ----------------------------------------------------------------------------
    def _recording(self, inner):
        """Wrap pluggy's hook execution so that every stage hook records which plugins gave a
        result (:attr:`answered`, :attr:`last_answers`); wrappers and other plugins' order are
        untouched."""

        def hookexec(hook_name, methods, kwargs, firstresult):
            if hook_name not in STAGE_HOOKS:
                return inner(hook_name, methods, kwargs, firstresult)
            self.last_answers[hook_name] = []
            return inner(hook_name, [self._recorded(hook_name, m) for m in methods], kwargs, firstresult)

        return hookexec

    def _recorded(self, hook_name: str, impl):
        if impl.wrapper or impl.hookwrapper:
            return impl
        proxy = copy.copy(impl)
        original = impl.function

        def function(*args):
            result = original(*args)
            if result is not None:
                for record in (self.answered.setdefault(hook_name, []), self.last_answers[hook_name]):
                    if impl.plugin_name not in record:
                        record.append(impl.plugin_name)
            return result

        proxy.function = function
        return proxy

    def describe(self, name: str) -> dict:
        """``{plugin, distribution, version, builtin}`` of a registered plugin (for run records)."""
        info = self.infos.get(name)
        if info is None:
            return {"plugin": name}
        return {"plugin": name, "distribution": info.distribution, "version": info.version, "builtin": info.builtin}

    def competing(self) -> dict[str, list[str]]:
        """Stage hooks that two or more third-party plugins implement (not as wrappers):
        ``{hook: [plugins, the one asked first first]}``. For ``firstresult`` hooks the first
        result wins, so all but one may go unheard."""
        out = {}
        for hook_name in sorted(STAGE_HOOKS - {"lagaug_filter_synthesized"}):
            impls = [i for i in getattr(self.hook, hook_name).get_hookimpls()
                     if not (i.wrapper or i.hookwrapper) and not self.infos.get(i.plugin_name, PluginInfo(
                         i.plugin_name, "", "", False)).builtin]
            if len(impls) > 1:
                out[hook_name] = [i.plugin_name for i in reversed(impls)]  # pluggy asks the last registered first
        return out

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
            info.options = _option_names(plugin)
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

    def plugin_options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """The options of every plugin that declares them (``lagaug_options``, a dataclass),
        with the ``--set PLUGIN.key=value`` values of ``overrides`` applied: ``{plugin name:
        options}``. An unknown plugin or key is a one-line :class:`ConfigError`."""
        from lagaug.core.config import config_from_dict, split_options

        _, given = split_options(overrides)
        declared = {name: plugin.lagaug_options for name, plugin in self.list_name_plugin()
                    if getattr(plugin, "lagaug_options", None) is not None}
        for name, values in given.items():
            key = next(iter(values))
            if name not in declared:
                takes = ", ".join(sorted(declared)) or "none"
                raise ConfigError(f"--set {name}.{key}: no plugin named {name!r} takes options (plugins that do: "
                                  f"{takes}); `lagaug list-plugins` shows each plugin's options")
            keys = self.infos[name].options if name in self.infos else []
            unknown = [k for k in values if k not in keys]
            if unknown:
                raise ConfigError(f"--set {name}.{unknown[0]}: plugin {name!r} has no option {unknown[0]!r}; its "
                                  f"options: {', '.join(keys)}")
        return {name: config_from_dict(cls, given.get(name, {}), source=f"--set {name}.*",
                                       label=f"--set {name}.{{key}}")
                for name, cls in declared.items()}

    def plugin_infos(self) -> list[PluginInfo]:
        return sorted(self.infos.values(), key=lambda i: (not i.builtin, i.name))


#: RUN/plugins.json: which plugin answered each stage hook, and the plugins installed (with versions)
PLUGINS_FILE = "plugins.json"


def warn_competing(pm: LagaugPluginManager) -> None:
    """A warning for every stage hook that several third-party plugins implement: only one result
    is used, and the user should know which and how to choose."""
    import warnings

    for hook_name, names in pm.competing().items():
        warnings.warn(f"plugins {', '.join(repr(n) for n in names)} all implement {hook_name}; {names[0]!r} is asked "
                      f"first and the first result is used (the run records which answered in {PLUGINS_FILE}); leave "
                      f"one out with {ENV_LOAD}", PluginWarning, stacklevel=2)


def record_plugins(pm: LagaugPluginManager, root: Any, progress: Any = None) -> dict:
    """Write ``root/plugins.json``: per stage hook, the plugins that answered it in this run (with
    distribution and version; added to what the file already records, so a resumed run keeps the
    first session's), and the plugins installed now; unchanged, the file is not rewritten. A
    third-party plugin answering for the first time is said through ``progress.log``."""
    import json
    from pathlib import Path

    from lagaug.core.store.atomic import atomic_write_json

    path = Path(root) / PLUGINS_FILE
    try:
        before = json.loads(path.read_text())
        stages = json.loads(json.dumps(before.get("stages", {})))
    except (OSError, ValueError, AttributeError):
        before, stages = None, {}
    for hook_name, names in pm.answered.items():
        have = stages.setdefault(hook_name, [])
        for name in names:
            if any(entry.get("plugin") == name for entry in have):
                continue
            entry = pm.describe(name)
            have.append(entry)
            if progress is not None and not entry.get("builtin"):
                progress.log(f"{hook_name}: answered by plugin {name} ({entry.get('distribution', '-')} "
                             f"{entry.get('version', '-')})")
    record = {"stages": stages, "installed": [i.as_dict() for i in pm.plugin_infos()]}
    if record != before:  # a resumed run that changed nothing leaves the file as it was
        atomic_write_json(path, record)
    return record


def _option_names(plugin: Any) -> list[str]:
    """The keys of a plugin's ``lagaug_options`` dataclass (``[]`` without one); anything else
    there is the plugin's error."""
    import dataclasses

    cls = getattr(plugin, "lagaug_options", None)
    if cls is None:
        return []
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise PluginError(f"lagaug_options must be a dataclass (its fields are the --set PLUGIN.key options), "
                          f"got {cls!r}")
    try:
        cls()
    except Exception as exc:
        raise PluginError(f"lagaug_options {cls.__name__}() fails without arguments ({type(exc).__name__}: {exc}); "
                          "give every field a default") from None
    return [f.name for f in dataclasses.fields(cls)]


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


def make_plugin_manager(extra_plugins: list[tuple[str, Any]] | None = None, *,
                        load_entrypoints: bool = True) -> LagaugPluginManager:
    """A new plugin manager: the core's own hooks, the ``lagaug`` entry points (filtered by
    ``LAGAUG_LOAD_PLUGINS``), then ``extra_plugins`` (``(name, plugin)`` pairs, e.g. in tests).
    ``load_entrypoints=False`` leaves every installed plugin out, lagaug's own methods included:
    a test sees the core and exactly the plugins it gives.

    Build it once where the work starts (the CLI's ``main()``, a test fixture, your script) and
    hand it to :func:`lagaug.run_augment`, :func:`lagaug.run_compare`, :func:`lagaug.fit_generator`
    and :func:`lagaug.load_generator`. Nothing in lagaug keeps one per process.
    """
    from lagaug.core.defaults import DEFAULTS

    pm = LagaugPluginManager()
    if os.environ.get(ENV_TRACE):  # before any plugin loads: registration calls are traced too
        pm.trace.root.setwriter(lambda msg: sys.stderr.write(msg))
        pm.enable_tracing()
    version = _lagaug_version()
    for name, module in DEFAULTS:
        pm.add_plugin(module, name, distribution=BUILTIN_DISTRIBUTION, version=version, builtin=True)
    if load_entrypoints:
        pm.load_entry_points(_allowed_from_env())
    for name, plugin in extra_plugins or []:
        pm.add_plugin(plugin, name)
    return pm


def registered_method(name: str):
    """The method class registered as ``name`` (a fresh plugin manager reads the entry points):
    how a module that must not import a method's own module (an importer) finds its class."""
    return make_plugin_manager().get_method(name)


def plugins_or_default(pm: LagaugPluginManager | None) -> LagaugPluginManager:
    """``pm``, or a new manager when the caller gave none (convenience for the Python API)."""
    return pm if pm is not None else make_plugin_manager()


def _lagaug_version() -> str:
    from lagaug import __version__

    return __version__
