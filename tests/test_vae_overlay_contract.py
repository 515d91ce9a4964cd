"""The ``vae-overlay`` method keeps the method contract, in both modes."""

from lagaug.testing import MethodContract

TINY = {"class_steps": 6, "batch_size": 8, "copies": 10, "epochs": 2, "batch_copies": 5, "channels": 4,
        "hidden": 8}


class TestVAEOverlayContract(MethodContract):
    method = "vae-overlay"
    overrides = dict(TINY)


class TestVAEOverlaySharedContract(MethodContract):
    """Shared mode with the farthest partners and latent means has nothing random to draw."""

    method = "vae-overlay"
    overrides = {**TINY, "mode": "shared"}
    random = False
