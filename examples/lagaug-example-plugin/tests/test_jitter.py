"""The example plugin's own tests: the lagaug method contract, and what jitter itself promises.

They use lagaug's public API only (``lagaug`` and ``lagaug.testing``)."""

import pytest
import torch

from lagaug import AugmentConfig, ConfigError, fit_generator, run_augment, sample_images
from lagaug.testing import MethodContract, learnable_npz, learnable_splits


class TestJitterContract(MethodContract):
    method = "jitter"
    overrides = {"sigma": "0.1"}

    @pytest.fixture(scope="class")
    @classmethod
    def plugins(cls):  # the contract's own fixture finds installed plugins only
        from jitter_support import example_plugins

        return example_plugins()


def test_sigma_sets_the_noise_strength(plugins):
    data = learnable_splits(size=8, train=(4, 4), val=(1, 1), test=(1, 1))
    method = fit_generator("jitter", data, overrides={"sigma": 0.0}, plugins=plugins)
    images = data.train.float_images([0, 1])
    still = sample_images(method, images, data.train.labels[:2], variants=2, plugins=plugins)
    assert torch.equal(still.images, images.repeat_interleave(2, 0))  # sigma 0: copies
    noisy = sample_images(method, images, data.train.labels[:2], variants=200, options={"sigma": "0.05"},
                          plugins=plugins)
    spread = (noisy.images - images.repeat_interleave(200, 0)).std()
    assert 0.03 < float(spread) < 0.05  # Gaussian noise of sigma 0.05, clipped to [0, 1] at the edges


def test_a_bad_sigma_is_one_line(plugins):
    data = learnable_splits(size=8, train=(4, 4), val=(1, 1), test=(1, 1))
    with pytest.raises(ConfigError, match=r"--set sigma: expected float, got 'loud'"):
        fit_generator("jitter", data, overrides={"sigma": "loud"}, plugins=plugins)


def test_the_logger_hook_sees_every_iteration(plugins, tmp_path):
    import lagaug_example_plugin

    lagaug_example_plugin.ITERATIONS_SEEN.clear()
    run_augment(AugmentConfig(method="jitter", iterations=1, hard_k=2, variants=3, data=str(learnable_npz(tmp_path / "d.npz")),
                              image_size=16, ensemble=1, epochs=1, out=str(tmp_path / "run")), plugins=plugins)
    assert lagaug_example_plugin.ITERATIONS_SEEN == [(0, 0), (1, 6)]
