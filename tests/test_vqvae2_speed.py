"""What makes the ``vqvae2`` fit fast, and that each piece computes what it replaces: the one-hot
conv as a lookup, crops, the learning-rate schedule, bf16 steps, a capped pool pass."""

from __future__ import annotations

import pytest
import torch
from test_vqvae2_method import TINY, shapes_set
from torch.nn import functional as F

from lagaug.core.contract.method import FitContext
from lagaug.core.data import InMemoryPool
from lagaug.core.errors import ConfigError
from lagaug.plugins.vqvae2.config import VQVAE2Config
from lagaug.plugins.vqvae2.method import VQVAE2Method
from lagaug.plugins.vqvae2.pixelsnail import embed_conv
from lagaug.plugins.vqvae2.training import autocast, lr_factor, random_crops, resolve_precision, vqvae_step


def test_a_conv_over_one_hot_codes_is_a_lookup():
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 10, (3, 6, 7), generator=g)
    weight, bias = torch.randn(5, 10, 2, 3, generator=g), torch.randn(5, generator=g)
    pad = (1, 1, 1, 0)
    onehot = F.one_hot(codes, 10).permute(0, 3, 1, 2).float()
    expected = F.conv2d(F.pad(onehot, pad), weight, bias)
    assert torch.allclose(embed_conv(codes, weight, bias, pad, 10), expected, atol=1e-5)


def test_random_crops_and_the_schedule():
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    crops = random_crops(x, 4, torch.Generator().manual_seed(0))
    assert crops.shape == (2, 1, 4, 4)
    for i in range(2):  # every crop is a contiguous window of its own image
        y, x0 = divmod(int(crops[i, 0, 0, 0]) - 64 * i, 8)
        assert torch.equal(crops[i, 0], x[i, 0, y : y + 4, x0 : x0 + 4])
    assert random_crops(x, 0, torch.Generator()) is x and random_crops(x, 8, torch.Generator()) is x
    assert lr_factor(0, 100, "cosine") == pytest.approx(1.0) and lr_factor(100, 100, "cosine") == pytest.approx(0.05)
    assert lr_factor(50, 100, "cosine") == pytest.approx(0.525) and lr_factor(70, 100, "constant") == 1.0


def test_crop_training_learns_and_is_resolved_by_image_size():
    assert VQVAE2Method(VQVAE2Config(), (1, 32, 32), ["a", "b"]).train_crop() == 16
    assert VQVAE2Method(VQVAE2Config(), (1, 64, 64), ["a", "b"]).train_crop() == 32
    assert VQVAE2Method(VQVAE2Config(), (1, 16, 16), ["a", "b"]).train_crop() == 0
    assert VQVAE2Method(VQVAE2Config(crop=8), (1, 16, 16), ["a", "b"]).train_crop() == 8
    with pytest.raises(ConfigError, match=r"--set crop=12: expected auto, 0 \(whole images\) or a multiple of 8"):
        VQVAE2Config(crop=12)
    train = shapes_set(48, seed=4)
    method = VQVAE2Method(VQVAE2Config(**{**TINY, "crop": 16, "lr_schedule": "cosine", "prior_epochs": 1,
                                          "grid_images": 0}), (1, 32, 32), train.class_names)
    metrics = method.fit(train, FitContext(generator=torch.Generator().manual_seed(0)))
    assert metrics["recon_l1"] < 0.4 * metrics["recon_l1_untrained"]  # learnt on crops, measured on whole images


def test_bf16_steps_learn_like_fp32_and_the_quantizer_stays_float32():
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "cpu") in ("bf16", "fp32")
    x = shapes_set(16, seed=5).float_images() * 2 - 1
    losses = {}
    for precision in ("fp32", "bf16"):
        method = VQVAE2Method(VQVAE2Config(**TINY), (1, 32, 32), ["a", "b"])
        from lagaug.plugins.vqvae2.layers import init_weights_

        init_weights_(method.vqvae, torch.Generator().manual_seed(1))
        opt = torch.optim.Adam(method.vqvae.parameters(), lr=3e-3)
        gen = torch.Generator().manual_seed(2)
        losses[precision] = [vqvae_step(method.vqvae, opt, x, 0.25, "l1", gen, 0.0, 0.0, precision) for _ in range(15)]
        with autocast("cpu", precision):
            quant, _, _ = method.vqvae.quantize_b(torch.randn(2, 4, 4, method.config.embed_dim))
        assert quant.dtype == torch.float32
    for precision, run in losses.items():
        assert run[-1] < 0.7 * run[0], precision
    assert abs(losses["bf16"][-1] - losses["fp32"][-1]) < 0.25 * losses["fp32"][-1]
    with pytest.raises(ConfigError, match=r"--set precision='fp16': expected auto, bf16 or fp32"):
        VQVAE2Config(precision="fp16")


def test_pool_images_caps_a_pretraining_pass():
    method = VQVAE2Method(VQVAE2Config(**{**TINY, "pool_images": 40, "batch_size": 16}), (1, 32, 32), ["a", "b"])
    pool = InMemoryPool(shapes_set(96, seed=2))
    ctx = FitContext(generator=torch.Generator().manual_seed(0))
    batches = list(method._pool_batches(pool, ctx, torch.device("cpu")))
    assert [len(b) for b in batches] == [16, 16, 8] and method._pool_size(pool) == 40
    method.config.pool_images = 0
    assert sum(len(b) for b in method._pool_batches(pool, ctx, torch.device("cpu"))) == 96
