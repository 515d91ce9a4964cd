"""Classifier metrics (ROC AUC, macro-F1, accuracy) and confidence intervals, numpy only."""

from __future__ import annotations

import math

import numpy as np

# two-sided 95% Student-t quantiles by degrees of freedom (1..30); 1.96 beyond
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t_quantile_975(dof: int) -> float:
    if dof < 1:
        return float("nan")
    return _T975[dof - 1] if dof <= len(_T975) else 1.96


def mean_ci(values) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (Student t over the values).

    One value gives a half-width of 0 (no spread can be estimated; reported as such)."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan")
    if arr.size == 1:
        return float(arr[0]), 0.0
    half = t_quantile_975(arr.size - 1) * arr.std(ddof=1) / math.sqrt(arr.size)
    return float(arr.mean()), float(half)


def binary_auc(scores, positive) -> float:
    """ROC AUC of ``scores`` for the bool array ``positive`` (Mann-Whitney U, ties averaged)."""
    scores = np.asarray(scores, dtype=float)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=float)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_auc(probs, labels) -> float:
    """Binary AUC on class 1's probability; macro one-vs-rest AUC for more classes."""
    probs = np.asarray(probs, dtype=float)
    labels = np.asarray(labels)
    k = probs.shape[1]
    if k == 2:
        return binary_auc(probs[:, 1], labels == 1)
    aucs = [binary_auc(probs[:, c], labels == c) for c in range(k)]
    aucs = [a for a in aucs if not math.isnan(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def macro_f1(pred, labels, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over classes present in labels or predictions."""
    pred = np.asarray(pred)
    labels = np.asarray(labels)
    scores = []
    for c in range(num_classes):
        tp = int(((pred == c) & (labels == c)).sum())
        fp = int(((pred == c) & (labels != c)).sum())
        fn = int(((pred != c) & (labels == c)).sum())
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else float("nan")


def classification_metrics(probs, labels) -> dict[str, float]:
    """AUC, macro-F1 and accuracy of one classifier's ``(N, K)`` probabilities."""
    probs = np.asarray(probs, dtype=float)
    labels = np.asarray(labels)
    pred = probs.argmax(1)
    return {
        "auc": roc_auc(probs, labels),
        "f1": macro_f1(pred, labels, probs.shape[1]),
        "accuracy": float((pred == labels).mean()),
    }


def summarise(per_member: list[dict[str, float]]) -> dict[str, float]:
    """``{metric}_mean`` and ``{metric}_ci`` (95% half-width) over members, for each metric."""
    out: dict[str, float] = {}
    for key in per_member[0] if per_member else []:
        mean, half = mean_ci([m[key] for m in per_member])
        out[f"{key}_mean"], out[f"{key}_ci"] = mean, half
    return out
