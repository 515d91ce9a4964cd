"""What a ``vqvae2`` fit measures about itself, for ``generator.json`` (``extra.diagnostics``), the
run's ``fit.json`` and a picture beside the generator:

* **reconstruction** of held-out images (the validation images the fit was given; else the
  training images, and it says so): mean absolute error (``l1``, ``[0, 1]`` pixel units) and mean
  per-image PSNR (dB), through encode -> quantize -> decode with nothing resampled;
* **codebook usage** per level over the training images' codes: ``perplexity`` (``exp`` of the
  usage entropy; ``n_embed`` when every code is used equally) and ``dead_codes`` (never used);
* **the reconstruction grid** ``reconstructions.png``: one held-out image per row — source |
  encode -> decode | resampled variants (bottom codes redrawn by the prior, as ``augment`` does);
* a **warning** when the automatically chosen prior checkpoint is the last epoch (the held-out
  NLL was still falling: the prior may be under-trained).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from lagaug.core.contract.method import StageContext
from lagaug.plugins.vqvae2.training import EVAL_BATCH, to_model_range
from lagaug.plugins.vqvae2.vqvae import VQVAE2, perplexity

GRID_FILE = "reconstructions.png"


@torch.no_grad()
def reconstruct(model: VQVAE2, images: torch.Tensor, device, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """encode -> quantize -> decode of ``[0, 1]`` images, back in ``[0, 1]`` (CPU)."""
    model.eval()
    outs = []
    for s in range(0, images.shape[0], batch_size):
        out, _ = model(to_model_range(images[s : s + batch_size]).to(device))
        outs.append(((out.clamp(-1, 1) + 1) / 2).cpu())
    return torch.cat(outs) if outs else images.clone()


def recon_figures(recon: torch.Tensor, images: torch.Tensor) -> dict[str, float]:
    """``l1`` (mean absolute error) and ``psnr`` (mean per-image PSNR, dB, capped at 100)."""
    diff = (recon.float() - images.float()).flatten(1)
    mse = diff.pow(2).mean(1).clamp_min(1e-10)
    return {"l1": round(float(diff.abs().mean()), 6),
            "psnr": round(float((10 * torch.log10(1 / mse)).clamp(max=100).mean()), 3)}


def code_usage(ids: torch.Tensor, n_embed: int) -> dict[str, Any]:
    counts = torch.bincount(ids.reshape(-1).cpu(), minlength=n_embed)
    return {"perplexity": round(perplexity(ids, n_embed), 3), "used": int((counts > 0).sum()),
            "dead_codes": int((counts == 0).sum()), "n_embed": n_embed}


def prior_warning(level: str, record: dict[str, Any], pinned: bool) -> str | None:
    """The warning (also recorded) when the chosen checkpoint is the last of several epochs."""
    nll = record.get("val_nll") or []
    if pinned or len(nll) < 2 or record.get("chosen_epoch") != len(nll):
        return None
    return (f"vqvae2: the {level} prior's held-out NLL was lowest at its last epoch "
            f"({len(nll)} of {len(nll)}): it may be under-trained; raise --set prior_epochs")


def warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


def grid_tensors(sources: torch.Tensor, recon: torch.Tensor, variants: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(made, index)`` for :func:`lagaug.core.plots.save_pair_grid`: per source row, its
    reconstruction then its variants (``variants`` ``(N * V, ...)``, consecutive per source)."""
    n = len(sources)
    v = len(variants) // max(n, 1)
    made, index = [], []
    for i in range(n):
        made += [recon[i], *variants[i * v : (i + 1) * v]]
        index += [i] * (1 + v)
    return (torch.stack(made) if made else recon), torch.tensor(index, dtype=torch.long)


def diagnose(method, images, top, bottom, ctx, dev) -> dict[str, Any]:
    """After a fit: held-out reconstruction and codebook usage (``top`` / ``bottom``: the training
    images' codes) into ``method.state["diagnostics"]``, and the reconstruction grid into
    ``method.figures`` (``save()`` writes it). Sampling draws from ``ctx.generator``."""
    val = getattr(ctx, "val", None)
    held, where = (val.float_images(), f"{len(val)} validation images") if val is not None and len(val) \
        else (images, f"{len(images)} training images (no validation set given)")
    recon = reconstruct(method.vqvae, held, dev)
    out: dict[str, Any] = {
        "reconstruction": {"images": where, **recon_figures(recon, held)},
        "codebook": {"top": code_usage(top, method.config.n_embed),
                     "bottom": code_usage(bottom, method.config.n_embed)},
    }
    if held is not images:
        out["reconstruction"]["train"] = recon_figures(
            reconstruct(method.vqvae, images, dev), images)
    method.state["diagnostics"] = out
    n = min(method.config.grid_images, len(held))
    if n:
        pick = torch.linspace(0, len(held) - 1, n).round().long().unique()
        ctx_s = StageContext(generator=ctx.generator, device=dev, variants=3)
        latents = method.encode(held[pick], torch.zeros(len(pick), max(method.num_classes, 1)), ctx_s)
        variants = method.decode(method.resample(latents, ctx_s), ctx_s).images
        made, index = grid_tensors(held[pick], recon[pick], variants)
        method.figures[GRID_FILE] = (held[pick], made, index)
    return out
