"""The ``vqvae2`` plugin: VQ-VAE-2 + PixelSNAIL latent augmentation (Høj & Møgelmoose 2023).

Registers the method lazily (``lagaug.plugins.vqvae2.method:VQVAE2Method``). ``lagaug
import-checkpoint`` (the default ``--method vqvae2``) turns checkpoints of the reference
implementation (rosinality/vq-vae-2-pytorch) into a lagaug generator directory through
:meth:`VQVAE2Method.import_checkpoint`. Importing this module does not import torch.

Modules: ``vqvae`` (the VQ-VAE-2), ``pixelsnail`` (the priors), ``sampler`` (the cached sampler
and the naive one), ``training``, ``metrics``, ``method`` (config + method), ``importer``.
"""

from __future__ import annotations

from lagaug import hookimpl


@hookimpl
def lagaug_register_methods(register):
    register(
        "lagaug.plugins.vqvae2.method:VQVAE2Method",
        name="vqvae2",
        description="VQ-VAE-2 + PixelSNAIL: keep an image's structural codes, resample its local "
        "detail codes (Høj & Møgelmoose 2023)",
    )
