"""The built-in ``vae`` plugin: one convolutional VAE per class (Garay-Maestre et al., 2019).

The method class lives in :mod:`lagaug.plugins.vae.method` and is registered by name, so importing
this plugin (``lagaug list-plugins``, ``lagaug --help``) does not import torch.
"""

from lagaug import hookimpl


@hookimpl
def lagaug_register_methods(register):
    register(
        "lagaug.plugins.vae.method:VAEMethod",
        name="vae",
        description="one convolutional VAE per class; draw near the posterior or from the class prior "
        "(Garay-Maestre 2019)",
    )
