"""The built-in ``vae-overlay`` plugin: overlay images by summing their VAE latents (Malyshev 2021).

The method class lives in :mod:`lagaug.plugins.vae_overlay.method` and is registered by name, so
importing this plugin (``lagaug list-plugins``, ``lagaug --help``) does not import torch.
"""

from lagaug import hookimpl


@hookimpl
def lagaug_register_methods(register):
    register(
        "lagaug.plugins.vae_overlay.method:VAEOverlayMethod",
        name="vae-overlay",
        description="overlay a hard image with distant images of its class by summing VAE latents (Malyshev 2021)",
    )
