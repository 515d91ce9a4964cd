"""The adversarial autoencoder of ``aae-mixup`` (Makhzani et al. 2016; Liu et al. 2018).

* :class:`AAE` — a deterministic convolutional encoder and a decoder. Under the ``uniform`` prior
  the encoder's output is clamped to the box ``[-1, 1]^d`` (the prior's support; ``hardtanh``), so
  every code lies in the box and every linear interpolant of two codes does too; under the
  ``gaussian`` prior (the ablation) the code is unbounded.
* :class:`LatentDiscriminator` — an MLP on the latent that tells prior samples (``real``) from
  encoded images (``fake``).

Sizes follow the image: stride-2 stages are added until the deepest feature map is at most
``feature_size`` pixels a side, the conv width doubles at every stage (up to 8x ``width``), the
input is padded to a multiple of the total stride and the output cropped back, and the default
latent size grows with the number of pixels (:func:`auto_latent_dim`). Weights are drawn from a
``torch.Generator`` passed in (built on the meta device: the global RNG is never touched).

Every activation is a leaky ReLU. With plain ReLUs in the decoder, one fit of the embedded data
(seed 2 of ``benchmarks/bench_aae_mixup.py``) went from a reconstruction error of 0.0007 to the
mean image's 0.011 within ten steps near its end: a third of the decoder's first-layer units died
at once, the decoder stopped reading the code, and the codes then collapsed under the
discriminator. Leaky units cannot die; the same fit ends at 0.0006.

Why a clamp and not ``tanh``: a uniform prior wants codes right up to the box's faces, where
``tanh`` has almost no gradient. With ``tanh`` (and a guard on its input at 3) three of seven fits
of the embedded data collapsed late in training: the codes bunched up, some of them in the faces,
and the reconstruction went back to the mean image's error and stayed there. The clamp is the
identity inside the box (nothing saturates), and :meth:`AAE.outside` pulls codes that leave it back
in; with it those three fits learned, and so did every other fit since (``docs/benchmarks.md``).
The price: on that data the codes fill the box less evenly (per-dimension spread about 0.7 of the
uniform's, against about 0.95 for the tanh fits that did not collapse).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from lagaug.plugins.vae.model import ConvVAE, downsamplings, init_parameters

PRIORS = ("uniform", "gaussian")


def auto_latent_dim(image_shape: tuple[int, int, int]) -> int:
    """The default latent size: half the square root of the pixel count, between 4 and 64
    (16x16 gray: 8; 28x28: 14; 32x32 gray: 16; 32x32 RGB: 28; 64x64 gray: 32)."""
    c, h, w = image_shape
    return int(min(64, max(4, round(math.sqrt(c * h * w) / 2))))


def sample_prior(prior: str, n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` CPU samples of the prior: U(-1, 1)^dim (``uniform``) or N(0, I) (``gaussian``)."""
    if prior == "uniform":
        return torch.rand((n, dim), generator=generator) * 2 - 1
    return torch.randn((n, dim), generator=generator)


def prior_std(prior: str) -> float:
    """Per-dimension standard deviation of the prior (1/sqrt(3) for U(-1, 1), 1 for N(0, 1))."""
    return 1 / math.sqrt(3) if prior == "uniform" else 1.0


class AAE(nn.Module):
    """Encoder + decoder for ``(C, H, W)`` images in [0, 1].

    :param image_shape: ``(C, H, W)``.
    :param latent_dim: size of the code.
    :param width: filters of the first conv (doubling at every stride-2 stage, at most 8x).
    :param feature_size: largest side of the deepest feature map.
    :param prior: ``uniform`` (codes clamped to [-1, 1]) or ``gaussian`` (unbounded).
    :param generator: where the initial weights come from; a fixed seed when ``None``.
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, width: int = 16,
                 feature_size: int = 4, prior: str = "uniform", generator: torch.Generator | None = None):
        super().__init__()
        c, h, w = (int(v) for v in image_shape)
        self.image_shape, self.latent_dim, self.prior = (c, h, w), int(latent_dim), prior
        self.stages = downsamplings(h, w, feature_size)
        stride = 2**self.stages
        self.feature_hw = (math.ceil(h / stride), math.ceil(w / stride))
        widths = [width * 2 ** min(i, 3) for i in range(self.stages + 1)]
        flat = widths[-1] * self.feature_hw[0] * self.feature_hw[1]
        with torch.device("meta"):  # no global RNG: weights are drawn from ``generator`` below
            down = [nn.Conv2d(c, widths[0], 3, padding=1), nn.LeakyReLU(0.2)]
            for i in range(self.stages):
                down += [nn.Conv2d(widths[i], widths[i + 1], 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            self.encoder = nn.Sequential(*down, nn.Flatten(), nn.Linear(flat, latent_dim))
            up = [nn.Linear(latent_dim, flat), nn.LeakyReLU(0.2), nn.Unflatten(1, (widths[-1], *self.feature_hw))]
            for i in reversed(range(self.stages)):
                up += [nn.ConvTranspose2d(widths[i + 1], widths[i], 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            self.decoder = nn.Sequential(*up, nn.Conv2d(widths[0], c, 3, padding=1))
        self.to_empty(device="cpu")
        init_parameters(self, generator if generator is not None else torch.Generator().manual_seed(0))

    _pad = ConvVAE._pad  # the vae plugin's rule: replicate-pad to a multiple of the total stride

    def pre_code(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's output before the bound (the clamp to the box under the uniform prior)."""
        return self.encoder(self._pad(x))

    def bound(self, u: torch.Tensor) -> torch.Tensor:
        return F.hardtanh(u) if self.prior == "uniform" else u

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``(N, latent_dim)`` of images ``x``; in ``[-1, 1]`` under the uniform prior."""
        return self.bound(self.pre_code(x))

    def outside(self, u: torch.Tensor) -> torch.Tensor:
        """How far the pre-codes ``u`` are outside the box: ``mean(relu(|u| - 1)^2)`` (0 under
        the gaussian prior). The clamp gives such coordinates no gradient; this term brings them
        back, so no code sticks to a face or a corner."""
        if self.prior != "uniform":
            return u.new_zeros(())
        return F.relu(u.abs() - 1).pow(2).mean()

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        _, h, w = self.image_shape
        return self.decoder(z)[..., :h, :w]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] for codes ``z``."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class LatentDiscriminator(nn.Module):
    """MLP ``latent -> hidden -> hidden -> 1`` (a logit: high = looks like a prior sample)."""

    def __init__(self, latent_dim: int, hidden: int = 128, generator: torch.Generator | None = None):
        super().__init__()
        with torch.device("meta"):
            self.net = nn.Sequential(
                nn.Linear(latent_dim, hidden), nn.LeakyReLU(0.2),
                nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
                nn.Linear(hidden, 1),
            )
        self.to_empty(device="cpu")
        init_parameters(self, generator if generator is not None else torch.Generator().manual_seed(1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(1)
