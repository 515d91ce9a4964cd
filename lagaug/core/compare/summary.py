"""From finished cells to per-arm rows and corrected paired comparisons.

The comparisons (:func:`lagaug.core.compare.arms.comparison_pairs`): every arm against ``real``;
every arm of a method under test against ``duplicate``, ``pseudo-label`` and each baseline method's
arm (``cut-paste``); ``classic+``L against ``classic``; L``+gate`` against L and ``duplicate`` — on
every metric, paired over the repeats both arms finished. The **primary** comparisons, named
before any data is seen, are those a method under test must win, on macro-F1: L vs real, L vs
duplicate, L vs pseudo-label, L vs cut-paste, classic+L vs classic and L+gate vs L; they form one
family, Holm-corrected together. Every other comparison forms the secondary family, Holm-corrected
together. "Significant" always means the corrected p is below alpha.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lagaug.core.compare.arms import Arm, comparison_pairs, resolve_plan
from lagaug.core.compare.config import METRICS, PRIMARY_METRIC, REAL
from lagaug.core.stats import holm, mean_ci, paired_test


def summarise_cells(cells: list[dict], plan: list[Arm] | list[str], method: str | None = None,
                    test: str = "wilcoxon", alpha: float = 0.05) -> tuple[list[dict], list[dict]]:
    """Per-arm rows (mean ± 95% CI over repeats) and the comparisons (raw and Holm-corrected p).

    ``plan``: the run's arms (:class:`~lagaug.core.compare.arms.Arm`), or their names with
    ``method`` the name that ``method`` arms stand for."""
    if plan and isinstance(plan[0], str):
        plan = resolve_plan(list(plan), method)[0]
    arms = [a.name for a in plan]
    by_arm = {a: {c["repeat"]: c for c in cells if c["arm"] == a} for a in arms}
    comparisons = []
    for arm, base, primary in comparison_pairs(plan):
        common = sorted(set(by_arm[arm]) & set(by_arm[base]))
        for metric in METRICS:
            t = paired_test([by_arm[arm][r][metric] for r in common], [by_arm[base][r][metric] for r in common], test)
            comparisons.append({
                "arm": arm, "baseline": base, "metric": metric, "n": t["n"], "delta": t["delta"],
                "delta_ci": t["delta_ci"], "p": t["p"], "min_p": t["min_p"], "test": t["test"],
                "family": "primary" if primary and metric == PRIMARY_METRIC else "secondary",
            })
    for family in ("primary", "secondary"):
        members = [c for c in comparisons if c["family"] == family]
        for c, adjusted in zip(members, holm([c["p"] for c in members])):
            c["p_holm"] = adjusted
            c["significant"] = bool(adjusted < alpha)
    rows = []
    for arm in arms:
        got = [by_arm[arm][r] for r in sorted(by_arm[arm])]
        if not got:
            continue
        row: dict[str, Any] = {"arm": arm, "repeats": len(got),
                               "train_size": float(np.mean([c["train_size"] for c in got])),
                               "added": float(np.mean([c["added"] for c in got]))}
        for metric in METRICS:
            row[f"{metric}_mean"], row[f"{metric}_ci"] = mean_ci([c[metric] for c in got])
        vs = next((c for c in comparisons if c["arm"] == arm and c["baseline"] == REAL
                   and c["metric"] == PRIMARY_METRIC), None)
        row["f1_delta_vs_real"] = vs["delta"] if vs else float("nan")
        row["f1_p_vs_real"] = vs["p_holm"] if vs else float("nan")
        row["f1_significant_vs_real"] = vs["significant"] if vs else None
        rows.append(row)
    return rows, comparisons
