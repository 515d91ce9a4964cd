"""The convolutional VAE of Garay-Maestre et al. (2019, Table 1), its loss and its sampling.

Table 1 (28x28 MNIST, 64 filters, latent size LS)::

    encoder  Conv(1, 2x2) Conv(64, 2x2, stride 2) Conv(64, 3x3) Conv(64, 3x3)
    hidden   Flatten FC(128) FC(LS) -> mu, FC(LS) -> logvar, sampling
    decoder  FC(128) FC(14*14*64) Reshape ConvT(64, 3x3) ConvT(64, 3x3)
             ConvT(64, 3x3, stride 2) Conv(1, 2x2) sigmoid

Adapted to any image size and channel count: the stride-2 layer is repeated until the deepest
feature map is at most ``feature_size`` pixels a side (the decoder mirrors it with extra stride-2
transposed convolutions), the input is padded to a multiple of the total stride and the output
cropped back, and the conv width is configurable (``width``; the paper used 64). The first conv
has ``width`` filters instead of one per image channel: a single ReLU filter can be dead from the
start (all outputs <= 0), which starves the encoder and leaves the VAE decoding the class mean.

The loss is the negative ELBO done right: binary cross-entropy **summed over pixels** plus the KL
divergence to N(0, I) **summed over latent dimensions**, each averaged over the batch. Sampling
uses sigma = exp(0.5 * logvar). (The authors' released code used exp(logvar) as sigma and averaged
the KL over dimensions.) All randomness comes from a ``torch.Generator`` passed in.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row, summed over latent dimensions: shape ``(N,)``."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def reconstruction_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy per image, summed over channels and pixels: shape ``(N,)``.

    ``logits`` are the decoder's pre-sigmoid outputs; ``target`` is in ``[0, 1]``."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return bce.flatten(1).sum(dim=1)


class VAELoss(NamedTuple):
    """Batch means of the total loss (negative ELBO with weight ``beta`` on the KL) and its terms."""

    total: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


def vae_loss(
    target: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0
) -> VAELoss:
    """Reconstruction summed over pixels + ``beta`` * KL summed over dimensions, batch-averaged."""
    rec = reconstruction_bce(logits, target).mean()
    kl = kl_divergence(mu, logvar).mean()
    return VAELoss(rec + beta * kl, rec, kl)


def standard_normal(shape: tuple[int, ...], generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """N(0, 1) noise drawn from ``generator`` (on the generator's device), moved to ``device``."""
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator, scale: float = 1.0
) -> torch.Tensor:
    """z = mu + scale * exp(0.5 * logvar) * eps, eps ~ N(0, I) from ``generator``."""
    eps = standard_normal(tuple(mu.shape), generator, mu.device).to(mu.dtype)
    return mu + scale * torch.exp(0.5 * logvar) * eps


def downsamplings(height: int, width: int, feature_size: int) -> int:
    """How many stride-2 stages bring the larger side down to at most ``feature_size`` (>= 1)."""
    side = max(height, width)
    return max(1, math.ceil(math.log2(side / feature_size)))


def init_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default layer initialisation, but drawn from ``generator`` (no global RNG)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            if layer.bias is not None:
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
                bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


class ConvVAE(nn.Module):
    """Table 1's convolutional VAE for ``(channels, height, width)`` images.

    :param image_shape: ``(C, H, W)`` of the images (any C; H, W of a few pixels and up).
    :param latent_dim: size of the latent space (the paper's LS; 3 was their best).
    :param width: filters of every conv layer (the paper: 64).
    :param hidden: neurons of the dense layers (the paper: 128).
    :param feature_size: largest side of the deepest feature map (the paper at 28 px: 14).
    :param generator: where the initial weights are drawn from; a fixed seed when ``None``.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int = 3,
        width: int = 16,
        hidden: int = 128,
        feature_size: int = 8,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        c, h, w = (int(v) for v in image_shape)
        self.image_shape = (c, h, w)
        self.latent_dim = latent_dim
        self.stages = downsamplings(h, w, feature_size)
        stride = 2**self.stages
        self.feature_hw = (math.ceil(h / stride), math.ceil(w / stride))
        flat = width * self.feature_hw[0] * self.feature_hw[1]

        with torch.device("meta"):  # build without touching the global RNG; weights drawn below
            down = []
            for _ in range(self.stages):
                down += [nn.Conv2d(width, width, 2, stride=2), nn.ReLU()]
            self.encoder = nn.Sequential(
                nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(c, width, 2), nn.ReLU(),  # Keras "same" for 2x2
                *down,
                nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                nn.Flatten(),
                nn.Linear(flat, hidden), nn.ReLU(),
            )
            self.to_mu = nn.Linear(hidden, latent_dim)
            self.to_logvar = nn.Linear(hidden, latent_dim)
            up = []
            for _ in range(self.stages - 1):
                up += [nn.ConvTranspose2d(width, width, 3, stride=2, padding=1, output_padding=1), nn.ReLU()]
            self.decoder = nn.Sequential(
                nn.Linear(latent_dim, hidden), nn.ReLU(),
                nn.Linear(hidden, flat), nn.ReLU(),
                nn.Unflatten(1, (width, *self.feature_hw)),
                nn.ConvTranspose2d(width, width, 3, padding=1), nn.ReLU(),
                nn.ConvTranspose2d(width, width, 3, padding=1), nn.ReLU(),
                *up,
                # the paper's last two layers: ConvT stride 2 (valid) gives 2f+1, Conv 2x2 gives 2f
                nn.ConvTranspose2d(width, width, 3, stride=2), nn.ReLU(),
                nn.Conv2d(width, c, 2),
            )
        self.to_empty(device="cpu")
        init_parameters(self, generator if generator is not None else torch.Generator().manual_seed(0))

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        stride = 2**self.stages
        ph = self.feature_hw[0] * stride - x.shape[-2]
        pw = self.feature_hw[1] * stride - x.shape[-1]
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters ``(mu, logvar)``, each ``(N, latent_dim)``, of images in [0, 1]."""
        hidden = self.encoder(self._pad(x))
        return self.to_mu(hidden), self.to_logvar(hidden)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid images ``(N, C, H, W)`` for latents ``z``."""
        _, h, w = self.image_shape
        return self.decoder(z)[..., :h, :w]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] for latents ``z``."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """One stochastic pass: ``(logits, mu, logvar)`` with z drawn from the posterior."""
        mu, logvar = self.encode(x)
        return self.decode_logits(reparameterize(mu, logvar, generator)), mu, logvar

    def loss(self, x: torch.Tensor, generator: torch.Generator, beta: float = 1.0) -> VAELoss:
        """The batch loss (:func:`vae_loss`) of images ``x`` with one posterior sample each."""
        logits, mu, logvar = self(x, generator)
        return vae_loss(x, logits, mu, logvar, beta)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction: decode the posterior mean."""
        return self.decode(self.encode(x)[0])
