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
#: what a plain torch file's pickle imports by itself (tensors, storages, ordered dicts), besides ALLOWED_GLOBALS
ALLOWED_NAMES = {"argparse.Namespace", "collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                 "torch._utils._rebuild_parameter", "torch.FloatStorage", "torch.LongStorage", "torch.DoubleStorage",
                 "torch.HalfStorage", "torch.IntStorage", "torch.ByteStorage", "torch.BoolStorage",
                 "torch.BFloat16Storage", "torch.storage.UntypedStorage"}


def load_checkpoint_file(path: str | os.PathLike, *, allowed: list | None = None, what: str = "a reference checkpoint",
                         refuse: Callable[[Path, str], CheckpointError | None] | None = None) -> Any:
    """``torch.load`` ``path`` on the CPU with ``weights_only`` and the ``allowed`` classes.

    ``refuse(path, global_name)`` may return a more specific error for a refused class (e.g.
    NVIDIA's pickles); otherwise the error says the file holds code lagaug will not run. A file
    that is neither a torch zip archive nor a pickle (empty, text, a folder) is said to be so.
    """
    import torch

    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file; give the checkpoint file itself")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    with open(path, "rb") as fh:
        head = fh.read(2)
    if not head:
        raise CheckpointError(f"{path}: not a readable torch checkpoint (an empty file)")
    zipped = zipfile.is_zipfile(path)
    if not zipped and head[:1] != b"\x80":  # a pickle starts with its protocol
        raise CheckpointError(f"{path}: not a readable torch checkpoint (neither a zip archive nor a pickle)")
    try:
        with torch.serialization.safe_globals(allowed if allowed is not None else ALLOWED_GLOBALS), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own multi-line advice would precede our one line
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        names = [found.group(1)] if found else ([] if zipped else pickle_globals(path))
        name = names[0] if names else ""
        special = refuse(path, name) if refuse is not None and name else None
        if special is not None:
            raise special from None
        if not name and not zipped:  # not a torch file at all: its pickle is simply broken
            raise CheckpointError(f"{path}: not a readable torch checkpoint ({last_line(str(exc))})") from None
        what_it_holds = f" ({name})" if name else ""
        raise CheckpointError(
            f"{path}: refused to load: it holds Python objects{what_it_holds} whose code lagaug will not run; "
            f"{what} may hold only tensors, plain containers and argparse.Namespace") from None
    except Exception as exc:  # zip / IO errors of several types
        kind = "a damaged torch zip archive" if zipped else "a damaged or foreign pickle"
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({kind}: "
                              f"{type(exc).__name__}: {last_line(str(exc))})") from None


def pickle_globals(path: Path) -> list[str]:
    """The classes and functions (``module.name``) the pickles in ``path`` would import, read
    from their opcodes without running anything (a legacy torch file holds several pickles)."""
    import pickletools

    names: list[str] = []
    with open(path, "rb") as fh:
        while True:
            strings: list[str] = []
            try:
                for op, arg, _ in pickletools.genops(fh):
                    if op.name == "GLOBAL":
                        names.append(str(arg).replace(" ", "."))
                    elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                        names.append(f"{strings[-2]}.{strings[-1]}")
                    elif isinstance(arg, str):
                        strings.append(arg)
            except Exception:  # the end of the file, or bytes that are not a pickle
                break
    return [n for n in dict.fromkeys(names) if n not in ALLOWED_NAMES]


def check_tensor(path: Path, key: str, value: Any, expected: Any = None) -> None:
    """A one-line :class:`CheckpointError` unless ``value`` can be a weight: a tensor of real
    numbers, every one finite; with ``expected`` (the tensor it will replace), of the same
    number of dimensions and, where that is floating point, floating point too."""
    import torch

    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{path}: key {key!r} holds a {type(value).__name__}, expected a tensor")
    if value.is_complex():
        raise CheckpointError(f"{path}: key {key!r} holds complex numbers ({value.dtype}); weights are real numbers")
    if expected is not None:
        if value.dim() != expected.dim():
            raise CheckpointError(f"{path}: key {key!r} has {value.dim()} dimension(s) {tuple(value.shape)}, "
                                  f"expected {expected.dim()} {tuple(expected.shape)}")
        if expected.is_floating_point() and not value.is_floating_point():
            raise CheckpointError(f"{path}: key {key!r} holds {value.dtype} values, expected floating-point weights")
    if value.is_floating_point():
        bad = int((~torch.isfinite(value)).sum())
        if bad:
            raise CheckpointError(f"{path}: key {key!r} holds {bad} value(s) that are not finite (NaN or infinity); "
                                  "the file is damaged — use another checkpoint")


def need_tensor(state: Mapping[str, Any], key: str, path: Path, dims: int, missing: str) -> Any:
    """``state[key]``, checked to have ``dims`` dimensions before its shape is read; ``missing``
    ends the error for an absent key."""
    if key not in state:
        raise CheckpointError(f"{path}: missing key {key!r}; {missing}")
    value = state[key]
    if value.dim() != dims:
        raise CheckpointError(f"{path}: key {key!r} has {value.dim()} dimension(s) {tuple(value.shape)}, "
                              f"expected {dims}; not a checkpoint of the reference implementation")
    return value


def last_line(text: str, limit: int = 200) -> str:
    """The most informative line of a library's (multi-line) error message; a long one is cut at
    the end of a sentence, never inside one."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    informative = [ln for ln in lines if "error" in ln.lower() or "unsupported" in ln.lower()]
    line = (informative or lines or ["no details"])[-1]
    end = line.rfind(". ", 0, limit)
    return line[: end + 1] if len(line) > limit and end > 0 else line


def count_indexed(state: Mapping[str, Any], pattern: str) -> int:
    """How many distinct N match ``pattern`` (a regex with one ``(\\d+)`` group) at a key's start."""
    rx = re.compile(pattern)
    return len({m.group(1) for k in state if (m := rx.match(k))})
