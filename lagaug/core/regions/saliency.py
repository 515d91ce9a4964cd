"""Ensemble evidence: occlusion saliency for an image's true class.

Each patch of the image is hidden in turn (filled with the image's blurred self, so no new edge
appears); the drop in the ensemble's probability of the image's intended class is the patch's
importance. The map averages the drops of every patch over a pixel; the region is where it reaches
half of the image's peak (positive drops only: hiding the defect must hurt its class).
"""

from __future__ import annotations

import torch

from lagaug.core.regions.masks import gaussian_blur


@torch.no_grad()
def occlusion_map(classify, images: torch.Tensor, classes: torch.Tensor, patch: int | None = None,
                  batch_size: int = 256) -> torch.Tensor:
    """``(N, H, W)``: the mean drop in class ``classes[i]``'s probability when a ``patch`` x ``patch``
    square over each pixel is hidden (``classify``: images -> class probabilities ``(N, K)``)."""
    n, c, h, w = images.shape
    p = patch or max(2, min(h, w) // 8)
    stride = max(1, p // 2)
    fill = gaussian_blur(images.float(), max(1.0, p / 2))
    base = torch.as_tensor(classify(images)).float()[torch.arange(n), classes]
    total = torch.zeros(n, h, w)
    count = torch.zeros(1, h, w)
    spots = [(y, x) for y in range(0, max(1, h - p) + 1, stride) for x in range(0, max(1, w - p) + 1, stride)]
    for y, x in spots:
        count[:, y : y + p, x : x + p] += 1
    for i in range(n):
        batch = images[i].expand(len(spots), c, h, w).clone()
        for j, (y, x) in enumerate(spots):
            batch[j, :, y : y + p, x : x + p] = fill[i, :, y : y + p, x : x + p]
        probs = torch.cat([torch.as_tensor(classify(batch[s : s + batch_size])).float()
                           for s in range(0, len(batch), batch_size)])
        drop = base[i] - probs[:, int(classes[i])]
        for j, (y, x) in enumerate(spots):
            total[i, y : y + p, x : x + p] += drop[j]
    return total / count.clamp_min(1)


def saliency_region(saliency: torch.Tensor, relative: float = 0.5) -> torch.Tensor:
    """Bool ``(N, H, W)``: pixels whose positive saliency reaches ``relative`` of the image's peak."""
    pos = saliency.clamp_min(0)
    peak = pos.flatten(1).max(1).values.view(-1, 1, 1)
    return (pos >= relative * peak) & (peak > 0)
