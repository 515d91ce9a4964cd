"""Configuration dataclasses that round-trip through JSON and accept ``--set key=value`` overrides."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from typing import Any, Mapping, TypeVar

from lagaug.core.errors import ConfigError

C = TypeVar("C")


def config_to_dict(config: Any) -> dict:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _describe(annotation: Any) -> str:
    """A field type in words, for errors: ``int | Literal["auto"]`` -> ``an integer or auto``."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return " or ".join(_describe(a) for a in args if a is not type(None))
    if origin is typing.Literal:
        return " or ".join(map(str, args))
    names = {int: "an integer", float: "a number", str: "text", bool: "true or false"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _coerce(name: str, text: Any, annotation: Any, label: str = "--set {key}") -> Any:
    """Turn a ``--set`` value (a string) or a JSON value into the field's type; errors name the
    key with ``label`` (``"--set {key}"``, or e.g. ``"generator.json: config key {key}"``)."""
    where = label.format(key=name)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        if text is None or (isinstance(text, str) and text.lower() in ("none", "null")):
            if type(None) in args:
                return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(name, text, arg, label)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: expected {_describe(annotation)}, got {text!r}")
    if annotation is bool:
        if isinstance(text, bool):
            return text
        low = str(text).lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: expected true or false, got {text!r}")
    if annotation in (int, float, str):
        try:
            if annotation is int and isinstance(text, str) and not text.lstrip("-").isdigit():
                raise ValueError
            value = annotation(text)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{where}: expected {annotation.__name__}, got {text!r}") from None
        if annotation is float and not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {text!r}")
        return value
    if origin in (tuple, list):
        items = text
        if isinstance(text, str):
            items = [t for t in text.replace("(", "").replace(")", "").split(",") if t.strip()]
        if not isinstance(items, (list, tuple, str)):
            raise ConfigError(f"{where}: expected a list, got {text!r}")
        inner = args[0] if args else str
        return origin(_coerce(name, t.strip() if isinstance(t, str) else t, inner, label) for t in items)
    if origin is typing.Literal:
        if text not in args:
            raise ConfigError(f"{where}: expected one of {', '.join(map(str, args))}, got {text!r}")
        return text
    return text


def config_from_dict(cls: type[C], data: Mapping[str, Any], *, source: str = "config",
                     label: str = "--set {key}") -> C:
    """Build ``cls`` from a mapping, rejecting unknown keys with the list of valid ones; a bad
    value's error names its key with ``label``."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {unknown[0]!r} for {cls.__name__}; valid keys: {', '.join(names)}"
        )
    values = {k: _coerce(k, v, hints[k], label) for k, v in data.items()}
    return cls(**values)


def check_at_least(checks) -> None:
    """``(option, value, lowest)`` triples: a :class:`ConfigError` naming the first option below
    its lowest value (``value`` ``None``: not given, not checked)."""
    for name, value, low in checks:
        if value is not None and value < low:
            raise ConfigError(f"{name} must be at least {low}, got {value}")


def parse_overrides(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a pair without ``=`` is an error."""
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set {pair!r}: expected key=value")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def split_options(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``--set`` values split into the method's own (``key``) and plugins' (``PLUGIN.key``):
    ``({key: value}, {plugin: {key: value}})``."""
    own: dict[str, Any] = {}
    plugins: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        plugin, dot, name = key.partition(".")
        if dot:
            plugins.setdefault(plugin, {})[name] = value
        else:
            own[key] = value
    return own, plugins


def apply_overrides(config: C, overrides: Mapping[str, Any], *, source: str = "--set") -> C:
    """A copy of ``config`` with ``overrides`` applied (unknown keys list the valid ones).

    A config class with a ``PRESETS`` table (name -> values) and a ``preset`` field takes
    ``preset=NAME`` first: the preset's values, then the other overrides on top of them."""
    merged = dataclasses.asdict(config)
    presets = getattr(type(config), "PRESETS", None)
    name = str(overrides.get("preset", "") or "").strip()
    if presets is not None and name:
        if name not in presets:
            raise ConfigError(f"{source}: preset={name!r} is not a preset; presets: {', '.join(presets)}")
        merged.update(presets[name])
    merged.update(overrides)
    return config_from_dict(type(config), merged, source=source)


def resolve_options(config: C, overrides: Mapping[str, Any], *, source: str = "--set") -> tuple[C, dict[str, Any]]:
    """The one way ``--set`` values become typed: ``(config with them applied, {key: typed value})``.

    ``augment``, ``compare``, ``fit`` and ``sample`` all go through here, so a stage sees the same
    typed option (``False``, not ``"false"``) whichever command ran it. Unknown keys list the
    valid ones; a bad value names the key.
    """
    try:
        resolved = apply_overrides(config, overrides, source=source)
    except ConfigError as exc:
        raise _blame_given(exc, config, overrides, source) from None
    return resolved, {key: getattr(resolved, key) for key in overrides}


def _blame_given(exc: ConfigError, config: Any, overrides: Mapping[str, Any], source: str) -> ConfigError:
    """An error that names only keys the user did not set, said as what the keys set conflict
    with (a dependent key keeps its value; the user should hear which of theirs broke it)."""
    text = str(exc)
    fields = [f.name for f in dataclasses.fields(config)] if dataclasses.is_dataclass(config) else []
    found = [(m.start(), k) for k in fields if (m := re.search(rf"(?<![\w.]){re.escape(k)}(?![\w])", text))]
    if not overrides or not found or any(k not in fields for k in overrides):  # an unknown key says so itself
        return exc
    blamed = min(found)[1]  # the key the message is about: the first one it names
    if blamed in overrides:
        return exc
    option = source.split()[0]
    given = " ".join(f"{option} {k}={v}" for k, v in overrides.items())
    return ConfigError(f"{given}: conflicts with {blamed}={getattr(config, blamed)}, which was not set "
                       f"({text.removeprefix(option + ' ')}); set {blamed} too, or choose another value")


def coerce_option(config: Any, key: str, value: Any, label: str = "--set {key}") -> Any:
    """``value`` typed as the field ``key`` of the config dataclass ``config`` (one-line errors)."""
    return _coerce(key, value, typing.get_type_hints(type(config))[key], label)
