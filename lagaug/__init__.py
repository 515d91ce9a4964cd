"""lagaug: latent generative data augmentation.

The public API is imported lazily, so ``import lagaug`` (and ``lagaug --help``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("lagaug")

_LAZY = {
    "GeneratorMethod": "lagaug.core.contract.method",
    "Latents": "lagaug.core.contract.method",
    "Synthesis": "lagaug.core.contract.method",
    "StageContext": "lagaug.core.contract.method",
    "Regions": "lagaug.core.contract.method",
    "FitContext": "lagaug.core.contract.method",
    "ImageSet": "lagaug.core.data.dataset",
    "DataSplits": "lagaug.core.data.dataset",
    "load_data": "lagaug.core.data.sources",
    "Progress": "lagaug.core.progress",
    "LagaugError": "lagaug.core.errors",
    "ConfigError": "lagaug.core.errors",
    "DataError": "lagaug.core.errors",
    "CheckpointError": "lagaug.core.errors",
    "PluginError": "lagaug.core.errors",
    "WriteError": "lagaug.core.errors",
    "make_plugin_manager": "lagaug.core.contract.plugins",
    "AugmentConfig": "lagaug.core.run.config",
    "run_augment": "lagaug.core.run.loop",
    "fit_generator": "lagaug.core.run.generators",
    "load_generator": "lagaug.core.run.generators",
    "sample_images": "lagaug.core.run.generators",
    "CompareConfig": "lagaug.core.compare",
    "run_compare": "lagaug.core.compare",
}

__all__ = ["__version__", "hookimpl", *_LAZY]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lagaug' has no attribute {name!r}")
