"""aae-mixup keeps the method contract (lagaug.testing.MethodContract), with every partner rule."""

from lagaug.testing import MethodContract

TINY = {"latent_dim": 2, "width": 4, "disc_hidden": 8, "epochs": 1, "min_steps": 6, "batch_size": 8, "restarts": 0}


class TestAAEMixupContract(MethodContract):
    method = "aae-mixup"
    overrides = TINY


class TestAAEMixupNearestContract(MethodContract):
    """``nearest`` with one candidate is deterministic in its partner; λ still varies by seed."""

    method = "aae-mixup"
    overrides = TINY
    options = {"partner": "nearest"}


class TestAAEMixupSameClassContract(MethodContract):
    method = "aae-mixup"
    overrides = TINY
    options = {"partner": "same", "lam": "range", "lam_range": "0.6,0.8"}
