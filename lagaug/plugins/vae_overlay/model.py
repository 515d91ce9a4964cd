"""The small VAE of the overlay method, and how it trains on copies of a few images.

Malyshev et al. (2021) base their VAE on the Keras "Variational AutoEncoder" example (their
reference [15]); this is that network, adapted to any image size and channel count::

    encoder  Conv(w, 3x3, stride 2) Conv(2w, 3x3, stride 2) Flatten Dense(hidden) -> mu, logvar
    decoder  Dense(2w * H/4 * W/4) Reshape ConvT(2w, 3x3, stride 2) ConvT(w, 3x3, stride 2)
             ConvT(C, 3x3) sigmoid

(the example: w = 32, hidden = 16, ReLU everywhere, 28x28 images). Images whose sides are not
multiples of 4 are padded (replicating the border) and the output is cropped back. It is not the
network of the ``vae`` plugin (Garay-Maestre's Table 1), so it lives here; the loss, the
reparameterisation and the generator-driven initialisation are the ``vae`` plugin's, imported.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from lagaug.plugins.vae.model import VAELoss, init_parameters, reparameterize, standard_normal, vae_loss


class OverlayVAE(nn.Module):
    """The Keras-example VAE for ``(C, H, W)`` images; weights drawn from ``generator``."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int = 2, width: int = 32,
                 hidden: int = 16, generator: torch.Generator | None = None):
        super().__init__()
        c, h, w = (int(v) for v in image_shape)
        self.image_shape = (c, h, w)
        self.latent_dim = int(latent_dim)
        self.feature_hw = (math.ceil(h / 4), math.ceil(w / 4))
        flat = 2 * width * self.feature_hw[0] * self.feature_hw[1]
        with torch.device("meta"):  # no global RNG: the weights are drawn below
            self.encoder = nn.Sequential(
                nn.Conv2d(c, width, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
                nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(),
            )
            self.to_mu = nn.Linear(hidden, latent_dim)
            self.to_logvar = nn.Linear(hidden, latent_dim)
            self.decoder = nn.Sequential(
                nn.Linear(latent_dim, flat), nn.ReLU(),
                nn.Unflatten(1, (2 * width, *self.feature_hw)),
                nn.ConvTranspose2d(2 * width, 2 * width, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                nn.ConvTranspose2d(2 * width, width, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                nn.ConvTranspose2d(width, c, 3, padding=1),
            )
        self.to_empty(device="cpu")
        init_parameters(self, generator if generator is not None else torch.Generator().manual_seed(0))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``(mu, logvar)``, each ``(N, latent_dim)``, of images in [0, 1]."""
        ph = 4 * self.feature_hw[0] - x.shape[-2]
        pw = 4 * self.feature_hw[1] - x.shape[-1]
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        hidden = self.encoder(x)
        return self.to_mu(hidden), self.to_logvar(hidden)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        _, h, w = self.image_shape
        return self.decoder(z)[..., :h, :w]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] for latents ``z``."""
        return torch.sigmoid(self.decode_logits(z))

    def loss(self, x: torch.Tensor, generator: torch.Generator, beta: float = 1.0) -> VAELoss:
        """Negative ELBO of a batch with one posterior draw per image (BCE summed over pixels)."""
        mu, logvar = self.encode(x)
        return vae_loss(x, self.decode_logits(reparameterize(mu, logvar, generator)), mu, logvar, beta)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean."""
        return self.decode(self.encode(x)[0])


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """RMSprop with the Keras defaults (rho 0.9, eps 1e-7), as the seed used, or Adam."""
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7)
    return torch.optim.Adam(params, lr=lr)


def train_on_copies(vae: OverlayVAE, images: torch.Tensor, batches: Callable[[int], torch.Tensor], steps: int,
                    *, optimizer: str, lr: float, beta: float, generator: torch.Generator,
                    advance: Callable[[str], None] | None = None) -> list[float]:
    """Train ``vae`` for ``steps`` steps; ``batches(step)`` gives the rows of ``images`` of a step.

    Every row is a copy of one image; the only variation between copies is the VAE's own
    posterior noise (drawn from ``generator``). Returns the loss of every step.
    """
    opt = make_optimizer(optimizer, vae.parameters(), lr)
    vae.train()
    losses = []
    for step in range(steps):
        loss = vae.loss(images[batches(step)], generator, beta)
        opt.zero_grad(set_to_none=True)
        loss.total.backward()
        opt.step()
        losses.append(float(loss.total.detach()))
        if advance is not None:
            advance(f"loss {losses[-1]:.1f}")
    vae.eval()
    return losses


__all__ = ["OverlayVAE", "make_optimizer", "standard_normal", "train_on_copies"]
