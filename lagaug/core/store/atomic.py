"""Atomic file writes: a file is either absent or complete, never half-written.

Every file a run writes goes through here: it is written to a temporary name in the same folder
and renamed into place (``os.replace`` is atomic on POSIX and Windows). Temporary names are unique
(``.NAME.XXXX.tmp``) so two writers never share one, and :func:`remove_stray_temporaries` clears the
ones a killed process left (and the ``.tmpXXXXXX`` files the safetensors writer makes of its own).
Finished files get the permissions any tool would give them: 0666 less the process's umask.

A write that fails for the operating system's reasons (a full disk, no permission, a folder in
the way) raises :class:`~lagaug.core.errors.WriteError`, which names the file meant — never the
temporary one — and leaves that file as it was.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

TMP_SUFFIX = ".tmp"


def file_mode() -> int:
    """0666 less the umask: the mode a plain ``open(path, "w")`` would give a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temporary_path(path: Path) -> str:
    """A unique temporary file beside ``path`` (created empty, mode per the umask)."""
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, file_mode())
    return tmp


def write_error(path: str | os.PathLike, exc: OSError) -> OSError:
    """``exc`` (an OS error while writing ``path`` or its temporary) as a
    :class:`~lagaug.core.errors.WriteError` that names ``path``."""
    from lagaug.core.errors import WriteError

    if isinstance(exc, WriteError):
        return exc
    return WriteError(exc.errno, exc.strerror or str(exc), str(path))


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` (mode per the
    umask), on any failure it is deleted and ``path`` is untouched. An OS error (disk full, no
    permission, a folder named ``path``) is raised as a :class:`~lagaug.core.errors.WriteError`
    naming ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_path(path)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise write_error(path, exc) from None
        raise


def _atomic(path: Path, write) -> Path:
    with replacing(path) as tmp:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return _atomic(Path(path), lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def strict_json(obj: Any) -> str:
    """``obj`` as strict JSON on one line: non-finite numbers (NaN, infinity), which JSON has no
    words for, are written as ``null``."""
    import math

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(obj), allow_nan=False)


def atomic_write_lines(path: str | os.PathLike, lines: Iterable[str]) -> Path:
    return atomic_write_text(path, "".join(line.rstrip("\n") + "\n" for line in lines))


def atomic_save_safetensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None) -> Path:
    """Write ``tensors`` (and string ``metadata``) as a safetensors file, atomically (never pickle)."""
    from safetensors.torch import save_file

    with replacing(path) as tmp:
        try:
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        except OSError:
            raise
        except Exception as exc:  # safetensors' own error type wraps the OS error's number
            code = re.search(r"os error (\d+)", str(exc))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), tmp) from None
    return Path(path)


#: the safetensors writer's own temporary files (Rust's tempfile: ``.tmp`` and six characters)
_RUST_TMP = re.compile(r"\.tmp[A-Za-z0-9]{6}")


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is a temporary file of a writer: ours (``.NAME.XXXX.tmp``, or any
    ``*.tmp``) or the safetensors writer's (``.tmpXXXXXX``)."""
    return path.name.endswith(TMP_SUFFIX) or _RUST_TMP.fullmatch(path.name) is not None


def remove_stray_temporaries(root: str | os.PathLike) -> int:
    """Delete the temporary files a killed writer left below ``root`` (:func:`is_temporary`);
    return how many."""
    count = 0
    for path in list(Path(root).rglob("*")) if Path(root).is_dir() else []:
        if is_temporary(path) and path.is_file():
            path.unlink()
            count += 1
    return count


def save_png(path: str | os.PathLike, image) -> Path:
    """Write one image (uint8 or float ``(C, H, W)`` tensor / array) as a PNG, atomically."""
    import io

    import numpy as np
    from PIL import Image

    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    if arr.ndim == 3:
        arr = arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())


def check_output_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Fail with one line, before any work, when ``path`` cannot become a folder we write into.

    Refused: an existing file; a path below a file; a folder (or the nearest existing parent of a
    new one) where a file cannot be created. Nothing is left behind by the check.
    """
    from lagaug.core.errors import ConfigError

    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path}: is a file, not a folder; choose another {option}")
    probe_dir = path
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise ConfigError(f"{option} {path}: {probe_dir} is a file, not a folder; choose another {option}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".lagaug-write-check.", dir=probe_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"{option} {path}: cannot write in {probe_dir} ({exc.strerror or exc}); choose another {option}"
        ) from None
    return path
