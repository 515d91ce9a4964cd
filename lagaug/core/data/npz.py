"""``.npz`` sources: arrays ``x_train``, ``y_train``, ``x_test``, ``y_test`` (and ``class_names``)."""

from __future__ import annotations

import warnings
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lagaug.core.data.dataset import DataSplits, ImageSet
from lagaug.core.data.images import DepthWarning, _resize, _stack, resize_mask
from lagaug.core.data.splits import carve
from lagaug.core.errors import DataError
from lagaug.core.progress import Progress

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
MASK_KEYS = {"train": "m_train", "test": "m_test"}  # optional: the defect of each image (0 = none)


def _open_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` (no pickles); any failure is a DataError naming the file."""
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} cannot be read as an .npz file (it is not a zip archive); save it with numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(f"{path} holds pickled objects; save plain numeric arrays (and string class_names)") from None
        raise DataError(f"{path} cannot be read as an .npz file ({exc}); save it with numpy.savez") from None
    except Exception as exc:
        raise DataError(f"{path} cannot be read as an .npz file ({type(exc).__name__}: {exc}); save it with numpy.savez") from None


def _npz_scale(arrays: list[np.ndarray]) -> dict[str, float]:
    """The full scale of a file's image arrays, one for its float arrays and one for its integer
    arrays (one rule for all of them; see :mod:`lagaug.core.data.depth`)."""
    from lagaug.core.data.depth import depth_scale

    def top(kind: str) -> float:
        return max((float(np.nanmax(a)) for a in arrays if a.dtype.kind in kind and a.size), default=0.0)

    floats, ints = top("f"), top("iu")
    return {"f": 1.0 if floats <= 1.0 else (255.0 if floats <= 255 else floats),
            "iu": 255.0 if ints <= 255 else depth_scale(ints)}


def _npz_images(arr: np.ndarray, key: str, path: Path, scale: dict[str, float] | None = None) -> np.ndarray:
    """Check and convert image array ``key`` to uint8 ``(N, H, W)`` or ``(N, H, W, 3)``; wider
    types are mapped by ``scale`` (:func:`_npz_scale`), NaN to 0 and alpha dropped, with warnings."""
    from lagaug.core.data.depth import to_uint8

    if arr.ndim == 4 and arr.shape[-1] in (1, 3, 4):
        if arr.shape[-1] == 4:
            warnings.warn(f"{path}: {key} has an alpha channel; it is ignored", DepthWarning, stacklevel=3)
        arr = arr[..., 0] if arr.shape[-1] == 1 else arr[..., :3]
    elif arr.ndim != 3:
        raise DataError(
            f"{path}: {key} has shape {arr.shape}; images must be (N, H, W) or (N, H, W, C) with C 1, 3 or 4"
        )
    if arr.shape[0] == 0:
        raise DataError(f"{path}: {key} holds no images; every split needs at least one")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind not in "fiu":
        raise DataError(f"{path}: {key} has dtype {arr.dtype}; store images as uint8 (or wider integers, or floats)")
    if arr.dtype.kind in "iu" and arr.min() < 0:
        raise DataError(f"{path}: {key} holds negative values ({int(arr.min())}); store images as unsigned values")
    if arr.dtype.kind in "iu" and arr.dtype.itemsize > 4 and int(arr.max()) > 65535:
        raise DataError(
            f"{path}: {key} holds {arr.dtype} values up to {int(arr.max())}; integer images are read as 8 to 16 bits "
            "(0..65535, in any integer type) or as 32 bits in a 32-bit type — store them as uint16 scaled to "
            "0..65535, or as uint32")
    notes: Counter = Counter()
    full = (scale or _npz_scale([arr]))["f" if arr.dtype.kind == "f" else "iu"]
    top = float(np.nanmax(arr)) if arr.size else 0.0
    if 0 < top and top * 255.0 / full < 0.5:
        raise DataError(
            f"{path}: {key}: its largest value, {top:g}, is less than one grey level of the full scale {full:.0f} "
            f"({arr.dtype}, scaled by the smallest standard depth that holds the data): every image would be "
            "black; store the images scaled to their type's range")
    out = np.stack([to_uint8(img, full, notes) for img in arr])
    if notes["nan"]:
        warnings.warn(f"{path}: {key}: {notes['nan']} image(s) hold NaN values; they are read as 0 (black)",
                      DepthWarning, stacklevel=3)
    return out


def _npz_labels(arr: np.ndarray, key: str, path: Path, n_images: int) -> np.ndarray:
    """Check label array ``key``: integral, 1-D, one per image, non-negative."""
    arr = arr.reshape(-1) if arr.ndim == 2 and arr.shape[1] == 1 else arr
    if arr.ndim != 1 or arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and not np.all(arr == np.round(arr))):
        raise DataError(f"{path}: {key} must be a 1-D array of integer class indices, got {arr.dtype} {arr.shape}")
    if len(arr) != n_images:
        x_key = key.replace("y_", "x_")
        raise DataError(f"{path}: {x_key} has {n_images} images but {key} has {len(arr)} labels; they must match")
    if len(arr) and arr.min() < 0:
        raise DataError(f"{path}: {key} holds label {int(arr.min())}; labels must be class indices 0, 1, ...")
    return arr.astype(np.int64)


def _npz_class_names(arrays: dict, path: Path, top_label: int) -> list[str]:
    """``class_names`` from the file (checked against the labels), else ``"0"``, ``"1"``, ..."""
    if "class_names" not in arrays:
        return [str(i) for i in range(top_label + 1)]
    names = arrays["class_names"]
    if names.ndim != 1:
        raise DataError(f"{path}: class_names must be a 1-D array of names, got shape {names.shape}")
    names = [str(n) for n in names.tolist()]
    if top_label >= len(names):
        raise DataError(
            f"{path}: labels go up to {top_label} but class_names lists {len(names)} classes "
            f"(0..{len(names) - 1}); fix the labels or class_names"
        )
    return names


def _resize_array(images: np.ndarray, size: int, task) -> list[np.ndarray]:
    out = []
    for img in images:
        out.append(np.asarray(_resize(Image.fromarray(img), size)))
        task.advance()
    return out


def _npz_masks(arrays: dict, split: str, images: np.ndarray, path: Path, image_size: int) -> torch.Tensor | None:
    """``m_train`` / ``m_test`` checked against the images (same count, height and width) and
    resized by overlap to ``image_size``; ``None`` when the file has no such key."""
    key = MASK_KEYS[split]
    if key not in arrays:
        return None
    masks = arrays[key]
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    want = images.shape[:3]
    if masks.ndim != 3 or masks.shape != want:
        raise DataError(f"{path}: {key} has shape {masks.shape}; masks must be {want} (one (H, W) mask per "
                        f"image of x_{split}, 0 where there is no defect)")
    if masks.dtype.kind not in "biuf" or (masks.dtype.kind in "iuf" and np.nanmin(masks) < 0):
        raise DataError(f"{path}: {key} must hold 0 (no defect) and positive values (defect), got "
                        f"{masks.dtype} from {np.nanmin(masks)}")
    return torch.from_numpy(np.stack([resize_mask(m, image_size) for m in masks]))


def load_npz(path: Path, image_size, seed, val_fraction, progress) -> DataSplits:
    arrays = _open_npz(path)
    for key in NPZ_KEYS:
        if key not in arrays:
            have = ", ".join(sorted(arrays)) or "no arrays"
            raise DataError(f"{path} has no array {key!r} (it has: {have}); an .npz needs {', '.join(NPZ_KEYS)}")
    scale = _npz_scale([arrays["x_train"], arrays["x_test"]])
    x = {s: _npz_images(arrays[f"x_{s}"], f"x_{s}", path, scale) for s in ("train", "test")}
    y = {s: _npz_labels(arrays[f"y_{s}"], f"y_{s}", path, len(x[s])) for s in ("train", "test")}
    top = int(max(y["train"].max(), y["test"].max()))
    class_names = _npz_class_names(arrays, path, top)
    if len(np.unique(y["train"])) < 2:
        raise DataError(f"{path}: y_train holds only one class ({int(y['train'][0])}); a classifier needs at least two")
    channels = 3 if any(a.ndim == 4 for a in x.values()) else 1
    sets = {}
    with (progress or Progress(quiet=True)).task(f"reading {path.name}", total=sum(map(len, x.values()))) as task:
        for s in ("train", "test"):
            images = _resize_array(x[s], image_size, task)
            ids = [f"npz:{s}/{i}" for i in range(len(images))]
            sets[s] = ImageSet(_stack(images, channels), torch.from_numpy(y[s]), list(class_names), ids,
                               masks=_npz_masks(arrays, s, x[s], path, image_size))
    sets.update(carve(sets["train"], {"val": val_fraction}, seed, str(path)))
    description = (
        f".npz {path}: {len(class_names)} classes, {channels} channel(s), {image_size}px; "
        f"train {len(sets['train'])}, val {len(sets['val'])} (carved from x_train, seed {seed}), "
        f"test {len(sets['test'])}"
    )
    return DataSplits(sets["train"], sets["val"], sets["test"], description=description,
                      extra={"source": str(path), "carved": ["val"], "split_seed": seed,
                             "full_scale": scale["iu"] if scale["iu"] > 255 else None})
