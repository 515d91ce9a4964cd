"""Projection of images into the W (or W+) space of a frozen generator, after the projector of the
StyleGAN2 paper (Karras et al. 2020, Sec. 5 and its released ``projector.py``), batched.

Every image gets its own latent (and its own noise maps); they are optimised together, which is
the same as optimising them one by one (Adam works element by element and each image's loss only
depends on its own variables) but much faster. The schedule follows the paper:

* start at the mean w (from mapping samples);
* Adam (betas 0.9, 0.999); learning rate ramped up over the first ``lr_rampup`` of the steps and
  down over the last ``lr_rampdown`` with a half cosine;
* Gaussian noise added to w, of standard deviation ``noise_start * w_spread`` (``w_spread``: the
  root mean square distance of mapping samples to their mean) decaying quadratically to zero at
  ``noise_ramp`` of the steps;
* the per-layer noise maps are optimised too, with the paper's regulariser (squared
  autocorrelation at one pixel, over a pyramid down to 8x8) and renormalised to zero mean and unit
  variance after every step.

**Deviation from the paper**: its distance is LPIPS (VGG16 features with learned weights), whose
weights cannot be downloaded here. We use a pixel mean squared error plus a feature distance in
the discriminator's feature space (each layer's activations normalised to unit length over the
channels, squared differences averaged over positions, summed over layers: LPIPS's form without
its learned weights). The discriminator was trained on the same images as the generator, so its
features respond to what the generator can draw. Without a discriminator the feature term is off.

**Early stop**: the best latent of every image (lowest loss so far) is kept; the whole batch stops
when no image has lowered its best loss by more than ``tol`` (relative) for ``patience`` steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from lagaug.plugins.stylegan2.networks import Discriminator, Generator, randn
from lagaug.plugins.stylegan2.training import device_generator, to_model_range, to_unit_range


@dataclass
class ProjectOptions:
    steps: int = 200
    lr: float = 0.1
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    noise_start: float = 0.05
    noise_ramp: float = 0.75
    noise_regularize: float = 1e5
    optimize_noise: bool = True
    w_plus: bool = False
    pixel_weight: float = 1.0
    feature_weight: float = 1.0
    patience: int = 25
    tol: float = 1e-3


@dataclass
class Projection:
    """Result of :func:`project` for N images."""

    w: torch.Tensor  # (N, D) or (N, n_latent, D) for W+
    noise: list[torch.Tensor]  # one (N, 1, side, side) map per layer
    error: torch.Tensor  # (N,) mean absolute pixel error of the reconstruction, [0, 1] units
    loss: torch.Tensor  # (N,) best loss
    steps: int = 0  # steps actually run
    history: list[float] = field(default_factory=list)  # mean loss per step


def learning_rate(t: float, options: ProjectOptions) -> float:
    """The paper's schedule at progress ``t`` in [0, 1]."""
    ramp = min(1.0, (1.0 - t) / max(options.lr_rampdown, 1e-8))
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp *= min(1.0, t / max(options.lr_rampup, 1e-8))
    return options.lr * ramp


def noise_scale(t: float, options: ProjectOptions) -> float:
    """The latent noise at progress ``t``, as a share of ``w_spread``."""
    return options.noise_start * max(0.0, 1.0 - t / max(options.noise_ramp, 1e-8)) ** 2


def noise_regularizer(noise: list[torch.Tensor]) -> torch.Tensor:
    """Per image: the squared mean products of each noise map with itself shifted by one pixel
    (both axes), over a pyramid of 2x2 averages down to 8x8, summed."""
    total = None
    for m in noise:
        x = m
        while True:
            term = ((x * torch.roll(x, 1, dims=3)).mean(dim=(1, 2, 3)) ** 2
                    + (x * torch.roll(x, 1, dims=2)).mean(dim=(1, 2, 3)) ** 2)
            total = term if total is None else total + term
            if x.shape[2] <= 8:
                break
            x = F.avg_pool2d(x, 2)
    return total


def feature_distance(feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> torch.Tensor:
    """Per image: sum over layers of the mean squared difference of channel-normalised features."""
    total = None
    for a, b in zip(feats_a, feats_b):
        a = a / (a.norm(dim=1, keepdim=True) + 1e-8)
        b = b / (b.norm(dim=1, keepdim=True) + 1e-8)
        d = (a - b).pow(2).sum(dim=1).mean(dim=(1, 2))
        total = d if total is None else total + d
    return total


def _per_image_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).pow(2).flatten(1).mean(1)


def project(g: Generator, images: torch.Tensor, w_avg: torch.Tensor, w_spread: float,
            options: ProjectOptions, generator: torch.Generator, device, *,
            d: Discriminator | None = None, advance=None) -> Projection:
    """Project ``images`` (float ``(N, C, H, W)`` in ``[0, 1]``) into ``g``'s W space (W+ with
    ``options.w_plus``). ``w_avg`` ``(D,)`` and ``w_spread`` come from mapping samples (see
    :func:`lagaug.plugins.stylegan2.directions.w_statistics`). ``advance(k)`` reports progress
    (called once per step). The networks are left unchanged."""
    device = torch.device(device)
    gen = device_generator(generator, device)
    g = g.to(device).eval()
    was_grad = [p.requires_grad for p in g.parameters()]
    for p in g.parameters():
        p.requires_grad_(False)
    use_features = d is not None and options.feature_weight > 0
    if use_features:
        d = d.to(device).eval()
        d_grad = [p.requires_grad for p in d.parameters()]
        for p in d.parameters():
            p.requires_grad_(False)
    try:
        return _project(g, images, w_avg, w_spread, options, gen, device,
                        d if use_features else None, advance)
    finally:
        for p, flag in zip(g.parameters(), was_grad):
            p.requires_grad_(flag)
        if use_features:
            for p, flag in zip(d.parameters(), d_grad):
                p.requires_grad_(flag)


def _project(g, images, w_avg, w_spread, options, gen, device, d, advance) -> Projection:
    n = images.shape[0]
    target = to_model_range(images.float()).to(device)
    start = w_avg.to(device).view(1, -1)
    if options.w_plus:
        w_opt = start.view(1, 1, -1).repeat(n, g.n_latent, 1)
    else:
        w_opt = start.repeat(n, 1)
    w_opt.requires_grad_(True)
    if options.optimize_noise:
        noise = [randn((n, 1, s, s), gen, device).requires_grad_(True) for s in g.noise_sides()]
        params = [w_opt, *noise]
    else:
        noise = [m.expand(n, -1, -1, -1) for m in g.fixed_noise()]
        params = [w_opt]
    optim = torch.optim.Adam(params, lr=options.lr, betas=(0.9, 0.999))
    target_feats = [f.detach() for f in d.features(target)] if d is not None else None

    best_loss = torch.full((n,), float("inf"), device=device)
    best_w = w_opt.detach().clone()
    best_noise = [m.detach().clone() for m in noise]
    last_gain = torch.zeros(n, dtype=torch.long, device=device)
    history: list[float] = []
    steps = max(int(options.steps), 1)
    done = 0
    for step in range(steps):
        t = step / steps
        for group in optim.param_groups:
            group["lr"] = learning_rate(t, options)
        sigma = w_spread * noise_scale(t, options)
        w_in = w_opt + randn(w_opt.shape, gen, device) * sigma if sigma > 0 else w_opt
        synth = g.synthesis(w_in, noise=noise)
        loss = options.pixel_weight * _per_image_mse(synth, target)
        if d is not None:
            loss = loss + options.feature_weight * feature_distance(d.features(synth), target_feats)
        if options.optimize_noise and options.noise_regularize > 0:
            loss = loss + options.noise_regularize * noise_regularizer(noise)
        with torch.no_grad():  # keep each image's best latent (the one this loss was measured at)
            better = loss.detach() < best_loss * (1 - options.tol)
            improved = loss.detach() < best_loss
            if bool(improved.any()):
                best_loss = torch.where(improved, loss.detach(), best_loss)
                shape = (-1,) + (1,) * (w_opt.dim() - 1)
                best_w = torch.where(improved.view(shape), w_opt.detach(), best_w)
                best_noise = [torch.where(improved.view(-1, 1, 1, 1), m.detach(), b)
                              for m, b in zip(noise, best_noise)]
            last_gain = torch.where(better, torch.full_like(last_gain, step), last_gain)
        optim.zero_grad(set_to_none=True)
        loss.sum().backward()
        optim.step()
        if options.optimize_noise:
            with torch.no_grad():
                for m in noise:
                    m -= m.mean(dim=(1, 2, 3), keepdim=True)
                    m *= torch.rsqrt(m.pow(2).mean(dim=(1, 2, 3), keepdim=True) + 1e-12)
        history.append(float(loss.detach().mean()))
        done = step + 1
        if advance is not None:
            advance(1)
        if options.patience > 0 and step >= options.patience and bool((step - last_gain >= options.patience).all()):
            break
    with torch.no_grad():
        recon = g.synthesis(best_w, noise=best_noise)
        error = (to_unit_range(recon) - images.to(device).float()).abs().flatten(1).mean(1)
    return Projection(w=best_w.cpu(), noise=[m.cpu() for m in best_noise], error=error.cpu(),
                      loss=best_loss.cpu(), steps=done, history=history)


@torch.no_grad()
def reconstruct(g: Generator, w: torch.Tensor, noise: list[torch.Tensor] | None, device) -> torch.Tensor:
    """Images in ``[0, 1]`` from ``w`` and per-image noise maps (the stored fixed noise if None)."""
    device = torch.device(device)
    g = g.to(device).eval()
    maps = None if noise is None else [m.to(device) for m in noise]
    return to_unit_range(g.synthesis(w.to(device), noise=maps)).cpu()
