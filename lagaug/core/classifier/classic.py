"""Classical (geometric) data augmentation: random rotation, shift, zoom and flip, batched.

The ``classic`` arm of ``lagaug compare`` uses it, with the setting of Garay-Maestre et al. (2019):
rotation within ±20°, width and height shifts within ±20% (Keras' ``ImageDataGenerator(
rotation_range=20, width_shift_range=0.2, height_shift_range=0.2)``). Every image of a batch gets
its own transform, drawn from the ``torch.Generator`` passed in (never global state), and is
resampled with ``affine_grid`` / ``grid_sample``, so it runs on whatever device the batch is on.
:class:`ClassicAugment` is a ``transform(images, generator)`` callable, the hook that
:func:`lagaug.core.classifier.train_ensemble` applies to every training batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from lagaug.core.errors import ConfigError

FILL_MODES = ("border", "zeros", "reflection")


@dataclass
class ClassicConfig:
    """Ranges of the random transform (change them with ``--classic-set key=value``).

    :ivar rotation: degrees; each image turns by an angle drawn uniformly from ``[-rotation, rotation]``.
    :ivar shift_x: fraction of the width; horizontal shift drawn from ``[-shift_x, shift_x]``.
    :ivar shift_y: fraction of the height; vertical shift drawn from ``[-shift_y, shift_y]``.
    :ivar zoom: scale drawn from ``[1 - zoom, 1 + zoom]`` (0 = no zoom).
    :ivar hflip: also mirror half of the images left-right.
    :ivar fill: what fills pixels that come from outside the image: ``border`` repeats the edge
        (Keras' ``nearest``, its default), ``zeros`` is black, ``reflection`` mirrors.
    """

    rotation: float = 20.0
    shift_x: float = 0.2
    shift_y: float = 0.2
    zoom: float = 0.0
    hflip: bool = False
    fill: Literal["border", "zeros", "reflection"] = "border"

    def __post_init__(self) -> None:
        if not 0 <= self.rotation <= 180:
            raise ConfigError(f"classic: rotation must be between 0 and 180 degrees, got {self.rotation!r}")
        for key in ("shift_x", "shift_y"):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(f"classic: {key} must be a fraction between 0 and 1, got {getattr(self, key)!r}")
        if not 0 <= self.zoom < 1:
            raise ConfigError(f"classic: zoom must be in [0, 1), got {self.zoom!r}")
        if self.fill not in FILL_MODES:
            raise ConfigError(f"classic: fill must be one of {', '.join(FILL_MODES)}, got {self.fill!r}")


def affine(images: torch.Tensor, angle: torch.Tensor, shift_x: torch.Tensor, shift_y: torch.Tensor,
           scale: torch.Tensor | None = None, fill: str = "border") -> torch.Tensor:
    """Transform each image of ``(N, C, H, W)`` by its own rotation, shift and scale.

    ``angle`` is in degrees, positive turns the content counter-clockwise as displayed; ``shift_x``
    and ``shift_y`` are fractions of the width and height, positive moves the content right and
    down; ``scale`` > 1 enlarges it. All are ``(N,)`` tensors. Pixels are sampled bilinearly.
    """
    n, _, h, w = images.shape
    a = angle.double() * (math.pi / 180.0)
    s = torch.ones(n, dtype=torch.float64) if scale is None else scale.double()
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    # output -> input map in normalised coordinates: S^-1 R^-1 S / scale, where S = diag(W, H) / 2
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
    shift = torch.stack([2 * shift_x.double(), 2 * shift_y.double()], dim=1)  # normalised units
    theta[:, :, 2] = -(theta[:, :, :2] @ shift[:, :, None])[:, :, 0]
    theta = theta.to(device=images.device, dtype=images.dtype if images.is_floating_point() else torch.float32)
    grid = F.affine_grid(theta, [n, images.shape[1], h, w], align_corners=False)
    return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode=fill, align_corners=False)


class ClassicAugment:
    """A ``transform(images, generator)`` that applies a fresh random transform to every image.

    ``images`` are float ``(N, C, H, W)``; the result has the same shape, dtype and device. The
    same generator state gives the same output.
    """

    def __init__(self, config: ClassicConfig | None = None):
        self.config = config or ClassicConfig()

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        cfg, n = self.config, images.shape[0]
        if n == 0:
            return images
        u = torch.rand(n, 5, generator=generator, device=generator.device).cpu() * 2 - 1  # in [-1, 1)
        out = affine(images, u[:, 0] * cfg.rotation, u[:, 1] * cfg.shift_x, u[:, 2] * cfg.shift_y,
                     1 + u[:, 3] * cfg.zoom, cfg.fill)
        if cfg.hflip:
            flip = (u[:, 4] < 0).to(out.device)
            out = torch.where(flip[:, None, None, None], out.flip(-1), out)
        return out.to(images.dtype)

    def __repr__(self) -> str:
        return f"ClassicAugment({self.config})"
