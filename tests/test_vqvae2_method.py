"""The ``vqvae2`` method end to end on tiny data: fit (pool pre-training, checkpoint choice),
encode / resample / decode with structure kept and detail changed, save/load, bad input."""

from __future__ import annotations

import pytest
import torch

from lagaug.core.config import apply_overrides
from lagaug.core.contract.method import FitContext, Latents, StageContext
from lagaug.core.data import ImageSet, InMemoryPool
from lagaug.core.errors import ConfigError, DataError
from lagaug.plugins.vqvae2.method import VQVAE2Config, VQVAE2Method
from lagaug.testing import disk_set

TINY = dict(channel=16, n_res_block=1, n_res_channel=8, embed_dim=8, n_embed=32, epochs=25,
            batch_size=16, lr=3e-3, prior_channel=16, prior_res_channel=16, prior_n_block=1,
            prior_n_res_block=1, prior_n_cond_res_block=1, prior_epochs=6, prior_dropout=0.0,
            prior_lr=3e-3, prior_batch_size=16, bottom_stride=2,  # a 16x16 bottom map: test-sized
            prior_pretrain_epochs=1, crop=0, lr_schedule="constant")  # whole images (crops: test_vqvae2_speed.py)


def shapes_set(n: int, seed: int, size: int = 32) -> ImageSet:
    """Bright disks of random place and size on a textured background (labels: big / small)."""
    return disk_set(n, seed, size)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    work = tmp_path_factory.mktemp("fit")
    train, pool = shapes_set(64, seed=1), InMemoryPool(shapes_set(96, seed=2))
    method = VQVAE2Method(VQVAE2Config(**TINY), (1, 32, 32), train.class_names)
    metrics = method.fit(train, FitContext(generator=torch.Generator().manual_seed(0), work_dir=work),
                         unlabeled=pool)
    return method, metrics, train, work


def ctx(seed=0, **options):
    return StageContext(generator=torch.Generator().manual_seed(seed), variants=options.pop("variants", 1),
                        options=options)


def test_fit_learns_and_chooses_a_checkpoint(fitted):
    method, metrics, _, work = fitted
    assert metrics["recon_l1"] < 0.4 * metrics["recon_l1_untrained"]
    assert metrics["perplexity_bottom"] > 4 and metrics["perplexity_top"] > 2  # not collapsed
    prior = metrics["bottom_prior"]
    assert len(prior["pretrain_loss"]) == 1  # one pass over the pool's codes
    assert prior["train_loss"][-1] < prior["train_loss"][0]
    assert len(prior["val_nll"]) == TINY["prior_epochs"]
    assert prior["criterion"] == "lowest held-out NLL"
    assert prior["val_nll"][prior["chosen_epoch"] - 1] == min(prior["val_nll"])
    assert prior["held_out"] == "10 held-out training images"
    saved = sorted(p.name for p in (work / "vqvae2_checkpoints").iterdir())
    assert saved[0] == "bottom_prior_epoch_001.safetensors" and len(saved) == TINY["prior_epochs"]
    # trained channels-last, handed back in the ordinary layout (safetensors saves only contiguous tensors)
    assert all(p.is_contiguous() for p in method.vqvae.parameters())


def test_resample_keeps_structure_and_changes_detail(fitted):
    method, _, train, _ = fitted
    images = train.float_images(torch.arange(8))
    latents = method.encode(images, train.targets()[:8], ctx())
    assert latents.codes["top"].shape == (8, 8, 8) and latents.codes["bottom"].shape == (8, 16, 16)
    new = method.resample(latents, ctx(1, variants=2))
    assert torch.equal(new.codes["top"], latents.codes["top"].repeat_interleave(2, 0))
    assert torch.equal(new.source, torch.arange(8).repeat_interleave(2)[:, None])
    out = method.decode(new, ctx())
    assert out.images.shape == (16, 1, 32, 32) and 0 <= out.images.min() and out.images.max() <= 1
    for key in ("structure_error", "detail_change", "codes_changed"):
        assert out.metrics[key].shape == (16,)
    assert out.metrics["codes_changed"].mean() > 0.1
    # structure: far closer to its own source than other images are to it
    from lagaug.plugins.vqvae2.metrics import structure_and_detail

    others, _ = structure_and_detail(images.roll(1, 0), images, method.config.metric_sigma)
    assert out.metrics["structure_error"].mean() < 0.5 * others.mean()
    # detail: differs from the plain reconstruction's
    recon = method.decode(latents, ctx()).images.repeat_interleave(2, 0)
    _, new_detail = structure_and_detail(out.images, recon, method.config.metric_sigma)
    assert (new_detail > 0).float().mean() > 0.5


def test_region_resampling_changes_only_the_region(fitted):
    method, _, train, _ = fitted
    latents = method.encode(train.float_images(torch.arange(4)), train.targets()[:4], ctx())
    new = method.resample(latents, ctx(2, region="2,3,5,7", temperature=1.5))
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[2:5, 3:7] = True
    changed = new.codes["bottom"] != latents.codes["bottom"]
    assert not changed[:, ~inside].any() and changed[:, inside].any()
    frac = method.resample(latents, ctx(3, resample_fraction=0.25))
    changed = frac.codes["bottom"] != latents.codes["bottom"]
    assert changed.flatten(1).sum(1).max() <= 64  # an 8x8 box of the 16x16 map at most


def test_same_seed_same_result_and_save_load(fitted, tmp_path):
    method, _, train, _ = fitted
    latents = method.encode(train.float_images(torch.arange(3)), train.targets()[:3], ctx())
    a = method.decode(method.resample(latents, ctx(5)), ctx()).images
    method.save(tmp_path / "gen")
    loaded = VQVAE2Method.load(tmp_path / "gen")
    assert loaded.state["bottom_prior"]["chosen_epoch"] == method.state["bottom_prior"]["chosen_epoch"]
    b = loaded.decode(loaded.resample(latents, ctx(5)), ctx()).images
    assert torch.equal(a, b)


def test_pinned_checkpoint_and_validation_set(tmp_path):
    train, val = shapes_set(24, seed=3), shapes_set(8, seed=4)
    cfg = VQVAE2Config(**{**TINY, "epochs": 2, "prior_epochs": 3, "prior_checkpoint": "2"})
    method = VQVAE2Method(cfg, (1, 32, 32), train.class_names)
    metrics = method.fit(train, FitContext(generator=torch.Generator().manual_seed(0), val=val,
                                           work_dir=tmp_path))
    prior = metrics["bottom_prior"]
    assert prior["chosen_epoch"] == 2 and prior["criterion"] == "pinned by the user"
    assert prior["held_out"] == "validation set" and len(prior["val_nll"]) == 3
    from safetensors.torch import load_file

    epoch2 = load_file(str(tmp_path / "vqvae2_checkpoints" / "bottom_prior_epoch_002.safetensors"))
    assert all(torch.equal(v, method.bottom_prior.state_dict()[k]) for k, v in epoch2.items())


def test_config_overrides_and_errors():
    cfg = apply_overrides(VQVAE2Config(), {"prior_checkpoint": "last", "recon_loss": "mse", "top_prior": "true"})
    assert cfg.prior_checkpoint == "last" and cfg.recon_loss == "mse" and cfg.top_prior
    with pytest.raises(ConfigError, match="prior_checkpoint"):
        apply_overrides(VQVAE2Config(), {"prior_checkpoint": "99"})
    with pytest.raises(ConfigError, match="temperature"):
        apply_overrides(VQVAE2Config(), {"temperature": "0"})
    with pytest.raises(ConfigError, match="prior_kernel"):
        apply_overrides(VQVAE2Config(), {"prior_kernel": "4"})


@pytest.mark.parametrize("shape, message", [
    ((1, 4, 4), "at least 8x8"),
    ((1, 12, 16), "divisible by 8.*12x16"),
])
def test_too_small_images(shape, message):
    with pytest.raises(ConfigError, match=message):
        VQVAE2Method(VQVAE2Config(**TINY), shape, ["a"])


def test_bad_sampling_input(fitted):
    method, _, train, _ = fitted
    latents = method.encode(train.float_images(torch.arange(2)), train.targets()[:2], ctx())
    with pytest.raises(ConfigError, match=r"region=6,0,17,4: outside the 16x16 bottom map"):
        method.resample(latents, ctx(region="6,0,17,4"))
    with pytest.raises(ConfigError, match="region='a,b'"):
        method.resample(latents, ctx(region="a,b"))
    for t in (0, -1, "cold"):
        with pytest.raises(ConfigError, match="temperature"):
            method.resample(latents, ctx(temperature=t))
    with pytest.raises(ConfigError, match="resample_fraction"):
        method.resample(latents, ctx(resample_fraction=1.5))
    bad = Latents(codes={"top": latents.codes["top"], "bottom": latents.codes["bottom"] + 40},
                  source=latents.source, soft=latents.soft)
    with pytest.raises(DataError, match=r"outside the codebook \[0, 32\)"):
        method.resample(bad, ctx())
    with pytest.raises(DataError, match="outside the codebook"):
        method.decode(bad, ctx())
    with pytest.raises(DataError, match="'bottom' codes must be integer"):
        method.decode(Latents(codes={"top": latents.codes["top"], "bottom": latents.codes["bottom"][:, :4]},
                              source=latents.source, soft=latents.soft), ctx())
    with pytest.raises(DataError, match="images must be"):
        method.encode(torch.rand(2, 3, 32, 32), train.targets()[:2], ctx())


def test_unfitted_and_mismatched_data():
    method = VQVAE2Method(VQVAE2Config(**TINY), (1, 32, 32), ["small", "big"])
    latents = method.encode(torch.rand(1, 1, 32, 32), torch.ones(1, 2) / 2, ctx())
    with pytest.raises(ConfigError, match="no trained bottom prior"):
        method.resample(latents, ctx())
    with pytest.raises(DataError, match="unlabeled pool"):
        method.fit(shapes_set(4, seed=0), FitContext(generator=torch.Generator()),
                   unlabeled=InMemoryPool(shapes_set(4, seed=0, size=16)))
