"""How well a region finder finds real defects: figures against ground-truth masks."""

from __future__ import annotations

import torch


def pixel_auroc(scores: torch.Tensor, truth: torch.Tensor) -> float:
    """Area under the ROC curve of per-pixel ``scores`` against bool ``truth`` (same shape), over
    every pixel given (ties count half). NaN when one side is empty."""
    s, t = scores.flatten().double(), truth.flatten().bool()
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = torch.argsort(s)
    ranks = torch.empty_like(s)
    ranks[order] = torch.arange(1, len(s) + 1, dtype=torch.float64)
    sorted_s = s[order]  # average the ranks of ties
    _, inverse, counts = torch.unique_consecutive(sorted_s, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    mean_rank = ends - (counts.double() - 1) / 2
    ranks[order] = mean_rank[inverse]
    return float((ranks[t].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def iou(found: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-image intersection over union ``(N,)`` of bool maps ``(N, H, W)`` (NaN where both are empty)."""
    f, t = found.flatten(1).bool(), truth.flatten(1).bool()
    inter, union = (f & t).sum(1).float(), (f | t).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(inter, float("nan")))


def region_figures(scores: torch.Tensor, found: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """Over the images with a true defect: mean IoU of the ``found`` regions, the share where the
    found region touches the defect (``hit``), and the pixel AUROC of the ``scores`` map."""
    has = truth.flatten(1).any(1)
    if not bool(has.any()):
        return {"images": 0, "iou": float("nan"), "hit": float("nan"), "pixel_auroc": float("nan")}
    f, t = found[has], truth[has]
    hit = (f & t).flatten(1).any(1).float().mean()
    return {"images": int(has.sum()), "iou": round(float(iou(f, t).nanmean()), 4), "hit": round(float(hit), 4),
            "pixel_auroc": round(pixel_auroc(scores[has], t), 4)}
