"""Classifier metrics (ROC AUC, macro-F1, accuracy) and their summary over ensemble members, numpy only.

Intervals come from :mod:`lagaug.core.stats`."""

from __future__ import annotations

import math

import numpy as np

from lagaug.core.stats import average_ranks, mean_ci


def binary_auc(scores, positive) -> float:
    """ROC AUC of ``scores`` for the bool array ``positive`` (Mann-Whitney U, ties averaged)."""
    scores = np.asarray(scores, dtype=float)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(scores)
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
    """``{metric}_mean`` and ``{metric}_ci`` (95% half-width) over members, for each metric.

    The interval measures how much the figure varies with the members' seeds on one test set; with
    one member it is undefined (NaN)."""
    out: dict[str, float] = {}
    for key in per_member[0] if per_member else []:
        mean, half = mean_ci([m[key] for m in per_member])
        out[f"{key}_mean"], out[f"{key}_ci"] = mean, half
    return out
