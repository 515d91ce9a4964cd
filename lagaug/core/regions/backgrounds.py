"""Defect-free backgrounds to put a region onto: drawn from the unlabelled pool, or from the
normal-class training images (the pool rows of ``context.pool``)."""

from __future__ import annotations

import torch

from lagaug.core.errors import ConfigError

BACKGROUND_FROM = ("pool", "train")


def pick_backgrounds(context, n: int, origin: str, exclude: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` defect-free images ``(n, C, H, W)`` in ``[0, 1]`` and their rows in
    ``context.source_set()``, drawn with ``context.generator``: from the unlabelled pool
    (``origin="pool"``; they are registered as backgrounds) or from the normal-class images of
    ``context.pool`` (``"train"``; rows in ``exclude`` are skipped)."""
    gen = context.generator
    if origin == "pool":
        pool = getattr(context, "unlabeled", None)
        if pool is None or not len(pool):
            raise ConfigError("transplant=pool needs an unlabelled pool (--unlabeled); use transplant=train to draw "
                              "the backgrounds from the defect-free training images")
        picks = torch.randint(0, len(pool), (n,), generator=gen)
        images = pool.images_at(picks.tolist())
        normal = (getattr(context, "normal_classes", None) or [0])[0]
        rows = context.add_backgrounds(images, [pool.id_of(int(i)) for i in picks], normal)
        return images, rows
    if origin != "train":
        raise ConfigError(f"backgrounds from {origin!r}: choose one of {', '.join(BACKGROUND_FROM)}")
    data = context.pool
    normal = getattr(context, "normal_classes", None) or []
    ok = torch.isin(data.labels, torch.tensor(normal, dtype=torch.long)) & ~data.synthetic
    if exclude is not None and len(exclude):
        ok[torch.as_tensor(exclude, dtype=torch.long)] = False
    candidates = torch.nonzero(ok).flatten()
    if not len(candidates):
        raise ConfigError("transplant=train needs defect-free training images (a --normal-class with images); "
                          "none are there")
    rows = candidates[torch.randint(0, len(candidates), (n,), generator=gen)]
    return data.float_images(rows), rows
