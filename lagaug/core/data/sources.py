"""Dataset sources: the embedded default, image folders and ``.npz`` arrays, and unlabelled pools.

:func:`load_data` turns what the user names into :class:`~lagaug.core.data.dataset.DataSplits`:

* ``None`` or ``"default"``: the embedded synthetic inspection set (:mod:`lagaug.core.data.synthetic`);
* a folder with one sub-folder per class, or with ``train/`` (and optionally ``val/``, ``test/``)
  folders that each hold class folders; splits it lacks are carved from ``train`` by a seeded,
  stratified split; a ``masks/`` folder beside them holds optional defect masks under the same
  relative paths (``masks/defect/x.png`` for ``defect/x.png``; any image extension);
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
from collections import Counter
from pathlib import Path

import torch

from lagaug.core.data.dataset import DataSplits, ImageSet
from lagaug.core.data.depth import describe as describe_notes
from lagaug.core.data.depth import finish as finish_depth
from lagaug.core.data.images import (  # noqa: F401  (re-exported: the public names of data loading)
    IMAGE_EXTENSIONS,
    BadImageWarning,
    DepthWarning,
    _BadImage,
    _read_image,
    _report_bad,
    _stack,
    read_image_file,
)
from lagaug.core.data.npz import NPZ_KEYS, load_npz  # noqa: F401
from lagaug.core.data.pools import (  # noqa: F401
    DEFAULT_POOL_SIZE,
    ArrayPool,
    FolderPool,
    check_pool_disjoint,
    files_below,
    load_unlabeled,
    visible,
)
from lagaug.core.data.splits import carve, shared_images
from lagaug.core.data.synthetic import make_default_splits
from lagaug.core.errors import ConfigError, DataError
from lagaug.core.progress import Progress

SPLITS = ("train", "val", "test")
MASK_FOLDER = "masks"  # beside the class (or split) folders: defect masks under the same relative paths


class OverlapWarning(UserWarning):
    """Some test (or validation) images are pixel-identical to training images."""


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


# -- image folders ----------------------------------------------------------------------------------


def _subfolders(folder: Path, root: Path | None = None) -> list[Path]:
    """Visible sub-folders; at the data root (``root``), the ``masks/`` folder is not one of them."""
    return sorted(d for d in folder.iterdir() if d.is_dir() and visible(d, folder)
                  and not (folder == root and d.name == MASK_FOLDER))


def _folder_layout(root: Path) -> dict[str, list[Path]]:
    """Split name -> its class folders: ``train/`` etc. when present, else ``{"train": classes}``."""
    subdirs = _subfolders(root, root)
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
            files = files_below(d)
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


def _mask_files(root: Path) -> dict[str, Path]:
    """``masks/`` below ``root``: image path (relative to ``root``, without extension) -> mask file."""
    folder = root / MASK_FOLDER
    if not folder.is_dir():
        return {}
    out = {}
    for path in files_below(folder):
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            out[path.relative_to(folder).with_suffix("").as_posix()] = path
    return out


def _folder_masks(root: Path, ids: list[str], image_size: int, found: dict[str, Path]) -> torch.Tensor | None:
    """The masks of the images ``ids`` (paths relative to ``root``): a mask file under ``masks/``
    with the same relative path (any image extension), all false where there is none. A mask
    whose size differs from its image's is a DataError naming both files."""
    from PIL import Image

    from lagaug.core.data.images import read_mask_file

    if not found:
        return None
    out = torch.zeros(len(ids), image_size, image_size, dtype=torch.bool)
    for i, rel in enumerate(ids):
        mask_path = found.pop(Path(rel).with_suffix("").as_posix(), None)
        if mask_path is None:
            continue
        with Image.open(root / rel) as im, Image.open(mask_path) as mk:
            if im.size != mk.size:
                raise DataError(f"mask {mask_path} is {mk.size[0]}x{mk.size[1]} but its image {root / rel} is "
                                f"{im.size[0]}x{im.size[1]}; a mask must have its image's size")
        out[i] = torch.from_numpy(read_mask_file(mask_path, image_size))
    return out


def _load_folder(root: Path, image_size, seed, val_fraction, test_fraction, bad_images, progress) -> DataSplits:
    layout = _folder_layout(root)
    class_names, read, scale = _read_class_folders(root, layout, image_size, bad_images, progress)
    channels = 3 if any(img.ndim == 3 for images, _, _ in read.values() for img in images) else 1
    found = _mask_files(root)
    sets = {
        split: ImageSet(_stack(images, channels), torch.tensor(labels), list(class_names), ids,
                        masks=_folder_masks(root, ids, image_size, found))
        for split, (images, labels, ids) in read.items()
    }
    if found:
        stray = sorted(found)[0]
        raise DataError(f"mask {found[stray]} has no image {root / stray}.*; masks/ must mirror the image "
                        "folders (masks/CLASS/NAME.png for CLASS/NAME.png)")
    wanted = {"val": val_fraction, "test": test_fraction}
    missing = {name: f for name, f in wanted.items() if name not in sets}
    if missing:
        sets.update(carve(sets["train"], missing, seed, str(root)))
    description = (
        f"image folder {root}: {len(class_names)} classes, {channels} channel(s), {image_size}px; "
        f"train {len(sets['train'])}, val {len(sets['val'])}, test {len(sets['test'])}"
        + (f" ({', '.join(missing)} carved from train, seed {seed})" if missing else "")
    )
    return DataSplits(sets["train"], sets["val"], sets["test"], description=description,
                      extra={"source": str(root), "carved": sorted(missing), "split_seed": seed,
                             "full_scale": scale})


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
    pre-training and pseudo-labels (see :func:`load_unlabeled`); it replaces the default's own
    pool, and a pool holding a test image is refused (:func:`check_pool_disjoint`). ``bad_images``:
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
            splits = load_npz(path, image_size, seed, val_fraction, progress)
        else:
            raise DataError(f"data {path} is neither a folder nor an .npz file; give one of those or 'default'")
    _warn_overlap(splits)
    if unlabeled is not None:
        splits.unlabeled = load_unlabeled(
            unlabeled, image_size=image_size, channels=splits.train.channels, seed=seed, bad_images=bad_images,
            full_scale=splits.extra.get("full_scale"),
        )
        check_pool_disjoint(splits.unlabeled, splits.test)  # the embedded default's own pool never is
    return splits
