"""Content fingerprints: how a resumed run recognises its data, pool and generator whatever path
they were given by (relative, absolute, moved, copied)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lagaug.core.data.dataset import DataSplits, ImageSet


def _update_set(h, part: ImageSet) -> None:
    h.update("\n".join(part.ids).encode())
    h.update(part.labels.numpy().tobytes())
    h.update(part.images.contiguous().numpy().tobytes())


def splits_fingerprint(splits: DataSplits) -> str:
    """A hash of every image, label and id of train, validation and test (ids are relative to the
    data's root, so the same data at another path has the same fingerprint)."""
    h = hashlib.sha256()
    for part in (splits.train, splits.val, splits.test):
        _update_set(h, part)
    h.update("\n".join(splits.class_names).encode())
    return h.hexdigest()[:24]


def sets_fingerprint(*parts: ImageSet) -> str:
    """A hash of every image, label and id of the given sets (in order)."""
    h = hashlib.sha256()
    for part in parts:
        _update_set(h, part)
        h.update(b"|")
    return h.hexdigest()[:24]


def pool_fingerprint(pool) -> str | None:
    """A cheap fingerprint of an unlabelled pool (what it is, not where): file names relative to
    the pool's folder and sizes, an array's bytes, or a synthetic pool's parameters."""
    if pool is None:
        return None
    h = hashlib.sha256(f"{type(pool).__name__}:{len(pool)}:{pool.channels}:{pool.image_size}".encode())
    files = getattr(pool, "files", None)
    if files:
        root = Path(files[0]).resolve().parent if len(files) == 1 else Path(_common_parent(files))
        for f in files:
            path = Path(f).resolve()
            h.update(f"{path.relative_to(root).as_posix()}:{path.stat().st_size}\n".encode())
    images = getattr(pool, "images", None)
    if images is not None:
        h.update(images.tobytes())
    for key in ("seed", "size"):
        if hasattr(pool, key):
            h.update(f"{key}={getattr(pool, key)}".encode())
    return h.hexdigest()[:24]


def _common_parent(files) -> str:
    import os

    return os.path.commonpath([str(Path(f).resolve().parent) for f in files])


def generator_fingerprint(directory: str | Path | None) -> str | None:
    """A hash of a saved generator's ``generator.json`` and weights."""
    if directory is None:
        return None
    from lagaug.core.store.generator import GENERATOR_JSON, GENERATOR_WEIGHTS

    h = hashlib.sha256()
    for name in (GENERATOR_JSON, GENERATOR_WEIGHTS):
        path = Path(directory) / name
        if path.exists():
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:24]
