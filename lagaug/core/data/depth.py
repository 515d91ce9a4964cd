"""Images that are not 8-bit: 16-bit (and 12-bit data in 16-bit files), 32-bit integer and float.

lagaug works on 8-bit images. Wider images are scaled **by one rule for the whole data set**, never
by each image's own maximum (two nearly identical images must stay nearly identical):

* integer images (16-bit, 32-bit): full scale is the smallest of 2^b − 1 for b = 8, 10, 12, 14, 16,
  32 that holds the largest value in the data set — 12-bit data stored in 16-bit files is scaled
  by 4095, true 16-bit data by 65535;
* float images: values in [0, 1] are scaled by 255; otherwise full scale is the data set's largest
  value; NaN becomes 0, with a warning;
* every value is then mapped to 0..255 (rounded, clipped).

The unlabelled pool of a run uses the labelled data's full scale.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

DEPTHS = (8, 10, 12, 14, 16, 32)


@dataclass
class Wide:
    """A decoded, resized wide image waiting for the data set's full scale."""

    array: np.ndarray  # float32 (H, W)
    floating: bool


def full_scale(images: list, floating_max: float | None = None) -> float:
    """The data set's full scale for its :class:`Wide` images (see the module docstring)."""
    ints = [w.array for w in images if isinstance(w, Wide) and not w.floating]
    floats = [w.array for w in images if isinstance(w, Wide) and w.floating]
    top_int = max((float(np.nanmax(a, initial=0.0)) for a in ints), default=0.0)
    top_float = max((float(np.nanmax(a, initial=0.0)) for a in floats), default=0.0)
    if floats and not ints:
        return 1.0 if top_float <= 1.0 else top_float
    return depth_scale(max(top_int, top_float))


def depth_scale(top: float) -> float:
    """2^b − 1 for the smallest standard depth b that holds ``top``."""
    for bits in DEPTHS:
        if top <= 2**bits - 1:
            return float(2**bits - 1)
    return float(top)


def to_uint8(array: np.ndarray, scale: float, notes: Counter | None = None) -> np.ndarray:
    """``array`` mapped to 0..255 by ``scale`` (NaN -> 0, counted in ``notes["nan"]``)."""
    arr = np.asarray(array, dtype=np.float64)
    bad = np.isnan(arr)
    if bad.any():
        if notes is not None:
            notes["nan"] += 1
        arr = np.where(bad, 0.0, arr)
    return np.clip(arr * (255.0 / scale), 0, 255).round().astype(np.uint8)


def finish(images: list, scale: float | None = None, notes: Counter | None = None) -> tuple[list, float | None]:
    """Turn every :class:`Wide` in ``images`` into uint8 with one full scale (given, or the data
    set's own); returns the images and the scale used (``None`` when all were 8-bit)."""
    if not any(isinstance(w, Wide) for w in images):
        return images, scale
    scale = scale or full_scale(images)
    return [to_uint8(w.array, scale, notes) if isinstance(w, Wide) else w for w in images], scale


def describe(notes: Counter, where: str) -> list[str]:
    """The warnings worth giving about what loading dropped."""
    out = []
    if notes.get("alpha"):
        out.append(f"{notes['alpha']} image(s) in {where} have an alpha channel (transparency); it is ignored "
                   "and the stored colours are used")
    if notes.get("nan"):
        out.append(f"{notes['nan']} image(s) in {where} hold NaN values; they are read as 0 (black)")
    return out
