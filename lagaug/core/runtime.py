"""Seeds and devices: where every run's randomness and hardware choice come from.

Each stage of a run gets its own ``torch.Generator`` derived from the run seed and the stage's name
(not drawn in sequence from one stream), so a resumed run is identical to an uninterrupted one.
The device is resolved once by the caller and handed down; no model decides it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from lagaug.core.errors import ConfigError


def derive_seed(seed: int, *parts: Any) -> int:
    """A seed for one stage of a run, derived from the run seed and the stage's name/number."""
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "big")


def stage_generator(seed: int, *parts: Any) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed` ``(seed, *parts)``."""
    return torch.Generator().manual_seed(derive_seed(seed, *parts))


def resolve_device(name: str | torch.device | None) -> torch.device:
    """``auto`` picks CUDA when present, then MPS, else CPU; anything else must be available."""
    if isinstance(name, torch.device):
        return name
    name = (name or "cpu").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r} is not a device; use cpu, cuda, cuda:N, mps or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available here; use --device cpu or auto")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"--device {name}: MPS is not available here; use --device cpu or auto")
    return device
