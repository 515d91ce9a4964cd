"""Dataset sources: the embedded default, image folders and ``.npz`` arrays, and unlabelled pools.

:func:`load_data` turns what the user names into :class:`~lagaug.core.data.dataset.DataSplits`:

* ``None`` or ``"default"``: the embedded synthetic inspection set (:mod:`lagaug.core.data.synthetic`);
* a folder with one sub-folder per class, or with ``train/`` (and optionally ``val/``, ``test/``)
  folders that each hold class folders; splits it lacks are carved from ``train`` by a seeded,
  stratified split;
* an ``.npz`` file with ``x_train``, ``y_train``, ``x_test``, ``y_test`` (and optionally
  ``class_names``); validation is carved from the training arrays.

Images are resized to ``image_size`` x ``image_size``. A data set is gray (1 channel) when all its
images are gray, else RGB (3 channels). Anything wrong with the input raises
:class:`~lagaug.core.errors.DataError` (or :class:`~lagaug.core.errors.ConfigError` for an option)
with one line that names the file and says what to do. Unreadable image files are skipped with a
:class:`BadImageWarning` (``bad_images="warn"``) or stop the load (``bad_images="error"``).
"""

from __future__ import annotations

import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from lagaug.core.data.dataset import DataSplits, ImagePool, ImageSet, SquarePool
from lagaug.core.data.depth import Wide, describe as describe_notes, finish as finish_depth
from lagaug.core.data.splits import shared_images, stratified_split
from lagaug.core.data.synthetic import SyntheticPool, make_default_splits
from lagaug.core.errors import ConfigError, DataError
from lagaug.core.progress import Progress

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
SPLITS = ("train", "val", "test")
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
DEFAULT_POOL_SIZE = 2000
_IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})
_GRAY_MODES = frozenset({"1", "L", "LA", "La"})
_WIDE_GRAY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


class BadImageWarning(UserWarning):
    """An image file was skipped because it cannot be read."""


class DepthWarning(UserWarning):
    """Loading dropped information (transparency, NaN values)."""


class OverlapWarning(UserWarning):
    """Some test (or validation) images are pixel-identical to training images."""


class _BadImage(Exception):
    """Internal: why one file cannot be used (turned into a warning or a DataError)."""


# -- options ----------------------------------------------------------------------------------------


def _check_options(image_size, seed, val_fraction, test_fraction, bad_images) -> None:
    if not isinstance(image_size, int) or isinstance(image_size, bool) or not 8 <= image_size <= 1024:
        raise ConfigError(f"--image-size must be a whole number from 8 to 1024, got {image_size!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"--split-seed must be a whole number of 0 or more, got {seed!r}")
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not isinstance(value, (int, float)) or not 0 < value < 1:
            raise ConfigError(f"{name} must be a number between 0 and 1 (exclusive), got {value!r}")
    if val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"val_fraction + test_fraction must be below 1 (got {val_fraction} + {test_fraction}); "
            "leave some images for training"
        )
    if bad_images not in ("warn", "error"):
        raise ConfigError(f"--bad-images must be 'warn' or 'error', got {bad_images!r}")


# -- reading one image ------------------------------------------------------------------------------


def _to_gray_or_rgb(im: Image.Image, notes: Counter | None = None) -> Image.Image:
    """An ``L`` image for 8-bit gray modes, an ``F`` image for wide gray modes (16/32-bit, float;
    scaled later, by the data set's rule in :mod:`lagaug.core.data.depth`), else ``RGB``.
    Transparency is dropped (counted in ``notes["alpha"]``)."""
    has_alpha = im.mode in ("RGBA", "LA", "La", "RGBa", "PA") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha and notes is not None:
        notes["alpha"] += 1
    if im.mode in _GRAY_MODES:
        return im.convert("L")
    if im.mode in _WIDE_GRAY_MODES:
        return Image.fromarray(np.asarray(im, dtype=np.float32), mode="F")
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA")  # palette transparency is resolved before dropping alpha
    return im.convert("RGB")


def _resize(im: Image.Image, size: int) -> Image.Image:
    """Bilinear resize to ``size`` x ``size`` (Pillow widens the filter when shrinking: antialiased)."""
    if im.size == (size, size):
        return im
    return im.resize((size, size), Image.Resampling.BILINEAR)


def _read_image(path: Path, size: int, mode: str | None = None, notes: Counter | None = None):
    """Decode ``path`` to ``uint8`` ``(size, size)`` (gray) or ``(size, size, 3)`` (RGB), or a
    :class:`~lagaug.core.data.depth.Wide` gray image that :func:`~lagaug.core.data.depth.finish`
    scales with the rest of its data set.

    ``mode`` ``"L"`` or ``"RGB"`` forces the result; ``None`` keeps gray gray and colour RGB.
    Raises :class:`_BadImage` with the reason when the file is not a readable image.
    """
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise _BadImage(f"is not an image file (extension {path.suffix or 'none'})")
    if path.stat().st_size == 0:
        raise _BadImage("is empty (0 bytes)")
    try:
        with Image.open(path) as im:
            im.load()  # decode everything now: truncated files fail here
            floating = im.mode == "F"
            im = _to_gray_or_rgb(im, notes)
    except Image.UnidentifiedImageError:
        raise _BadImage("is not an image Pillow can identify (a non-image file, or badly damaged)") from None
    except Exception as exc:  # Pillow raises many types for broken files; all mean "unreadable"
        detail = " ".join(str(exc).split())  # keep the message on one line
        raise _BadImage(f"cannot be decoded, it may be truncated or corrupt ({type(exc).__name__}: {detail})") from None
    if im.mode == "F":
        wide = np.asarray(_resize(im, size), dtype=np.float32)
        return Wide(np.repeat(wide[..., None], 3, axis=2) if mode == "RGB" else wide, floating)
    if mode is not None and im.mode != mode:
        im = im.convert(mode)
    return np.asarray(_resize(im, size))


def read_image_file(path: str | Path, *, size: int, channels: int) -> torch.Tensor:
    """One image file as ``uint8`` ``(channels, size, size)``; a DataError names it if unreadable.
    A wide (16-bit, float) image is scaled by the depth rule applied to it alone."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image {path} does not exist; give the path of an image file")
    try:
        img = _read_image(path, size, "L" if channels == 1 else "RGB")
    except _BadImage as bad:
        raise DataError(f"{path} {bad}; give a readable .png/.jpg/... image") from None
    return _stack(finish_depth([img])[0], channels)[0]


def _report_bad(path: Path, reason: str, bad_images: str) -> None:
    """Stop (``"error"``) or warn and go on (``"warn"``) for one unreadable file."""
    if bad_images == "error":
        raise DataError(f"{path} {reason}; fix or remove it (or use --bad-images warn, bad_images='warn' in Python, to skip it)")
    warnings.warn(f"skipping {path}: it {reason}", BadImageWarning, stacklevel=3)


def _stack(images: list[np.ndarray], channels: int) -> torch.Tensor:
    """Stack ``(H, W)`` / ``(H, W, 3)`` uint8 arrays into ``(N, channels, H, W)``."""
    out = []
    for img in images:
        chw = img[None] if img.ndim == 2 else img.transpose(2, 0, 1)
        if chw.shape[0] != channels:
            chw = np.repeat(chw, channels, axis=0)  # gray into an RGB set
        out.append(chw)
    return torch.from_numpy(np.ascontiguousarray(np.stack(out)))


# -- splitting --------------------------------------------------------------------------------------


def _carve(train: ImageSet, fractions: dict[str, float], seed: int, where: str) -> dict[str, ImageSet]:
    """Carve the named splits (name -> fraction of ``train``) from ``train``; returns all of them."""
    names = list(fractions)
    rest, *parts = stratified_split(train.labels, [fractions[n] for n in names], seed)
    for name, idx in zip(names, parts):
        if len(idx) == 0:
            raise DataError(
                f"{where}: too few training images ({len(train)}) to carve a {name} split with "
                f"{name}_fraction={fractions[name]}; add images or provide the {name} split yourself"
            )
    out = {name: train.subset(idx) for name, idx in zip(names, parts)}
    out["train"] = train.subset(rest)
    return out


# -- image folders ----------------------------------------------------------------------------------


def _visible(path: Path, root: Path) -> bool:
    """False for hidden files/folders (any part of the path below ``root`` starts with a dot)."""
    rel = path.relative_to(root).parts
    return not any(p.startswith(".") for p in rel) and path.name.lower() not in _IGNORED_NAMES


def _subfolders(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and _visible(d, folder))


def _files_below(folder: Path) -> list[Path]:
    """Every visible file below ``folder`` (recursive), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and _visible(p, folder))


def _folder_layout(root: Path) -> dict[str, list[Path]]:
    """Split name -> its class folders: ``train/`` etc. when present, else ``{"train": classes}``."""
    subdirs = _subfolders(root)
    if not subdirs:
        raise DataError(
            f"{root} has no sub-folders; put each class's images in its own folder "
            "(root/CLASS/*.png), optionally inside train/, val/ and test/"
        )
    split_dirs = {d.name.lower(): d for d in subdirs if d.name.lower() in SPLITS}
    if not split_dirs:
        return {"train": subdirs}
    if "train" not in split_dirs:
        have = ", ".join(f"{s}/" for s in split_dirs)
        raise DataError(f"{root} has {have} but no train/ folder; add train/ with one folder per class")
    others = [d.name for d in subdirs if d.name.lower() not in SPLITS]
    if others:
        raise DataError(
            f"{root} mixes split folders (train/, val/, test/) with other folders ({others[0]}/); "
            "move class folders into the split folders"
        )
    layout = {}
    for split, folder in split_dirs.items():
        layout[split] = _subfolders(folder)
        if not layout[split]:
            raise DataError(f"split folder {folder} has no class folders; add them or remove {folder}")
    return layout


def _read_class_folders(root, layout, image_size, bad_images, progress) -> tuple[list[str], dict, float | None]:
    """Read every class folder: the class names, split -> ``(images, labels, ids)`` lists, and the
    full scale used for wide (16-bit, float) images (``None`` when all were 8-bit)."""
    class_names = sorted({d.name for dirs in layout.values() for d in dirs})
    if len(class_names) < 2:
        raise DataError(
            f"{root} has only one class ({class_names[0]}); a classifier needs at least two class folders"
        )
    train_classes = {d.name for d in layout["train"]}
    for split, dirs in layout.items():
        for d in dirs:
            if d.name not in train_classes:
                raise DataError(f"class {d.name!r} is in {split}/ but not in train/; add {root / 'train' / d.name}")
    jobs = []  # (split, class folder, label, files)
    for split, dirs in layout.items():
        for d in dirs:
            files = _files_below(d)
            if not files:
                raise DataError(f"class folder {d} is empty; add images to it or remove it")
            jobs.append((split, d, class_names.index(d.name), files))
    total = sum(len(files) for *_, files in jobs)
    read: dict[str, tuple[list, list, list]] = {s: ([], [], []) for s in layout}
    notes: Counter = Counter()
    with (progress or Progress(quiet=True)).task(f"reading {root.name}", total=total) as task:
        for split, folder, label, files in jobs:
            images, labels, ids = read[split]
            before = len(images)
            for path in files:
                task.advance()
                try:
                    images.append(_read_image(path, image_size, notes=notes))
                except _BadImage as bad:
                    _report_bad(path, str(bad), bad_images)
                    continue
                labels.append(label)
                ids.append(path.relative_to(root).as_posix())
            if len(images) == before:
                raise DataError(
                    f"class folder {folder} has no readable images; add .png/.jpg/... images to it"
                )
    everything, scale = finish_depth([img for images, _, _ in read.values() for img in images], notes=notes)
    start = 0
    for split, (images, labels, ids) in read.items():  # one full scale for the whole data set
        read[split] = (everything[start : start + len(images)], labels, ids)
        start += len(images)
    for message in describe_notes(notes, str(root)):
        warnings.warn(message, DepthWarning, stacklevel=4)
    return class_names, read, scale


def _load_folder(root: Path, image_size, seed, val_fraction, test_fraction, bad_images, progress) -> DataSplits:
    layout = _folder_layout(root)
    class_names, read, scale = _read_class_folders(root, layout, image_size, bad_images, progress)
    channels = 3 if any(img.ndim == 3 for images, _, _ in read.values() for img in images) else 1
    sets = {
        split: ImageSet(_stack(images, channels), torch.tensor(labels), list(class_names), ids)
        for split, (images, labels, ids) in read.items()
    }
    wanted = {"val": val_fraction, "test": test_fraction}
    missing = {name: f for name, f in wanted.items() if name not in sets}
    if missing:
        sets.update(_carve(sets["train"], missing, seed, str(root)))
    description = (
        f"image folder {root}: {len(class_names)} classes, {channels} channel(s), {image_size}px; "
        f"train {len(sets['train'])}, val {len(sets['val'])}, test {len(sets['test'])}"
        + (f" ({', '.join(missing)} carved from train, seed {seed})" if missing else "")
    )
    return DataSplits(sets["train"], sets["val"], sets["test"], description=description,
                      extra={"source": str(root), "carved": sorted(missing), "split_seed": seed,
                             "full_scale": scale})


# -- .npz arrays ------------------------------------------------------------------------------------


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
    notes: Counter = Counter()
    full = (scale or _npz_scale([arr]))["f" if arr.dtype.kind == "f" else "iu"]
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


def _load_npz(path: Path, image_size, seed, val_fraction, progress) -> DataSplits:
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
            sets[s] = ImageSet(_stack(images, channels), torch.from_numpy(y[s]), list(class_names), ids)
    sets.update(_carve(sets["train"], {"val": val_fraction}, seed, str(path)))
    description = (
        f".npz {path}: {len(class_names)} classes, {channels} channel(s), {image_size}px; "
        f"train {len(sets['train'])}, val {len(sets['val'])} (carved from x_train, seed {seed}), "
        f"test {len(sets['test'])}"
    )
    return DataSplits(sets["train"], sets["val"], sets["test"], description=description,
                      extra={"source": str(path), "carved": ["val"], "split_seed": seed,
                             "full_scale": scale["iu"] if scale["iu"] > 255 else None})


# -- unlabelled pools -------------------------------------------------------------------------------


@dataclass
class FolderPool(SquarePool):
    """An :class:`ImagePool` over image files, read a batch at a time (never all at once)."""

    files: list[Path]
    image_side: int
    n_channels: int
    bad_images: str = "warn"
    full_scale: float | None = None  # wide images: the labelled data's full scale, else each batch's own

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, path: Path) -> np.ndarray | None:
        try:
            image = _read_image(path, self.image_side, "L" if self.n_channels == 1 else "RGB")
            return finish_depth([image], self.full_scale)[0][0]
        except _BadImage as bad:
            _report_bad(path, str(bad), self.bad_images)
            return None

    def iter_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """Batches in a seeded order; unreadable files are skipped (or raise, by ``bad_images``)."""
        order = torch.randperm(len(self.files), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            images = [self._load(self.files[i]) for i in order[start : start + batch_size]]
            images = [img for img in images if img is not None]
            if images:
                yield _stack(images, self.n_channels).float() / 255.0


@dataclass
class ArrayPool(SquarePool):
    """An :class:`ImagePool` over a uint8 image array, resized a batch at a time."""

    images: np.ndarray  # uint8 (N, H, W) or (N, H, W, 3)
    image_side: int
    n_channels: int

    def __len__(self) -> int:
        return len(self.images)

    def iter_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        order = torch.randperm(len(self.images), generator=generator).tolist()
        mode = "L" if self.n_channels == 1 else "RGB"
        for start in range(0, len(order), batch_size):
            batch = [
                np.asarray(_resize(Image.fromarray(self.images[i]).convert(mode), self.image_side))
                for i in order[start : start + batch_size]
            ]
            yield _stack(batch, self.n_channels).float() / 255.0


def load_unlabeled(
    source: str | Path, *, image_size: int = 32, channels: int = 1, seed: int = 0, bad_images: str = "warn",
    full_scale: float | None = None,
) -> ImagePool:
    """An unlabelled pool: ``"default"`` (synthetic ok surfaces), a folder (recursive), or an ``.npz``.

    Images come out as ``channels`` channels at ``image_size``, to match the labelled data; wide
    (16-bit, float) images are scaled by ``full_scale`` (the labelled data's), when given.
    """
    if str(source) == "default":
        return SyntheticPool(DEFAULT_POOL_SIZE, image_size, seed, channels)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"unlabeled data path {path} does not exist; give an image folder, an .npz file or 'default'")
    if path.is_dir():
        files = _files_below(path)
        images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
        if not images:
            raise DataError(f"unlabeled folder {path} holds no image files (.png, .jpg, ...); add some")
        if len(images) < len(files):
            others = [p.name for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS]
            warnings.warn(
                f"ignoring {len(others)} non-image file(s) in {path} (e.g. {others[0]})", BadImageWarning, stacklevel=2
            )
        return FolderPool(images, image_size, channels, bad_images, full_scale)
    if path.suffix.lower() == ".npz":
        arrays = _open_npz(path)
        key = "x" if "x" in arrays else "x_train" if "x_train" in arrays else None
        if key is None:
            have = ", ".join(sorted(arrays)) or "no arrays"
            raise DataError(f"{path} has no array 'x' or 'x_train' (it has: {have}); store the unlabeled images as x")
        scale = _npz_scale([arrays[key]])
        if full_scale:
            scale["iu"] = full_scale
        return ArrayPool(_npz_images(arrays[key], key, path, scale), image_size, channels)
    raise DataError(f"unlabeled data {path} is neither a folder nor an .npz file; give one of those or 'default'")


def _warn_overlap(splits: DataSplits) -> None:
    """Warn when evaluation images are pixel-identical to training images (ids can differ)."""
    for name, part in (("test", splits.test), ("validation", splits.val)):
        n = shared_images(splits.train.images, part.images) if len(part) else 0
        splits.extra[f"{'val' if name == 'validation' else name}_in_train"] = n
        if n:
            warnings.warn(
                f"{n} of {len(part)} {name} images are pixel-identical to training images; "
                f"{name} figures will be optimistic — remove the duplicates from the data",
                OverlapWarning, stacklevel=3,
            )


# -- the entry point --------------------------------------------------------------------------------


def load_data(
    source: str | Path | None = None,
    *,
    image_size: int = 32,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    unlabeled: str | Path | None = None,
    bad_images: str = "warn",
    progress: Progress | None = None,
) -> DataSplits:
    """Load a data set into train / val / test (and an unlabelled pool).

    ``source``: ``None`` or ``"default"`` (the embedded set, with its pool of ok images), an image
    folder, or an ``.npz`` file. ``val_fraction`` / ``test_fraction``: the share of images carved,
    class by class with ``seed``, for splits the source lacks. ``unlabeled``: a pool for generator
    pre-training (see :func:`load_unlabeled`); it replaces the default's own pool. ``bad_images``:
    ``"warn"`` skips unreadable image files with a :class:`BadImageWarning`, ``"error"`` stops.
    """
    _check_options(image_size, seed, val_fraction, test_fraction, bad_images)
    if source is None or str(source) == "default":
        pool_size = 0 if unlabeled is not None else DEFAULT_POOL_SIZE
        splits = make_default_splits(image_size, seed, n_unlabeled=pool_size)
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(f"data path {path} does not exist; give an image folder, an .npz file or 'default'")
        if path.is_dir():
            splits = _load_folder(path, image_size, seed, val_fraction, test_fraction, bad_images, progress)
        elif path.suffix.lower() == ".npz":
            splits = _load_npz(path, image_size, seed, val_fraction, progress)
        else:
            raise DataError(f"data {path} is neither a folder nor an .npz file; give one of those or 'default'")
    _warn_overlap(splits)
    if unlabeled is not None:
        splits.unlabeled = load_unlabeled(
            unlabeled, image_size=image_size, channels=splits.train.channels, seed=seed, bad_images=bad_images,
            full_scale=splits.extra.get("full_scale"),
        )
    return splits
