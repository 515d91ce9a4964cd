"""Reading one image file: decode, gray or RGB, resize; unreadable files reported by the
``bad_images`` rule. Shared by the folder, ``.npz`` and pool sources."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lagaug.core.data.depth import Wide
from lagaug.core.data.depth import finish as finish_depth
from lagaug.core.errors import DataError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
_GRAY_MODES = frozenset({"1", "L", "LA", "La"})
_WIDE_GRAY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


class BadImageWarning(UserWarning):
    """An image file was skipped because it cannot be read."""


class DepthWarning(UserWarning):
    """Loading dropped information (transparency, NaN values)."""


class _BadImage(Exception):
    """Internal: why one file cannot be used (turned into a warning or a DataError)."""


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


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A mask (any non-zero value is the defect) as bool ``(size, size)``; when resized, a pixel is
    on when any part of it overlapped the mask (a thin crack stays connected when shrunk)."""
    on = np.asarray(mask) > 0
    if on.shape == (size, size):
        return on
    area = Image.fromarray(on.astype(np.float32), mode="F").resize((size, size), Image.Resampling.BOX)
    return np.asarray(area) > 1e-6


def read_mask_file(path: Path, size: int) -> np.ndarray:
    """A mask image file as bool ``(size, size)`` (any non-zero pixel is on); a DataError names the
    file when it cannot be read."""
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im.convert("L") if im.mode not in _WIDE_GRAY_MODES else im)
    except Exception as exc:  # Pillow raises many types for broken files
        raise DataError(f"mask {path} cannot be read ({type(exc).__name__}); save masks as 8-bit PNGs, "
                        "0 off and non-zero on") from None
    return resize_mask(arr, size)


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
