"""Work done once: what a run computes from content alone, kept by the fingerprint of its inputs.

A generator fit and a baseline ensemble depend only on their inputs (the images and labels, the
pool, the configuration, the seed, the lagaug version); a second run with the same inputs takes
them from the cache instead of computing them again, and says so. ``--refit`` computes them anew
(and replaces the cached copy). An entry that cannot be read back is computed again with a warning.

The cache lives in ``$LAGAUG_CACHE`` (``off`` turns it off), else ``$XDG_CACHE_HOME/lagaug``, else
``~/.cache/lagaug``: ``KIND/KEY/`` holds the entry's files and ``entry.json`` (what it is, when
it was made, by which run), written last, so an entry without it is incomplete and ignored. A run
directory always gets its own copy of what it used (hard links where the file system allows), so
the run stays complete when the cache is cleared.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

CACHE_ENV = "LAGAUG_CACHE"
ENTRY_FILE = "entry.json"


class CacheWarning(UserWarning):
    """A cached entry could not be used; the work is done again."""


def cache_root() -> Path | None:
    """Where the cache lives, or ``None`` when ``$LAGAUG_CACHE`` is ``off``."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        if value.strip().lower() in ("", "off", "0", "no", "none"):
            return None
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lagaug"


def cache_key(parts: dict[str, Any]) -> str:
    """A key for ``parts`` (JSON-able; order of keys does not matter), with the lagaug version in it."""
    from lagaug import __version__

    text = json.dumps({**parts, "lagaug": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


class CacheEntry:
    """One entry: ``KIND/KEY/`` below the cache root (inactive when the cache is off)."""

    def __init__(self, kind: str, key: str, root: Path | None = None):
        self.kind, self.key = kind, key
        root = cache_root() if root is None else root
        self.folder = None if root is None else Path(root) / kind / key

    @property
    def active(self) -> bool:
        return self.folder is not None

    def exists(self) -> bool:
        return self.folder is not None and (self.folder / ENTRY_FILE).is_file()

    def meta(self) -> dict[str, Any]:
        try:
            return json.loads((self.folder / ENTRY_FILE).read_text())
        except (OSError, ValueError, TypeError):
            return {}

    def files(self) -> list[str]:
        return [str(f) for f in self.meta().get("files", [])]

    def copy_into(self, dest: str | os.PathLike) -> list[Path]:
        """Put the entry's files into ``dest`` (same relative names); returns the paths written."""
        out = []
        for name in self.files():
            src = self.folder / name
            if not src.is_file():
                raise FileNotFoundError(f"{src} is missing from the cache entry")
            _link_or_copy(src, Path(dest) / name)
            out.append(Path(dest) / name)
        return out

    def store(self, source: str | os.PathLike, names: list[str], meta: dict[str, Any] | None = None) -> None:
        """Keep files ``names`` of folder ``source`` as this entry (replacing an older one). A
        failure to write the cache is a warning, never an error of the run."""
        if self.folder is None:
            return
        try:
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{self.key}.", dir=self.folder.parent))
            for name in names:
                _link_or_copy(Path(source) / name, tmp / name)
            info = {"kind": self.kind, "key": self.key, "files": list(names),
                    "made": time.strftime("%Y-%m-%d %H:%M:%S"), **(meta or {})}
            (tmp / ENTRY_FILE).write_text(json.dumps(info, indent=2) + "\n")
            if self.folder.exists():
                shutil.rmtree(self.folder, ignore_errors=True)
            os.replace(tmp, self.folder)
        except OSError as exc:
            warnings.warn(f"could not keep the {self.kind} in the cache {self.folder} ({exc.strerror or exc}); "
                          f"the next run computes it again (set {CACHE_ENV}=off to stop trying)",
                          CacheWarning, stacklevel=2)

    def drop(self, why: str) -> None:
        """Remove a damaged entry, with a warning naming it."""
        warnings.warn(f"the cached {self.kind} {self.folder} cannot be used ({why}); computing it again",
                      CacheWarning, stacklevel=3)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def reuse_or_make(kind: str, key: str, folder: str | os.PathLike, make, load, *, refit: bool = False,
                  names=None, meta: dict[str, Any] | None = None, log=None) -> tuple[Any, dict[str, Any] | None]:
    """``load()`` the entry ``kind/key`` after copying it into ``folder``, or ``make()`` it (which
    writes into ``folder``) and keep it in the cache. ``names(folder)`` lists the files to keep
    (default: every file directly in ``folder``). Returns the result and, when the cache gave it,
    what the entry says about itself (``None`` when it was made here). ``log(message)`` hears
    what happened."""
    entry = CacheEntry(kind, key)
    folder = Path(folder)
    if entry.exists() and not refit:
        try:
            entry.copy_into(folder)
            result = load()
        except Exception as exc:  # a damaged entry (missing or unreadable files): make it again
            for name in entry.files():
                (folder / name).unlink(missing_ok=True)
            entry.drop(f"{type(exc).__name__}: {exc}")
        else:
            info = {k: v for k, v in entry.meta().items() if k != "files"}
            if log is not None:
                log(f"{kind}: reused the cached copy made {info.get('made', '?')} (key {key}); --refit to compute it again")
            return result, info
    result = make()
    listed = names(folder) if names is not None else sorted(p.name for p in folder.iterdir() if p.is_file())
    entry.store(folder, list(listed), meta)
    return result, None
