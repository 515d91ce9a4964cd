"""Seeds, devices and the optimiser kernel: where every run's randomness and hardware choice come from.

Each stage of a run gets its own ``torch.Generator`` derived from the run seed and the stage's name
(not drawn in sequence from one stream), so a resumed run is identical to an uninterrupted one.
The device is resolved once by the caller and handed down; no model decides it.
:func:`adam` builds Adam / AdamW on torch's fused kernel where the device has one;
:func:`release_freed_memory` hands what torch freed back to the operating system after a fit and
after each ensemble.
"""

from __future__ import annotations

import ctypes
import hashlib
import sys
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


def adam(params, *, decoupled: bool = False, **options: Any) -> torch.optim.Optimizer:
    """``torch.optim.Adam`` (``decoupled``: ``AdamW``) with ``options``, on torch's fused kernel
    where the parameters' device has one (the same update in one pass per tensor; on a CPU the
    small models here spent a twentieth (the priors) to a fifth (a classifier member) of a step in
    the per-tensor loop), else the loop."""
    params = list(params)
    kind = torch.optim.AdamW if decoupled else torch.optim.Adam
    try:
        return kind(params, fused=True, **options)
    except (RuntimeError, ValueError):  # no fused kernel for this device or dtype
        return kind(params, **options)


def release_freed_memory() -> None:
    """Return the C heap's free pages to the operating system (glibc's ``malloc_trim``; nothing
    elsewhere). Tensors freed after a stage stay in the process's heap otherwise: after the
    generator's fit the README job kept ~100 MB it no longer used through every later stage."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        pass
