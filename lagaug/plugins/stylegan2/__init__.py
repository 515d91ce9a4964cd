"""The ``stylegan2`` plugin: DAPPER GAN latent augmentation (Manjunath et al. 2020) with a
StyleGAN2 in plain PyTorch.

Registers the method lazily (``lagaug.plugins.stylegan2.method:StyleGAN2Method``); importing this
module does not import torch. Reference generators of rosinality/stylegan2-pytorch are imported
with :func:`lagaug.plugins.stylegan2.importer.import_reference`.

Modules: ``ops`` (FIR up/down-sampling, fused leaky ReLU), ``networks`` (generator,
discriminator), ``training`` (losses, regularisers, g_ema, data streams, checkpoints),
``projection`` (the projector), ``directions`` (statistics of W and the moves), ``importer``,
``config`` (the settings), ``method`` (the method).
"""

from __future__ import annotations

from lagaug import hookimpl


@hookimpl
def lagaug_register_methods(register):
    register(
        "lagaug.plugins.stylegan2.method:StyleGAN2Method",
        name="stylegan2",
        description="StyleGAN2: project an image into W, move it along a random, class or principal "
        "direction, synthesise (DAPPER GAN, Manjunath et al. 2020)",
    )
