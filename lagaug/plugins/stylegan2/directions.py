"""Statistics of W and the moves that resample a projected latent.

* :func:`w_statistics` — mean w, per-dimension standard deviation and overall spread, from
  mapping samples (the projector starts at the mean; ``random`` moves scale with the spread).
* :func:`principal_directions` — GANSpace (Härkönen et al. 2020): principal axes of mapping
  samples in W, with the standard deviation along each.
* :func:`fit_class_directions` — InterFaceGAN (Shen et al. 2020): one linear classifier per class
  (that class against the others) on the projected training latents; its unit normal in W is the
  class direction, and ``normal · w + offset`` the signed distance to its boundary.

The moves (:func:`random_move`, :func:`pca_move`, :func:`class_move`) return a displacement per
row, drawn from a seeded generator, plus what was chosen. ``magnitude`` is always in units of the
spread of W along the move's direction, so one number means about the same for every direction.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from lagaug.plugins.stylegan2.networks import Generator, randn
from lagaug.plugins.stylegan2.training import device_generator

DIRECTIONS = ("random", "class", "pca")
DIRECTION_IDS = {name: i for i, name in enumerate(DIRECTIONS)}


@torch.no_grad()
def mapping_samples(g: Generator, n: int, generator: torch.Generator, device, batch: int = 4096) -> torch.Tensor:
    """``n`` w vectors ``(n, D)`` (CPU) from z drawn from ``generator``."""
    device = torch.device(device)
    gen = device_generator(generator, device)
    g = g.to(device).eval()
    out = []
    for s in range(0, n, batch):
        z = randn((min(batch, n - s), g.style_dim), gen, device)
        out.append(g.mapping(z).cpu())
    return torch.cat(out)


def w_statistics(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mean ``(D,)``, per-dimension standard deviation ``(D,)`` and spread (root mean squared
    distance of the samples to the mean, as the paper's projector measures it)."""
    samples = samples.double()
    mean = samples.mean(0)
    centred = samples - mean
    std = centred.pow(2).mean(0).sqrt()
    spread = float(centred.pow(2).sum(1).mean().sqrt())
    return mean.float(), std.float(), spread


def principal_directions(samples: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` principal unit directions ``(k, D)`` of ``samples`` and the standard deviation of
    the samples along each ``(k,)``, largest first (signs fixed: largest entry positive)."""
    x = samples.double() - samples.double().mean(0)
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    k = min(k, vh.shape[0])
    comps = vh[:k]
    signs = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
    comps = comps * torch.where(signs == 0, torch.ones_like(signs), signs)
    stds = s[:k] / math.sqrt(max(x.shape[0] - 1, 1))
    return comps.float(), stds.float()


def fit_class_directions(w: torch.Tensor, labels: torch.Tensor, num_classes: int, w_avg: torch.Tensor,
                         w_std: torch.Tensor, samples: torch.Tensor | None = None, l2: float = 1e-2,
                         max_iter: int = 200) -> dict[str, torch.Tensor]:
    """One-against-the-rest logistic regressions on standardised ``w`` ``(N, D)`` (class-balanced
    weights, L2 penalty ``l2``), fitted with L-BFGS (deterministic).

    Returns ``normals`` ``(K, D)`` (unit, in W), ``offsets`` ``(K,)`` (so ``normals @ w + offsets``
    is the signed distance in W, positive on the class's side), ``spreads`` ``(K,)`` (the standard
    deviation of ``samples`` — mapping samples — along each normal; of ``w`` when None),
    ``accuracy`` ``(K,)`` (balanced accuracy of each classifier on ``w``) and ``present`` ``(K,)``
    (1 for classes with images on both sides, else the row is zero)."""
    w = w.double()
    mu, sigma = w_avg.double(), w_std.double().clamp_min(1e-8)
    x = (w - mu) / sigma
    n, dim = x.shape
    y = torch.nn.functional.one_hot(labels.long(), num_classes).double().t() * 2 - 1  # (K, N)
    pos = (y > 0).double()
    n_pos = pos.sum(1, keepdim=True)
    present = ((n_pos > 0) & (n_pos < n)).double().view(-1)
    weight = torch.where(y > 0, 0.5 / n_pos.clamp_min(1), 0.5 / (n - n_pos).clamp_min(1))  # (K, N)
    a = torch.zeros(num_classes, dim, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optim = torch.optim.LBFGS([a, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9,
                              tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure():
        optim.zero_grad()
        margins = y * (a @ x.t() + b[:, None])
        loss = (weight * F.softplus(-margins)).sum() + 0.5 * l2 * a.pow(2).sum()
        loss.backward()
        return loss

    optim.step(closure)
    a, b = a.detach(), b.detach()
    raw = a / sigma  # normal in W (unnormalised)
    norm = raw.norm(dim=1).clamp_min(1e-12)
    normals = raw / norm[:, None]
    offsets = (b - (a * mu / sigma).sum(1)) / norm
    normals = normals * present[:, None]
    offsets = offsets * present
    scores = (a @ x.t() + b[:, None]) > 0
    hit = (scores == (y > 0)).double()
    accuracy = (0.5 * (hit * pos).sum(1) / n_pos.view(-1).clamp_min(1)
                + 0.5 * (hit * (1 - pos)).sum(1) / (n - n_pos.view(-1)).clamp_min(1))
    ref = (samples if samples is not None else w).double()
    spreads = (ref @ normals.t()).std(0) if ref.shape[0] > 1 else torch.ones(num_classes, dtype=torch.float64)
    return {"normals": normals.float(), "offsets": offsets.float(), "spreads": spreads.float(),
            "accuracy": (accuracy * present).float(), "present": present.float()}


# -- moves -------------------------------------------------------------------------------------


def _layer_mean(w: torch.Tensor) -> torch.Tensor:
    """``(N, D)`` for a W latent, the mean over layers for a W+ latent ``(N, L, D)``."""
    return w if w.dim() == 2 else w.mean(1)


def random_move(w: torch.Tensor, w_std: torch.Tensor, magnitude: float,
                generator: torch.Generator) -> dict[str, torch.Tensor]:
    """DAPPER's perturbation: ``magnitude * w_std * eps`` with ``eps ~ N(0, I)`` per row."""
    n, dim = w.shape[0], w.shape[-1]
    eps = torch.randn((n, dim), generator=generator)
    delta = magnitude * w_std.view(1, -1) * eps
    return {"delta": delta, "magnitude": torch.full((n,), float(magnitude)),
            "component": torch.full((n,), -1.0)}


def pca_move(w: torch.Tensor, components: torch.Tensor, stds: torch.Tensor, magnitude: float,
             n_components: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """GANSpace: one of the first ``n_components`` principal directions per row (uniformly),
    with coefficient ``magnitude * eps`` (``eps ~ N(0, 1)``) times the spread along it."""
    n = w.shape[0]
    k = max(1, min(int(n_components), components.shape[0]))
    idx = torch.randint(0, k, (n,), generator=generator)
    coef = magnitude * torch.randn((n,), generator=generator)
    delta = (coef * stds[idx])[:, None] * components[idx]
    return {"delta": delta, "magnitude": coef, "component": idx.float()}


def class_move(w: torch.Tensor, classes: torch.Tensor, normals: torch.Tensor, offsets: torch.Tensor,
               spreads: torch.Tensor, magnitude: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """InterFaceGAN: move each row along the normal of its class's boundary (towards the class)
    or against it (towards the boundary), by ``magnitude * |eps|`` spreads (``eps ~ N(0, 1)``),
    so that the class is kept: a move against the normal is made only when the row stays at
    least half its distance inside its class; otherwise it goes along the normal.

    ``classes`` ``(N,)`` are class indices. Returns the displacement, the signed coefficient
    (in spreads; positive = towards the class) and the distances before and after."""
    n = w.shape[0]
    classes = classes.long()
    normal = normals[classes]  # (N, D)
    dist = (_layer_mean(w).float() * normal).sum(1) + offsets[classes]
    size = magnitude * torch.randn((n,), generator=generator).abs() * spreads[classes]
    against = torch.rand((n,), generator=generator) < 0.5
    allowed = against & (dist > 0) & (size <= dist / 2)
    step = torch.where(allowed, -size, size)
    delta = step[:, None] * normal
    coef = step / spreads[classes].clamp_min(1e-12)
    return {"delta": delta, "magnitude": coef, "component": torch.full((n,), -1.0),
            "distance_before": dist, "distance_after": dist + step}


def apply_move(w: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """``w + delta`` for W ``(N, D)``; the same displacement on every layer for W+."""
    return w + (delta if w.dim() == 2 else delta[:, None, :])
