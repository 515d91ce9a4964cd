"""``cut-paste``: paste an image's region (its defect) onto a defect-free background.

* **fit** — nothing to learn.
* **encode** — the images themselves.
* **resample** — for each image with a region (``ctx.regions``: its mask, an anomaly map or
  saliency), ``variants`` times: a defect-free background (``background=pool``: from the
  unlabelled pool; ``train``: a normal-class training image; ``auto``: the pool when there is one),
  the region moved by a random shift that keeps it inside the image (``place=shift``; ``same``: where
  it was) and mirrored left-right half of the time (``flip=true``), pasted with a feathered edge
  (``feather`` pixels). An image without a region (e.g. a defect-free one) comes back unchanged:
  there is nothing to paste (the manifest says ``pasted: false``).
* **decode** — the pasted images, with the region's new place as their mask. Sources: the defect
  image and the background, weighted by the share of the image each gave.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from lagaug.core.contract.method import GeneratorMethod, Latents, StageContext, Synthesis
from lagaug.core.errors import ConfigError
from lagaug.core.regions.masks import dilate, feather


@dataclass
class CutPasteConfig:
    """Options of ``cut-paste`` (``--set key=value``)."""

    background: Literal["auto", "pool", "train"] = "auto"
    place: Literal["shift", "same"] = "shift"
    flip: bool = True
    margin: int = 1  # pixels the region grows by before it is cut
    feather: float = 1.0  # sigma (pixels) of the pasted edge

    def __post_init__(self) -> None:
        if self.background not in ("auto", "pool", "train"):
            raise ConfigError(f"--set background={self.background!r}: expected auto, pool or train")
        if self.place not in ("shift", "same"):
            raise ConfigError(f"--set place={self.place!r}: expected shift or same")
        if int(self.margin) < 0:
            raise ConfigError(f"--set margin={self.margin}: must be 0 or more")
        if not 0 <= float(self.feather) <= 16:
            raise ConfigError(f"--set feather={self.feather}: must be between 0 and 16 pixels")


def shift_into_view(mask: torch.Tensor, generator: torch.Generator) -> tuple[int, int]:
    """A random ``(dy, dx)`` that keeps the on-pixels of ``mask`` ``(H, W)`` inside the image."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    h, w = mask.shape
    lo_y, hi_y = -int(ys.min()), h - 1 - int(ys.max())
    lo_x, hi_x = -int(xs.min()), w - 1 - int(xs.max())
    dy = int(torch.randint(lo_y, hi_y + 1, (1,), generator=generator))
    dx = int(torch.randint(lo_x, hi_x + 1, (1,), generator=generator))
    return dy, dx


def move(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``x`` (``(..., H, W)``) moved by ``(dy, dx)`` pixels; what moves in is zero."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = x[..., ys, xs]
    return out


class CutPasteMethod(GeneratorMethod):
    """Pixel cut-and-paste of a region onto a defect-free background."""

    name: ClassVar[str] = "cut-paste"
    description: ClassVar[str] = "pixel cut-and-paste of the defect onto a defect-free image"
    version: ClassVar[int] = 1
    Config: ClassVar[type] = CutPasteConfig
    min_image_size: ClassVar[int] = 4
    region_mode: ClassVar[str] = "self"

    def fit(self, train, ctx, unlabeled=None) -> dict[str, Any]:
        return {"learnt": "nothing: cut-paste has no model"}

    def encode(self, images: torch.Tensor, soft: torch.Tensor, ctx: StageContext) -> Latents:
        n = images.shape[0]
        return Latents(codes={"images": images.detach().float().cpu()}, source=ctx.batch_rows(n), soft=soft)

    def resample(self, latents: Latents, ctx: StageContext) -> Latents:
        out = latents.repeat(max(int(ctx.variants), 1))
        images = out.codes["images"].clone()
        n = len(images)
        regions = getattr(ctx, "regions", None)
        if regions is None:
            region = torch.zeros(n, *images.shape[2:], dtype=torch.bool)
        else:
            region, _ = regions.for_rows(out.source[:, 0])
        has = region.flatten(1).any(1)
        source = torch.cat([out.source[:, :1], torch.full((n, 1), -1, dtype=out.source.dtype)], 1)
        weight = torch.cat([out.weight[:, :1], torch.zeros(n, 1)], 1)
        notes = [{"pasted": bool(h)} for h in has.tolist()]
        new_region = torch.zeros_like(region)
        rows = torch.nonzero(has).flatten()
        if len(rows):
            from lagaug.core.regions.backgrounds import pick_backgrounds

            origin = self.option(ctx, "background")
            if origin == "auto":
                origin = "pool" if getattr(ctx, "unlabeled", None) is not None and len(ctx.unlabeled) else "train"
            exclude = ctx.batch_rows(len(regions.rows))
            backgrounds, bg_rows = pick_backgrounds(ctx, len(rows), origin, exclude=exclude)
            grown = dilate(region[rows], int(self.option(ctx, "margin")))
            for k, i in enumerate(rows.tolist()):
                patch, cut = images[i], grown[k]
                flipped = bool(self.option(ctx, "flip")) and bool(torch.rand(1, generator=ctx.generator) < 0.5)
                if flipped:
                    patch, cut = patch.flip(-1), cut.flip(-1)
                dy = dx = 0
                if self.option(ctx, "place") == "shift":
                    dy, dx = shift_into_view(cut, ctx.generator)
                patch, cut = move(patch, dy, dx), move(cut, dy, dx)
                w = feather(cut[None], 0, float(self.option(ctx, "feather")))[0]
                images[i] = w * patch + (1 - w) * backgrounds[k]
                new_region[i] = move(region[i].flip(-1) if flipped else region[i], dy, dx)
                share = float(cut.float().mean())
                source[i, 1], weight[i, 0], weight[i, 1] = int(bg_rows[k]), share, 1 - share
                notes[i].update(background_from=origin, flipped=flipped, shift=[dy, dx])
        codes = {"images": images, "region": new_region}
        return Latents(codes=codes, source=source, soft=out.soft, weight=weight, info={"notes": notes})

    def decode(self, latents: Latents, ctx: StageContext) -> Synthesis:
        notes = latents.info.get("notes")
        return Synthesis(images=latents.codes["images"].clamp(0, 1), soft=latents.soft, source=latents.source,
                         weight=latents.weight, masks=latents.codes.get("region"),
                         notes=[dict(n) for n in notes] if notes is not None else None)
