"""The built-in ``aae-mixup`` plugin: mix images of two classes in the latent space of an
adversarial autoencoder with a uniform prior, with soft labels (Liu et al. 2018).

The method class lives in :mod:`lagaug.plugins.aae_mixup.method` and is registered by name, so
importing this plugin (``lagaug list-plugins``, ``lagaug --help``) does not import torch.

Modules: ``model`` (the AAE and its latent discriminator), ``training`` (the three training steps,
the fit loop, measurements), ``partners`` (partner rules and the mixing weight), ``method``
(config + method).
"""

from lagaug import hookimpl


@hookimpl
def lagaug_register_methods(register):
    register(
        "lagaug.plugins.aae_mixup.method:AAEMixupMethod",
        name="aae-mixup",
        description="adversarial autoencoder with a uniform prior; mix a hard image with another class's in the "
        "latent space, soft label (Liu 2018)",
    )
