"""Per-repeat training draws of ``compare``: a class-balanced (or proportional) subset, and the
validation images carved from it with the one stratified splitter."""

from __future__ import annotations

import hashlib

import torch

from lagaug.core.data.dataset import ImageSet
from lagaug.core.data.splits import stratified_split
from lagaug.core.errors import ConfigError


def quota(counts: list[int], n: int, balanced: bool, generator: torch.Generator) -> list[int]:
    """How many images of each class a draw of ``n`` takes (balanced or proportional)."""
    k = len(counts)
    if balanced:
        share = [n // k] * k
        for c in torch.randperm(k, generator=generator)[: n % k].tolist():
            share[c] += 1
        return share
    total = sum(counts)
    exact = [n * c / total for c in counts]
    share = [int(e) for e in exact]
    order = sorted(range(k), key=lambda c: share[c] - exact[c])  # largest remainders first
    for c in order[: n - sum(share)]:
        share[c] += 1
    return share


def draw_subset(data: ImageSet, n: int, generator: torch.Generator, balanced: bool = True,
                what: str = "--train-size") -> torch.Tensor:
    """Indices (ascending) of ``n`` images of ``data`` drawn class by class."""
    counts = data.class_counts()
    if n > len(data):
        raise ConfigError(f"{what} {n}: only {len(data)} images are available")
    picks = []
    for c, (want, have) in enumerate(zip(quota(counts, n, balanced, generator), counts)):
        if want > have:
            raise ConfigError(
                f"{what} {n}: class {data.class_names[c]!r} has only {have} images, {want} needed; "
                "lower the size or draw proportionally"
            )
        idx = torch.nonzero(data.labels == c).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=generator)[:want]])
    return torch.cat(picks).sort().values


def carve_validation(data: ImageSet, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, val)`` indices: ``fraction`` of every class for validation (at least one image of
    each class that has two or more), by :func:`lagaug.core.data.splits.stratified_split`."""
    if fraction <= 0:
        return torch.arange(len(data)), torch.zeros(0, dtype=torch.long)
    rest, val = stratified_split(data.labels, [fraction], seed)
    return rest, val


def ids_digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
