"""Statistics a reader can trust: intervals over ensemble members or repeats, exact paired tests,
and the Holm correction. numpy only; the figures do not depend on which scipy (if any) is installed.

* :func:`mean_ci` — mean and the half-width of its 95% Student-t interval. It measures the spread
  of the values given (ensemble members' seeds on one test set, or repeats of a comparison), not
  the sampling error of the test set. One value: the interval is undefined (NaN).
* :func:`t_quantile` — the Student-t quantile for any degrees of freedom (regularised incomplete
  beta function, inverted by bisection).
* :func:`wilcoxon_p` — the exact two-sided Wilcoxon signed-rank test: zero differences dropped,
  tied magnitudes given their average rank, and the exact null distribution of the rank sum
  computed over all ``2^n`` sign patterns (by counting, so any n).
* :func:`sign_flip_p` — the paired sign-flip permutation test on the mean difference: exact up to
  ``EXACT_SIGN_FLIP`` pairs, else Monte Carlo with the +1 correction.
* :func:`holm` — Holm's step-down adjustment of a family of p-values.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

EXACT_SIGN_FLIP = 20
MONTE_CARLO_DRAWS = 1 << 16


# -- Student t ------------------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, dof: float) -> float:
    """P(T <= t) for Student's t with ``dof`` degrees of freedom."""
    tail = 0.5 * betainc(dof / 2.0, 0.5, dof / (dof + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, dof: float) -> float:
    """The ``p`` quantile of Student's t with ``dof`` degrees of freedom (NaN for dof < 1)."""
    if not dof >= 1 or not 0 < p < 1:
        return float("nan")
    if p < 0.5:
        return -t_quantile(1 - p, dof)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, dof) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, dof) < p else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its ``level`` Student-t interval.

    NaN values are dropped. One value: the half-width is NaN (no spread can be estimated), never 0.
    """
    arr = np.asarray([v for v in values if v == v], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan")
    if arr.size == 1:
        return float(arr[0]), float("nan")
    half = t_quantile(0.5 + level / 2, arr.size - 1) * arr.std(ddof=1) / math.sqrt(arr.size)
    return float(arr.mean()), float(half)


def paired_difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mean of ``a - b`` over pairs (NaN pairs dropped) and its 95% half-width."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return mean_ci((a - b).tolist())


# -- paired tests ---------------------------------------------------------------------------------


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``, ties given their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    sorted_v = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def wilcoxon_p(diffs: Sequence[float]) -> float:
    """Exact two-sided p of the Wilcoxon signed-rank test (zeros dropped, ties averaged).

    The null distribution of W+ (the sum of the ranks of positive differences) is counted over
    all sign patterns of the nonzero differences; ranks are doubled so half ranks stay integers.
    """
    d = np.asarray([x for x in diffs if x == x], dtype=float)
    d = d[d != 0]
    n = d.size
    if n == 0:
        return 1.0
    ranks2 = np.rint(2 * average_ranks(np.abs(d))).astype(np.int64)
    w = int(ranks2[d > 0].sum())
    total = int(ranks2.sum())
    counts = np.zeros(total + 1, dtype=float)
    counts[0] = 1.0
    for r in ranks2:
        shifted = np.zeros_like(counts)
        shifted[r:] = counts[: total + 1 - r]
        counts = counts + shifted
    probs = counts / counts.sum()
    lower, upper = probs[: w + 1].sum(), probs[w:].sum()
    return float(min(1.0, 2.0 * min(lower, upper)))


def sign_flip_p(diffs: Sequence[float], seed: int = 0) -> float:
    """Two-sided p of the paired sign-flip test on the mean difference.

    Exact (every sign pattern) up to ``EXACT_SIGN_FLIP`` pairs; beyond, ``MONTE_CARLO_DRAWS``
    random patterns with the +1 correction ``(1 + hits) / (1 + draws)``. All-zero differences: 1.
    """
    d = np.asarray([x for x in diffs if x == x], dtype=float)
    if d.size == 0 or not np.any(d):
        return 1.0
    observed = abs(d.sum()) - 1e-12 * max(1.0, np.abs(d).sum())
    if d.size <= EXACT_SIGN_FLIP:
        hits, total = 0, 1 << d.size
        for start in range(0, total, 1 << 16):
            codes = np.arange(start, min(total, start + (1 << 16)), dtype=np.int64)
            signs = 1.0 - 2.0 * ((codes[:, None] >> np.arange(d.size)) & 1)
            hits += int(np.count_nonzero(np.abs(signs @ d) >= observed))
        return hits / total
    signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(MONTE_CARLO_DRAWS, d.size))
    hits = int(np.count_nonzero(np.abs(signs @ d) >= observed))
    return (1 + hits) / (1 + MONTE_CARLO_DRAWS)


TESTS = {"wilcoxon": "exact Wilcoxon signed-rank", "permutation": "sign-flip permutation"}


def paired_test(a: Sequence[float], b: Sequence[float], method: str = "wilcoxon") -> dict[str, Any]:
    """Paired two-sided test of ``a`` vs ``b``: ``{"test", "p", "n", "delta", "delta_ci", "min_p"}``.

    Pairs with a NaN are dropped; ``delta`` is the mean of ``a - b`` with its 95% half-width;
    ``min_p`` the smallest p this test can give with these pairs.
    """
    if method == "auto":
        method = "wilcoxon"
    if method not in TESTS:
        from lagaug.core.errors import ConfigError

        raise ConfigError(f"--test {method!r} is unknown; choose wilcoxon or permutation")
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    d = a[keep] - b[keep]
    delta, half = mean_ci(d.tolist())
    p = wilcoxon_p(d) if method == "wilcoxon" else sign_flip_p(d)
    nonzero = int(np.count_nonzero(d)) if method == "wilcoxon" else int(d.size)
    return {"test": TESTS[method], "p": p, "n": int(d.size), "delta": delta, "delta_ci": half,
            "min_p": smallest_p(nonzero, method)}


def smallest_p(n: int, method: str = "wilcoxon") -> float:
    """The smallest two-sided p the test can reach with ``n`` pairs (nonzero pairs for Wilcoxon):
    ``2 / 2^n`` for the exact tests, ``1 / (1 + draws)`` for Monte Carlo."""
    if n <= 0:
        return 1.0
    if method == "permutation" and n > EXACT_SIGN_FLIP:
        return 1.0 / (1 + MONTE_CARLO_DRAWS)
    return min(1.0, 2.0 / 2**n)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given; NaN stays NaN)."""
    p = np.asarray(pvalues, dtype=float)
    valid = np.flatnonzero(~np.isnan(p))
    out = np.full(p.shape, np.nan)
    m = valid.size
    running = 0.0
    for rank, i in enumerate(valid[np.argsort(p[valid], kind="mergesort")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()
