"""Is a baseline at chance? The check behind the summary's "iteration changes are not meaningful".

Two signs, either enough:

* **AUC indistinguishable from 0.5.** The mean test AUC is not above 0.5 by more than the larger of
  (a) the half-width of its 95% interval over members and (b) 1.96 standard errors of the AUC of a
  classifier that ignores the image, on this test set. (b) is the Mann-Whitney null: for ``n1``
  positive and ``n0`` negative images the AUC's variance is ``(n1 + n0 + 1) / (12 n1 n0)``; for more
  classes the macro one-vs-rest mean is treated as a mean of independent per-class AUCs.
* **Members that call everything the majority class.** A member whose accuracy equals the majority
  share and whose macro-F1 equals that of always predicting the majority class learnt nothing
  usable; when at least half of the members do, the baseline is flagged.
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


def majority_members(result: dict, test_labels) -> int:
    """How many members (``result["per_member"]``) predict only the majority class."""
    n = len(np.asarray(test_labels))
    acc, f1 = majority_scores(test_labels)
    tol = 0.5 / max(n, 1)
    return sum(1 for m in result.get("per_member", [])
               if abs(m["accuracy"] - acc) < tol and abs(m["f1"] - f1) < 1e-6)


def chance_warning(result: dict, test_labels) -> str | None:
    """The summary's warning when the result of :meth:`Ensemble.evaluate` on test images labelled
    ``test_labels`` is at chance (see the module), else ``None``."""
    reasons = []
    auc, ci = result.get("auc_mean", float("nan")), result.get("auc_ci", float("nan"))
    margin = max(v for v in (null_auc_margin(test_labels), ci, 0.0) if not math.isnan(v))
    if not math.isnan(auc) and auc - 0.5 <= margin:
        reasons.append(f"mean test AUC {auc:.3f} (± {ci:.3f}) is within {margin:.3f} of chance (0.5)")
    members = len(result.get("per_member", []))
    major = majority_members(result, test_labels)
    if members and 2 * major >= members:
        share, f1 = majority_scores(test_labels)
        reasons.append(f"{major} of {members} members predict only the majority class "
                       f"(accuracy {share:.3f} = its share, macro-F1 {f1:.3f})")
    if not reasons:
        return None
    return "baseline at chance: " + "; ".join(reasons) + " — iteration changes are not meaningful"
