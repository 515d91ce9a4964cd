"""Partner choice and latent arithmetic of the overlay method (no networks here).

* :func:`rule_rows` / :func:`partner_rows` — which pool rows may be overlaid with a hard image
  (real images, of the same class by default), with a one-line :class:`~lagaug.DataError` naming
  the class when there are too few;
* :func:`choose_partners` — the partners of every variant: ``farthest`` (greedy farthest-point
  in latent space: the candidate farthest from the hard image, then the one farthest from both, ...;
  later variants prefer candidates earlier variants did not use) or ``random``;
* :func:`combine` — the overlay latent: ``sum`` (the seed), ``mean``, or ``rescaled`` (the sum
  scaled to the mean norm of its sources), with the coefficients used on every latent;
* :func:`norm_rank` — where a latent's norm lands among the training latents' norms.
"""

from __future__ import annotations

import torch

from lagaug.core.errors import DataError

PARTNER_RULES = ("farthest", "random")
PARTNER_CLASSES = ("same", "other", "any")
COMBINE_RULES = ("sum", "mean", "rescaled")


def rule_rows(labels: torch.Tensor, real: torch.Tensor, cls: int, rule: str) -> torch.Tensor:
    """Pool rows that may partner a hard image of class ``cls`` under ``rule``: ``same`` (real
    images of class ``cls``), ``other`` (real images of other classes) or ``any`` (every real
    image). The hard image itself is still among them; :func:`partner_rows` leaves it out."""
    if rule == "same":
        keep = real & (labels == cls)
    elif rule == "other":
        keep = real & (labels != cls)
    else:
        keep = real.clone()
    return torch.nonzero(keep).flatten()


def partner_rows(rows: torch.Tensor, hard_row: int, needed: int, rule: str, class_name: str) -> torch.Tensor:
    """``rows`` without ``hard_row``; a :class:`DataError` naming the class when fewer than
    ``needed`` remain."""
    rows = rows[rows != hard_row]
    if len(rows) < needed:
        where, fix = {
            "same": (f"real image(s) of class {class_name!r}",
                     f"add images of class {class_name!r}, lower --set sources or --set partner_classes=any"),
            "other": (f"real image(s) outside class {class_name!r}",
                      "add images of other classes, lower --set sources or --set partner_classes=any"),
            "any": ("real image(s) in the pool", "add images or lower --set sources"),
        }[rule]
        raise DataError(
            f"vae-overlay: class {class_name!r}: an overlay of {needed + 1} sources needs {needed} partner(s), "
            f"but there are only {len(rows)} other {where}; {fix}"
        )
    return rows


def choose_partners(hard: torch.Tensor, candidates: torch.Tensor, n: int, variants: int, rule: str,
                    generator: torch.Generator) -> torch.Tensor:
    """``(variants, n)`` indices into ``candidates`` ``(M, d)`` for a hard latent ``hard`` ``(d,)``.

    ``farthest``: greedy farthest-point selection, starting from the hard image (ties go to the
    lower index); each variant first uses candidates no earlier variant used, while at least ``n``
    remain. ``random``: ``n`` distinct candidates per variant, drawn from ``generator``.
    """
    m = len(candidates)
    if rule == "random":
        return torch.stack([torch.randperm(m, generator=generator)[:n] for _ in range(variants)])
    dist = torch.cdist(candidates.double(), candidates.double())
    to_hard = (candidates.double() - hard.double()).norm(dim=1)
    used = torch.zeros(m, dtype=torch.bool)
    out = []
    for _ in range(variants):
        allowed = ~used if int((~used).sum()) >= n else torch.ones(m, dtype=torch.bool)
        nearest = to_hard.clone()  # distance of every candidate to the nearest chosen latent
        chosen = []
        for _ in range(n):
            score = torch.where(allowed, nearest, torch.full_like(nearest, -1.0))
            j = int(torch.argmax(score))
            chosen.append(j)
            allowed[j] = False
            nearest = torch.minimum(nearest, dist[j])
        used[chosen] = True
        out.append(chosen)
    return torch.tensor(out, dtype=torch.int64)


def combine(latents: torch.Tensor, rule: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The overlay latent of ``latents`` ``(S, d)`` and the coefficient on each ``(S,)``.

    ``sum``: 1 each (the seed's overlay); ``mean``: 1/S each; ``rescaled``: the sum multiplied by
    ``mean_j ||z_j|| / ||sum_j z_j||``, so the overlay lies as far from the origin as its sources do
    on average (coefficient 1 when the sum is the origin).
    """
    s = len(latents)
    total = latents.sum(0)
    if rule == "sum":
        coef = torch.ones(s)
    elif rule == "mean":
        coef = torch.full((s,), 1.0 / s)
    else:
        norm = float(total.norm())
        scale = float(latents.norm(dim=1).mean()) / norm if norm > 1e-12 else 1.0
        coef = torch.full((s,), scale)
    return (coef[:, None].to(latents.dtype) * latents).sum(0), coef.float()


def norm_rank(norm: float, train_norms: torch.Tensor) -> float:
    """Share of ``train_norms`` below ``norm``: 1.0 means farther out than every training latent."""
    if len(train_norms) == 0:
        return float("nan")
    return float((train_norms < norm).float().mean())
