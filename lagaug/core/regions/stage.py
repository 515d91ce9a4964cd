"""The core's default ``lagaug_find_region`` and what decode does with a region.

:func:`find_regions` follows ``context.region_source``:

* ``mask`` — the masks given with the data (an image without one: no region);
* ``anomaly`` — the anomaly map of ``context.anomaly`` (:mod:`.anomaly`);
* ``saliency`` — occlusion saliency of ``context.classify`` for the image's intended class;
* ``none`` — no region anywhere (every method varies the whole image, as before regions existed);
* ``auto`` (default) — per image, its given mask; else the anomaly map when an anomaly model is
  there; else none.

Images whose intended class is a normal (defect-free) class never get a region.

:func:`apply_regions` runs after a method's decode (the core's default ``lagaug_decode``): for a
method with ``region_mode = "blend"`` it puts each image's region back from its primary source
(feathered) and gives the image its source's label; for every method it records, per image, the
region's source and size in ``synthesis.notes`` and the region as ``synthesis.masks``.
"""

from __future__ import annotations

import torch

from lagaug.core.contract.method import Regions
from lagaug.core.errors import ConfigError

REGION_SOURCES = ("auto", "mask", "anomaly", "saliency", "none")
KEEP_RADIUS = 1  # pixels a kept region grows by before it is blended back
KEEP_SIGMA = 1.0  # and the feather of its edge


def check_region_source(value: str, option: str = "--region-source") -> str:
    if value not in REGION_SOURCES:
        raise ConfigError(f"{option} {value!r}: choose one of {', '.join(REGION_SOURCES)}")
    return value


def find_regions(images: torch.Tensor, soft: torch.Tensor, context) -> Regions:
    """The default region stage (see the module docstring)."""
    n = len(images)
    rows = context.batch_rows(n)
    source = check_region_source(getattr(context, "region_source", "auto") or "auto", "region_source")
    masks = torch.zeros(n, *images.shape[2:], dtype=torch.bool)
    names = ["none"] * n
    normal = set(getattr(context, "normal_classes", None) or [])
    want = soft.argmax(1).tolist() if n else []
    todo = [i for i in range(n) if want[i] not in normal]
    for i in range(n):
        if want[i] in normal:
            names[i] = "normal class"
    done = lambda: Regions(rows, masks, names, images=images.detach().float().cpu(), soft=soft.detach().float().cpu())  # noqa: E731
    if source == "none" or not todo:
        return done()
    pool = getattr(context, "pool", None)
    given = pool.mask_rows(rows) if pool is not None and getattr(pool, "masks", None) is not None else None
    if source in ("mask", "auto") and given is not None:
        for i in todo:
            if bool(given[i].any()):
                masks[i], names[i] = given[i], "mask"
    left = [i for i in todo if names[i] == "none"]
    anomaly = getattr(context, "anomaly", None)
    if left and (source == "anomaly" or (source == "auto" and anomaly is not None)):
        if anomaly is None:
            raise ConfigError("--region-source anomaly: no anomaly model was fitted (it needs defect-free "
                              "images: a --normal-class with images, or an --unlabeled pool)")
        found = anomaly.region(images[left], device=getattr(context, "device", "cpu"))
        for k, i in enumerate(left):
            masks[i], names[i] = found[k], "anomaly"
    if left and source == "saliency":
        if getattr(context, "classify", None) is None:
            raise ConfigError("--region-source saliency needs the ensemble; it is there in `lagaug augment`")
        from lagaug.core.regions.saliency import occlusion_map, saliency_region

        sal = occlusion_map(context.classify, images[left], torch.as_tensor([want[i] for i in left]))
        found = saliency_region(sal)
        for k, i in enumerate(left):
            masks[i], names[i] = found[k], "saliency"
    return done()


def apply_regions(method, synthesis, context) -> None:
    """After decode: blend regions back (``region_mode == "blend"``) and record them (see the
    module docstring). Sources are rows of ``context.source_set()``."""
    regions = getattr(context, "regions", None)
    if regions is None or len(synthesis) == 0:
        return
    mode = getattr(method, "region_mode", "blend")
    primary = synthesis.primary
    masks, names = regions.for_rows(primary)
    kept = masks.flatten(1).any(1)
    if mode == "blend" and bool(kept.any()) and regions.images is not None:
        from lagaug.core.regions.masks import blend_region

        idx = torch.nonzero(kept).flatten()
        at = regions.positions(primary[idx])
        synthesis.images[idx] = blend_region(synthesis.images[idx], regions.images[at], masks[idx],
                                             KEEP_RADIUS, KEEP_SIGMA).to(synthesis.images.dtype)
        if regions.soft is not None:
            synthesis.soft[idx] = regions.soft[at].to(synthesis.soft.dtype)
    if synthesis.masks is None and mode != "ignore":
        synthesis.masks = masks
    for j in range(len(synthesis)):
        note = synthesis.note(j)
        note.setdefault("region_source", names[j])
        if synthesis.masks is not None:
            note.setdefault("region_pixels", int(synthesis.masks[j].sum()))
