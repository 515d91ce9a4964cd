"""Atomic file writes: a file is either absent or complete, never half-written.

Every file a run writes goes through here: it is written to a temporary name in the same folder
and renamed into place (``os.replace`` is atomic on POSIX and Windows). Temporary names are unique
(``.NAME.XXXX.tmp``) so two writers never share one, and :func:`remove_stray_temporaries` clears the
ones a killed process left. Finished files get the permissions any tool would give them: 0666
less the process's umask.
"""

from __future__ import annotations

import json
import os
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


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` (mode per the
    umask), on any failure it is deleted and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
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


def atomic_write_lines(path: str | os.PathLike, lines: Iterable[str]) -> Path:
    return atomic_write_text(path, "".join(line.rstrip("\n") + "\n" for line in lines))


def atomic_save_safetensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None) -> Path:
    """Write ``tensors`` (and string ``metadata``) as a safetensors file, atomically (never pickle)."""
    from safetensors.torch import save_file

    with replacing(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
    return Path(path)


def remove_stray_temporaries(root: str | os.PathLike) -> int:
    """Delete temporary files (``*.tmp``) a killed writer left below ``root``; return how many."""
    count = 0
    for path in Path(root).rglob("*" + TMP_SUFFIX):
        if path.is_file():
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
