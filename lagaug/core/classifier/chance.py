"""Is a baseline at chance? The check behind the summary's "iteration changes are not meaningful".

The yardstick is the noise of the test set itself: the AUC that a classifier which ignores the
image reaches by luck. For ``n1`` positive and ``n0`` negative test images its variance is
``(n1 + n0 + 1) / (12 n1 n0)`` (the Mann-Whitney null); for more classes the macro one-vs-rest
mean is treated as a mean of independent per-class AUCs. An AUC not above 0.5 by more than 1.96
of these standard errors (:func:`null_auc_margin`) is indistinguishable from chance on this test set.

The baseline is flagged when

* its mean test AUC is not above 0.5 by more than that margin, or
* at least half of its members learnt nothing usable: their own AUC is not above it either, or they
  call every image the majority class (accuracy equal to the majority share and the macro-F1 of
  always predicting it).

The 95% interval over members is not used: with 2-3 members its t quantile (12.7, 4.3) makes it
contain 0.5 even for members that all separate the classes well.
"""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.96


def null_auc_margin(test_labels) -> float:
    """1.96 standard errors of the (macro one-vs-rest) AUC of a classifier that ignores the image."""
    counts = np.bincount(np.asarray(test_labels, dtype=np.int64))
    counts = counts[counts > 0]
    n = int(counts.sum())
    if len(counts) < 2:
        return float("nan")
    per_class = [(n + 1) / (12.0 * c * (n - c)) for c in counts]
    if len(counts) == 2:
        return Z95 * math.sqrt(per_class[0])
    return Z95 * math.sqrt(sum(per_class)) / len(counts)


def majority_scores(test_labels) -> tuple[float, float]:
    """Accuracy and macro-F1 of predicting the most common class for every test image."""
    counts = np.bincount(np.asarray(test_labels, dtype=np.int64))
    share = counts.max() / counts.sum()
    return float(share), float(2 * share / (1 + share) / int((counts > 0).sum()))


def _predicts_majority_only(member: dict, test_labels) -> bool:
    acc, f1 = majority_scores(test_labels)
    return abs(member["accuracy"] - acc) < 0.5 / max(len(np.asarray(test_labels)), 1) and abs(member["f1"] - f1) < 1e-6


def majority_members(result: dict, test_labels) -> int:
    """How many members (``result["per_member"]``) predict only the majority class."""
    return sum(_predicts_majority_only(m, test_labels) for m in result.get("per_member", []))


def chance_warning(result: dict, test_labels) -> str | None:
    """The summary's warning when the result of :meth:`Ensemble.evaluate` on test images labelled
    ``test_labels`` is at chance (see the module), else ``None``."""
    margin = null_auc_margin(test_labels)
    if math.isnan(margin):
        return None
    auc = result.get("auc_mean", float("nan"))
    mean_at_chance = not math.isnan(auc) and auc - 0.5 <= margin
    members = result.get("per_member", [])
    majority = [m for m in members if _predicts_majority_only(m, test_labels)]
    blind = [m for m in members if m["auc"] - 0.5 <= margin or m in majority]
    if not mean_at_chance and 2 * len(blind) < max(len(members), 1):
        return None
    parts = []
    if mean_at_chance:
        parts.append(f"mean test AUC {auc:.3f} is not above 0.5 by more than {margin:.3f}, the noise of this test set")
    if blind:
        detail = f"; {len(majority)} call every image the majority class" if majority else ""
        parts.append(f"{len(blind)} of {len(members)} members learnt nothing usable (AUC at most "
                     f"{0.5 + margin:.3f}, or accuracy = the majority share{detail})")
    return "baseline at chance: " + "; ".join(parts) + " — iteration changes are not meaningful"
