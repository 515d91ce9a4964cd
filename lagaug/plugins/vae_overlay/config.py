"""Settings of the ``vae-overlay`` method, with the seed's values and where the seed is silent.

Malyshev et al. (2021), section 4: 500 copies of each image to overlay, every minibatch holding
copies of all of them, a 2-D latent, 20 epochs, the decoder fed the **sum** of the latents of
distant clusters; the network of the Keras VAE example, RMSprop at 2e-3 (section 3; minibatch 10).
Everything else is our choice and says so below.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from lagaug.core.errors import ConfigError
from lagaug.plugins.vae_overlay.overlay import COMBINE_RULES, PARTNER_CLASSES, PARTNER_RULES

MODES = ("faithful", "shared")

#: inclusive valid range of every numeric option (``None``: no upper bound)
RANGES: dict[str, tuple[float, float | None]] = {
    "sources": (2, 8),
    "copies": (1, None),
    "epochs": (1, None),
    "batch_copies": (1, None),
    "latent_dim": (1, 64),
    "channels": (1, 512),
    "hidden": (1, 4096),
    "lr": (1e-8, 10.0),
    "beta": (0.0, 100.0),
    "posterior_scale": (0.0, 10.0),
    "class_steps": (1, None),
    "batch_size": (1, None),
}


@dataclass
class VAEOverlayConfig:
    """Options of ``vae-overlay`` (``--set key=value``; the stage options apply per call too).

    Overlay (read at every call, so ``lagaug sample --set`` may change them):

    :ivar mode: ``faithful`` — the seed's recipe: for every hard image a small VAE is trained on
        the hard image and its partners (``copies`` copies each) and their latent means are
        combined; ``shared`` — no training at sampling time: the latents come from the class VAE
        fitted in ``fit`` (one VAE per class over all its images) and its decoder draws the overlay.
    :ivar sources: images per overlay, the hard image included (the seed overlaid 3; default 2).
    :ivar combine: ``sum`` (the seed), ``mean`` (1/S each: stays inside the training latents) or
        ``rescaled`` (the sum scaled to the mean norm of its sources).
    :ivar partner: ``farthest`` (partners whose class-VAE latents lie farthest from the hard
        image's and from each other: the seed's "distant clusters") or ``random``.
    :ivar partner_classes: ``same`` (real images of the hard image's class; the label is that
        class), ``other`` or ``any`` (the label is the mix of the sources' labels, weighted by
        their coefficients).
    :ivar posterior_scale: 0 combines the latent means (cluster centres, the seed); above 0 each
        source's latent is drawn at ``mean + scale * sigma * eps`` first (varied overlays).

    Group VAE (``faithful``; read at every call):

    :ivar copies: copies of every group image in one epoch (the seed: at least 500).
    :ivar epochs: passes over the copies (the seed: 20).
    :ivar batch_copies: copies of every group image in one minibatch (ours: 64, the Keras example's
        minibatch of 128 for a pair; the seed does not give the overlay's, its section 3 used 10).
        Steps = ``epochs * ceil(copies / batch_copies)``: 160 at the defaults. With 5 (2000 steps)
        the group VAEs on MNIST pairs ended with antipodal clusters or collapsed (docs/benchmarks.md).
    :ivar latent_dim: latent size of every VAE (the seed: 2).
    :ivar channels: filters of the first conv (the second has twice as many; the Keras example: 32).
    :ivar hidden: width of the dense layer before the latent (the Keras example: 16).
    :ivar optimizer: ``rmsprop`` (the seed, Keras defaults) or ``adam``.
    :ivar lr: learning rate (the seed: 2e-3).
    :ivar beta: weight of the KL term (1 = the plain ELBO).

    Class VAEs (trained by ``fit``; they rank partners in both modes and overlay in ``shared``):

    :ivar class_steps: optimisation steps per class VAE (ours: a fixed budget, so a large class
        costs no more than a small one; a small class's images are copied until the steps are filled).
    :ivar batch_size: minibatch of the class VAEs (ours; Keras' default 32).
    """

    mode: Literal["faithful", "shared"] = "faithful"
    sources: int = 2
    combine: Literal["sum", "mean", "rescaled"] = "sum"
    partner: Literal["farthest", "random"] = "farthest"
    partner_classes: Literal["same", "other", "any"] = "same"
    posterior_scale: float = 0.0
    copies: int = 500
    epochs: int = 20
    batch_copies: int = 64
    latent_dim: int = 2
    channels: int = 32
    hidden: int = 16
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"
    lr: float = 2e-3
    beta: float = 1.0
    class_steps: int = 500
    batch_size: int = 32

    def __post_init__(self) -> None:
        for key, (low, high) in RANGES.items():
            value = getattr(self, key)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= low
            ok = ok and (high is None or value <= high)
            if not ok:
                valid = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
                raise ConfigError(f"vae-overlay: {key} must be {valid}, got {value!r}")
        for key, allowed in (("mode", MODES), ("combine", COMBINE_RULES), ("partner", PARTNER_RULES),
                             ("partner_classes", PARTNER_CLASSES), ("optimizer", ("rmsprop", "adam"))):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"vae-overlay: {key} must be one of {', '.join(allowed)}, got {getattr(self, key)!r}")

    def group_steps(self) -> int:
        """Optimisation steps of one group VAE."""
        return self.epochs * -(-self.copies // self.batch_copies)


#: the options a saved generator takes at sampling time: every one but the class VAEs' (fitted by ``fit``)
STAGE_OPTIONS = tuple(f.name for f in fields(VAEOverlayConfig) if f.name not in ("class_steps", "batch_size"))
