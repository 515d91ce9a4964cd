"""Reading other implementations' checkpoint files safely (``lagaug import-checkpoint``).

Files load with ``torch.load(weights_only=True)`` and an allow-list of exactly the classes a format
uses (``argparse.Namespace`` for the rosinality formats). A file that asks to run any other code is
refused with one line that says so, whatever wording the installed torch uses: a well-formed torch
file (a zip archive) whose unpickling ``weights_only`` stops can only be asking for code.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping

from lagaug.core.errors import CheckpointError

ALLOWED_GLOBALS = [argparse.Namespace]


def load_checkpoint_file(path: str | os.PathLike, *, allowed: list | None = None, what: str = "a reference checkpoint",
                         refuse: Callable[[Path, str], CheckpointError | None] | None = None) -> Any:
    """``torch.load`` ``path`` on the CPU with ``weights_only`` and the ``allowed`` classes.

    ``refuse(path, global_name)`` may return a more specific error for a refused class (e.g.
    NVIDIA's pickles); otherwise the error says the file holds code lagaug will not run.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals(allowed if allowed is not None else ALLOWED_GLOBALS), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own multi-line advice would precede our one line
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        name = found.group(1) if found else ""
        special = refuse(path, name) if refuse is not None and name else None
        if special is not None:
            raise special from None
        if not zipfile.is_zipfile(path):  # not a torch file at all: its pickle is simply broken
            raise CheckpointError(f"{path}: not a readable torch checkpoint ({last_line(str(exc))})") from None
        what_it_holds = f" ({name})" if name else ""
        raise CheckpointError(
            f"{path}: refused to load: it holds Python objects{what_it_holds} whose code lagaug will not run; "
            f"{what} may hold only tensors, plain containers and argparse.Namespace") from None
    except Exception as exc:  # zip / IO errors of several types
        raise CheckpointError(f"{path}: not a readable torch checkpoint "
                              f"({type(exc).__name__}: {last_line(str(exc))})") from None


def last_line(text: str) -> str:
    """The most informative line of a library's (multi-line) error message, shortened."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    informative = [ln for ln in lines if "error" in ln.lower() or "unsupported" in ln.lower()]
    return (informative or lines or ["unknown error"])[-1][:200]


def count_indexed(state: Mapping[str, Any], pattern: str) -> int:
    """How many distinct N match ``pattern`` (a regex with one ``(\\d+)`` group) at a key's start."""
    rx = re.compile(pattern)
    return len({m.group(1) for k in state if (m := rx.match(k))})
