"""A fitted generator's folder: ``generator.json`` (method name and version, config, image shape,
class names, the lagaug that wrote it) beside ``weights.safetensors``, and the checks every
reader applies to the JSON before any method is built. :meth:`GeneratorMethod.save` and
:meth:`GeneratorMethod.load <lagaug.core.contract.method.GeneratorMethod.load>` write and read
them; nothing here imports torch."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lagaug.core.errors import CheckpointError

GENERATOR_JSON = "generator.json"
GENERATOR_WEIGHTS = "weights.safetensors"


def read_generator_meta(directory: str | os.PathLike) -> dict[str, Any]:
    """Read and validate ``generator.json`` of a saved generator directory.

    Every problem is a one-line :class:`CheckpointError` that names the file; a generator saved by
    a newer lagaug is reported with a warning (it may still load)."""
    import warnings

    path = Path(directory) / GENERATOR_JSON
    if not path.is_file():
        raise CheckpointError(f"{directory}: not a saved generator (no {GENERATOR_JSON}); use `lagaug fit` to make one")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable ({exc}); save the generator again") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    for key in ("method", "config", "image_shape", "class_names"):
        if key not in meta:
            raise CheckpointError(f"{path}: missing key {key!r}")
    version = meta.get("method_version", 1)
    checks = (
        ("method", isinstance(meta["method"], str) and meta["method"], "a method name"),
        ("method_version", isinstance(version, int) and not isinstance(version, bool) and version >= 1,
         "a positive whole number"),
        ("config", isinstance(meta["config"], dict), "an object of config keys"),
        ("image_shape", isinstance(meta["image_shape"], list) and len(meta["image_shape"]) == 3
         and all(isinstance(v, int) and v > 0 for v in meta["image_shape"]), "[channels, height, width]"),
        ("class_names", isinstance(meta["class_names"], list) and meta["class_names"]
         and all(isinstance(v, str) for v in meta["class_names"]), "a list of class names"),
        ("extra", isinstance(meta.get("extra", {}), dict), "an object"),
    )
    for key, ok, expected in checks:
        if not ok:
            value = meta.get(key, version if key == "method_version" else None)
            raise CheckpointError(f"{path}: {key} must be {expected}, got {value!r}")
    meta["method_version"] = version
    saved_by = str(meta.get("lagaug_version", ""))
    if saved_by and _newer(saved_by):
        from lagaug import __version__

        warnings.warn(f"{path}: saved by lagaug {saved_by}, newer than this lagaug {__version__}; "
                      "upgrade lagaug if it does not load as expected", stacklevel=2)
    return meta


def _newer(version: str) -> bool:
    """Whether lagaug ``version`` is newer than this one (numeric parts compared)."""
    from lagaug import __version__

    def parts(v: str) -> tuple[int, ...]:
        out = []
        for p in v.split("."):
            digits = "".join(ch for ch in p if ch.isdigit())
            out.append(int(digits) if digits else 0)
        return tuple(out)

    return parts(version) > parts(__version__)
