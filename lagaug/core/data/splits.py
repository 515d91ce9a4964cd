"""The one stratified splitter: seeded, class by class, every class in every part it can reach.

Used to carve validation (and test) images out of training images, by the data sources and by
``compare``'s per-repeat splits alike.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import torch


def part_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """How many of a class's ``n`` images each part takes.

    Part ``k`` takes ``fractions[k] * n`` rounded half up, and at least one image, while the class
    keeps at least one image in the remainder (the training part). When ``n`` is too small for
    that, earlier parts are served first and the largest parts give way.
    """
    sizes = [max(1, int(np.floor(f * n + 0.5))) if f > 0 else 0 for f in fractions]
    while sum(sizes) >= n and sum(sizes) > 0:
        sizes[len(sizes) - 1 - int(np.argmax(sizes[::-1]))] -= 1  # the last of the largest parts
    return sizes


def stratified_split(labels: torch.Tensor, fractions: Sequence[float], seed: int) -> list[torch.Tensor]:
    """Seeded split of indices, class by class: ``[rest, part_1, part_2, ...]`` (each sorted).

    See :func:`part_sizes` for how many images of each class every part gets. Same labels, same
    fractions, same seed: same split.
    """
    rng = np.random.default_rng(seed)
    labels_np = torch.as_tensor(labels).numpy()
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels_np):
        idx = rng.permutation(np.flatnonzero(labels_np == c))
        start = 0
        for k, size in enumerate(part_sizes(len(idx), fractions)):
            parts[k + 1].extend(idx[start : start + size].tolist())
            start += size
        parts[0].extend(idx[start:].tolist())
    return [torch.tensor(sorted(p), dtype=torch.long) for p in parts]


def image_digests(images: torch.Tensor) -> list[str]:
    """A content hash of every image of a uint8 ``(N, C, H, W)`` tensor (identical pixels, same hash)."""
    arr = images.contiguous().numpy()
    return [hashlib.sha1(arr[i].tobytes()).hexdigest() for i in range(len(arr))]


def shared_images(a: torch.Tensor, b: torch.Tensor) -> int:
    """How many images of ``b`` also occur, pixel for pixel, in ``a``."""
    seen = set(image_digests(a))
    return sum(d in seen for d in image_digests(b))


def carve(train, fractions: dict[str, float], seed: int, where: str) -> dict:
    """Carve the named splits (name -> fraction of ``train``) from the ImageSet ``train`` with
    :func:`stratified_split`; returns all of them, ``"train"`` the rest. A split that would be
    empty is a one-line DataError naming ``where``."""
    from lagaug.core.errors import DataError

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
