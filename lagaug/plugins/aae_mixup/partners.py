"""Who an image is mixed with, and how much: the partner rules and the mixing weight λ.

A hard image ``x_a`` (class ``a``, the argmax of its soft label) is mixed with a partner ``x_b``
drawn from the candidates of the pool: **real** images (never a synthetic one) of another class —
or of the same class under the ``same`` ablation, ``x_a`` itself excluded — and, when
``partner_classes`` names some, only of those classes.

* ``random`` — any candidate, uniformly;
* ``nearest`` — the candidate whose code is closest to ``z_a`` (Euclidean; with ``nearest_k`` > 1,
  one of the ``nearest_k`` closest, uniformly);
* ``confuser`` — a candidate of the class the ensemble most confuses ``x_a`` with: the other class
  of highest mean ensemble probability for ``x_a``'s pool row (``ctx.probs``), among the classes
  with candidates;
* ``same`` — any real image of ``x_a``'s own class.

λ is ``x_a``'s weight: folded Beta(α, α) (``max(u, 1 - u)``, so ``x_a`` stays dominant) or uniform
in a fixed range ``[low, high]`` with ``0.5 <= low <= high <= 1``. All randomness comes from the
``torch.Generator`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from lagaug.core.errors import ConfigError, DataError

PARTNER_RULES = ("random", "nearest", "confuser", "same")
LAMBDA_MODES = ("beta", "range")


def check_lambda(mode: str, alpha: float, lam_range) -> tuple[float, float]:
    """Validate the λ options; returns the range as two floats."""
    if mode not in LAMBDA_MODES:
        raise ConfigError(f"aae-mixup: lam must be one of {', '.join(LAMBDA_MODES)}, got {mode!r}")
    if not (isinstance(alpha, (int, float)) and alpha > 0 and np.isfinite(alpha)):
        raise ConfigError(f"aae-mixup: alpha must be a number > 0 (Beta(alpha, alpha)), got {alpha!r}")
    values = list(lam_range) if isinstance(lam_range, (list, tuple)) else [lam_range]
    if len(values) != 2 or not all(isinstance(v, (int, float)) for v in values):
        raise ConfigError(f"aae-mixup: lam_range must be two numbers low,high, got {lam_range!r}")
    low, high = float(values[0]), float(values[1])
    if not 0.5 <= low <= high <= 1.0:
        raise ConfigError(
            f"aae-mixup: lam_range must satisfy 0.5 <= low <= high <= 1 (lambda is the hard image's weight "
            f"and it stays dominant), got {low:g},{high:g}"
        )
    return low, high


def draw_lambda(n: int, mode: str, alpha: float, lam_range: tuple[float, float],
                generator: torch.Generator) -> torch.Tensor:
    """``(n,)`` float32 weights of the hard images, in [0.5, 1]."""
    if mode == "range":
        low, high = lam_range
        return low + (high - low) * torch.rand(n, generator=generator)
    # torch's Beta sampler draws from the global RNG; numpy's, seeded from ``generator``, does not
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    u = torch.from_numpy(np.random.default_rng(seed).beta(alpha, alpha, n)).float()
    return torch.maximum(u, 1 - u)


@dataclass
class PartnerPool:
    """The images partners may come from: pool rows' class (``labels``), whether each is real,
    a way to get the codes of some rows (``codes(rows)``), the class names, the rows' ids and how
    to name the pool in an error."""

    labels: torch.Tensor  # (P,) int64
    real: torch.Tensor  # (P,) bool
    codes: Callable[[torch.Tensor], torch.Tensor]
    class_names: list[str]
    ids: list[str]
    describe: str = "the pool"


def allowed_classes(names: list[str] | None, class_names: list[str]) -> torch.Tensor:
    """``(K,)`` bool: the classes partners may come from (``partner_classes``; empty = all)."""
    if not names:
        return torch.ones(len(class_names), dtype=torch.bool)
    mask = torch.zeros(len(class_names), dtype=torch.bool)
    for name in names:
        if name not in class_names:
            raise ConfigError(
                f"aae-mixup: partner_classes {name!r} is not a class; classes are: {', '.join(class_names)}"
            )
        mask[class_names.index(name)] = True
    return mask


def candidates(pool: PartnerPool, rows_a: torch.Tensor, labels_a: torch.Tensor, rule: str,
               allowed: torch.Tensor) -> torch.Tensor:
    """``(N, P)`` bool: which pool rows may be the partner of each hard image."""
    pool_ok = pool.real & allowed[pool.labels]
    same = labels_a[:, None] == pool.labels[None, :]
    mask = pool_ok[None, :] & (same if rule == "same" else ~same)
    if rule == "same":
        own = rows_a[:, None] == torch.arange(len(pool.labels))[None, :]
        mask &= ~own
    empty = torch.nonzero(~mask.any(1)).flatten()
    if len(empty):
        j = int(empty[0])
        kind = "of its own class (other than itself)" if rule == "same" else "of another class"
        present = sorted({pool.class_names[int(c)] for c in pool.labels[pool_ok].tolist()})
        fix = ("add images of that class or use another --set partner" if rule == "same"
               else "give images of at least two classes, or --set partner=same")
        raise DataError(
            f"aae-mixup: image {pool.ids[int(rows_a[j])]!r} (class {pool.class_names[int(labels_a[j])]!r}) has no partner: "
            f"{pool.describe} holds no real image {kind} among the partner classes "
            f"({', '.join(present) or 'none'}); {fix}"
        )
    return mask


def uniform_choice(mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``(N,)``: one True column per row of ``mask`` ``(N, P)``, uniformly."""
    return torch.multinomial(mask.float(), 1, generator=generator).flatten()


def choose_partners(rule: str, pool: PartnerPool, rows_a: torch.Tensor, labels_a: torch.Tensor,
                    z_a: torch.Tensor, probs: torch.Tensor | None, allowed: torch.Tensor, nearest_k: int,
                    generator: torch.Generator) -> tuple[torch.Tensor, bool]:
    """Partner pool rows ``(N,)`` of the hard images, and whether ``confuser`` fell back to
    ``random`` (no ensemble probabilities outside the loop)."""
    mask = candidates(pool, rows_a, labels_a, rule, allowed)
    if rule in ("random", "same"):
        return uniform_choice(mask, generator), False
    if rule == "nearest":
        cols = torch.nonzero(mask.any(0)).flatten()
        dist = torch.cdist(z_a.float(), pool.codes(cols).float())
        full = torch.full(mask.shape, float("inf"))
        full[:, cols] = dist
        full[~mask] = float("inf")
        k = min(int(nearest_k), int(mask.sum(1).min()))
        near = full.topk(k, dim=1, largest=False).indices
        pick = torch.randint(0, k, (len(near),), generator=generator) if k > 1 else torch.zeros(len(near), dtype=torch.long)
        return near[torch.arange(len(near)), pick], False
    if probs is None:
        return uniform_choice(mask, generator), True
    # confuser: the other class with the highest ensemble probability that has candidates
    k = len(pool.class_names)
    has = torch.zeros(len(rows_a), k, dtype=torch.bool)
    for c in range(k):
        has[:, c] = (mask & (pool.labels == c)[None, :]).any(1)
    p = probs[rows_a].float().clone()
    p[~has] = -1.0
    target = p.argmax(1)
    return uniform_choice(mask & (pool.labels[None, :] == target[:, None]), generator), False
