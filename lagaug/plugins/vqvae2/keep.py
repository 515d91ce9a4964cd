"""What ``vqvae2`` keeps of a region (an image's defect) while it resamples.

* ``keep=region`` (default): the top and bottom codes under the region (grown by ``keep_margin``
  pixels) stay; the prior redraws the other bottom codes, conditioned on them and on the top codes
  — the defect stays where it is, its surroundings change. The decoder renders kept codes close to,
  not exactly as, the source (its reconstruction error, and neighbours that changed), so by default
  (``keep_pixels``) the region's own pixels, feathered at the edge, replace its rendering.
* ``transplant=pool`` / ``train``: the region's codes are written into the codes of a defect-free
  image (drawn from the unlabelled pool, or from the normal-class training images) at the same
  place, and the prior redraws only a band of ``seam`` bottom cells around it, so the defect sits
  on a background the labelled set never had. Both images are the synthetic image's sources,
  weighted by the share of the image each gave.

Images without a region (e.g. of a defect-free class) are resampled as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lagaug.core.regions.masks import dilate, to_grid


@dataclass
class KeepPlan:
    """The codes and cells one resample works with (rows repeated per variant)."""

    top: torch.Tensor
    bottom: torch.Tensor
    resample: torch.Tensor  # bool (N, Hb, Wb): bottom cells the prior redraws
    region: torch.Tensor  # bool (N, H, W): the kept region in pixels (empty: nothing kept)
    source: torch.Tensor  # (N, S) rows of ctx.source_set()
    weight: torch.Tensor  # (N, S)
    notes: list[dict]


def plan_keep(method, top: torch.Tensor, bottom: torch.Tensor, resample: torch.Tensor, source: torch.Tensor,
              weight: torch.Tensor, ctx, option) -> KeepPlan:
    """Apply ``keep`` / ``transplant`` (read with ``option(key)``) to a repeated batch of codes."""
    n = len(top)
    h, w = method.image_shape[1:]
    region = torch.zeros(n, h, w, dtype=torch.bool)
    names = ["none"] * n
    regions = getattr(ctx, "regions", None)
    if option("keep") == "region" and regions is not None and regions.any():
        region, names = regions.for_rows(source[:, 0])
    notes = [{"keep": option("keep")} for _ in range(n)]
    has = region.flatten(1).any(1)
    if not bool(has.any()):
        return KeepPlan(top, bottom, resample, region, source, weight, notes)
    grown = dilate(region, int(option("keep_margin")))
    keep_b = to_grid(grown, method.bottom_shape)
    keep_t = to_grid(grown, method.top_shape)
    transplant = option("transplant")
    if transplant == "none":
        resample = resample & ~keep_b
        for i in torch.nonzero(has).flatten().tolist():
            notes[i]["kept_cells"] = int(keep_b[i].sum())
        return KeepPlan(top, bottom, resample, region, source, weight, notes)
    rows = torch.nonzero(has).flatten()
    from lagaug.core.regions.backgrounds import pick_backgrounds

    images, bg_rows = pick_backgrounds(ctx, len(rows), transplant, exclude=ctx.batch_rows(len(regions.rows)))
    bg_top, bg_bottom = method._codes(images, torch.device(ctx.device))
    top, bottom = top.clone(), bottom.clone()
    top[rows] = torch.where(keep_t[rows], top[rows], bg_top)
    bottom[rows] = torch.where(keep_b[rows], bottom[rows], bg_bottom)
    seam = dilate(keep_b, int(option("seam"))) & ~keep_b
    resample = resample.clone()
    resample[rows] = seam[rows]
    share = grown.flatten(1).float().mean(1)
    new_source = torch.cat([source[:, :1], torch.full((n, 1), -1, dtype=source.dtype)], 1)
    new_weight = torch.cat([weight[:, :1], torch.zeros(n, 1)], 1)
    new_source[rows, 1] = bg_rows.to(source.dtype)
    new_weight[rows, 0], new_weight[rows, 1] = share[rows], 1 - share[rows]
    for k, i in enumerate(rows.tolist()):
        notes[i].update(transplant=transplant, seam=int(option("seam")), kept_cells=int(keep_b[i].sum()),
                        seam_cells=int(seam[i].sum()))
    return KeepPlan(top, bottom, resample, region, new_source, new_weight, notes)
