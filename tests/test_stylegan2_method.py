"""The ``stylegan2`` method end to end at test size: fit (pool + training images, W statistics,
class directions, checkpoints), encode -> resample -> decode for every direction with sources, soft
labels and per-image metrics carried, seeded determinism, save/load, options, bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch.nn import functional as F

from lagaug.core.config import apply_overrides
from lagaug.core.contract.method import FitContext, Latents, StageContext
from lagaug.core.data import ImageSet, InMemoryPool
from lagaug.core.errors import ConfigError, DataError
from lagaug.plugins.stylegan2.method import StyleGAN2Config, StyleGAN2Method
from lagaug.testing import disk_set

SIZE = 16
TINY = dict(style_dim=16, n_mlp=2, channel_base=256, channel_max=16, steps=60, batch_size=8, lr=0.004,
            ema_kimg=0.2, checkpoint_every=25, class_proj_steps=30, proj_steps=30, proj_batch=5,
            pca_components=4, class_max_images=12)


def shapes_set(n: int, seed: int) -> ImageSet:
    """Bright disks (class 'big' or 'small' by radius) on a textured background."""
    return disk_set(n, seed, SIZE, radius=(0.12, 0.2), base=0.15, contrast=0.6)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    work = tmp_path_factory.mktemp("fit")
    train, pool = shapes_set(40, seed=1), InMemoryPool(shapes_set(64, seed=2))
    method = StyleGAN2Method(StyleGAN2Config(**TINY), (1, SIZE, SIZE), train.class_names)
    metrics = method.fit(train, FitContext(generator=torch.Generator().manual_seed(0), work_dir=work),
                         unlabeled=pool)
    return method, metrics, train, work


def ctx(seed=0, variants=1, **options):
    return StageContext(generator=torch.Generator().manual_seed(seed), variants=variants, options=options)


def test_fit_trains_measures_w_and_fits_class_directions(fitted):
    method, metrics, train, work = fitted
    assert metrics["training"]["steps_done"] == TINY["steps"]
    assert metrics["trained_on"].startswith("unlabeled pool (64 images) + training images (50%")
    data, before, after = metrics["data_stats"], metrics["sample_stats_untrained"], metrics["sample_stats"]
    assert abs(after["mean"] - data["mean"]) < 0.5 * abs(before["mean"] - data["mean"])
    assert metrics["w_spread"] > 0 and len(metrics["pca_explained"]) == 4
    info = metrics["class_directions"]
    assert info["images"] == 24 and info["classes"] == ["small", "big"] and min(info["accuracy"]) > 0.5
    assert float(method.stats.class_present.sum()) == 2
    assert torch.allclose(method.stats.class_normals.norm(dim=1), torch.ones(2))
    assert (work / "stylegan2_samples.png").is_file()
    assert (work / "stylegan2_train" / "train_state.safetensors").is_file()  # checkpoint at step 25/50


@pytest.mark.parametrize("direction", ["random", "class", "pca"])
def test_encode_resample_decode(fitted, direction):
    method, _, train, _ = fitted
    images = train.float_images(torch.arange(4))
    soft = torch.tensor([[0.7, 0.3], [0.0, 1.0], [1.0, 0.0], [0.2, 0.8]])
    latents = method.encode(images, soft, ctx())
    assert latents.codes["w"].shape == (4, 16) and latents.codes["projection_error"].shape == (4,)
    assert latents.codes["noise_4"].shape == (4, 1, SIZE, SIZE) and torch.equal(latents.source, torch.arange(4)[:, None])
    moved = method.resample(latents, ctx(1, variants=3, direction=direction))
    assert len(moved) == 12 and torch.equal(moved.source, torch.arange(4).repeat_interleave(3)[:, None])
    torch.testing.assert_close(moved.soft, soft.repeat_interleave(3, 0))
    out = method.decode(moved, ctx())
    assert out.images.shape == (12, 1, SIZE, SIZE) and 0 <= float(out.images.min()) <= float(out.images.max()) <= 1
    assert torch.equal(out.source, moved.source) and torch.equal(out.soft, moved.soft)
    assert set(out.metrics) == {"projection_error", "direction", "magnitude", "component", "move_norm"}
    assert all(v.shape == (12,) for v in out.metrics.values())
    assert out.metrics["direction"].tolist() == [float(["random", "class", "pca"].index(direction))] * 12
    assert float(out.metrics["move_norm"].min()) > 0
    torch.testing.assert_close(out.metrics["projection_error"], latents.codes["projection_error"].repeat_interleave(3))
    if direction == "pca":
        assert set(out.metrics["component"].tolist()) <= {0.0, 1.0, 2.0, 3.0}
    if direction == "class":  # along (+) or against (-) the image's own class normal, never across
        delta = moved.codes["w"] - moved.codes["w_source"]
        normals = method.stats.class_normals[moved.soft.argmax(1)]
        torch.testing.assert_close((delta * normals).sum(1).abs(), delta.norm(dim=1), rtol=1e-4, atol=1e-5)
    # the decoded images resemble the reconstruction of their own source more than the others
    recon = method.decode(latents, ctx()).images
    dist = (out.images[:, None] - recon[None]).abs().flatten(2).mean(2)  # (12, 4)
    own = dist[torch.arange(12), out.primary]
    others = (dist.sum(1) - own) / 3
    assert float(own.mean()) < float(others.mean()), (own, others)


def test_seeded_save_load_and_no_global_randomness(fitted, tmp_path):
    method, _, train, _ = fitted
    images = train.float_images(torch.arange(3))
    soft = F.one_hot(train.labels[:3], 2).float()

    def run(m, seed):
        c = ctx(seed, variants=2, direction="class")
        return m.decode(m.resample(m.encode(images, soft, c), c), c)

    torch.manual_seed(0)
    before = torch.get_rng_state()
    a, b, other = run(method, 5), run(method, 5), run(method, 6)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, other.images)
    method.save(tmp_path / "gen")
    loaded = StyleGAN2Method.load(tmp_path / "gen")
    assert loaded.state["class_directions"]["classes"] == ["small", "big"]
    again = run(loaded, 5)
    assert torch.equal(again.images, a.images)
    for key in a.metrics:
        assert torch.equal(again.metrics[key], a.metrics[key])


def test_options_may_be_strings_or_typed(fitted):
    method, _, train, _ = fitted
    latents = method.encode(train.float_images(torch.arange(2)), torch.eye(2), ctx(proj_steps="5"))
    for zero in ("0", 0.0):
        moved = method.resample(latents, ctx(1, direction="random", magnitude=zero))
        assert float(moved.codes["move_norm"].max()) == 0.0
    plus = method.encode(train.float_images(torch.arange(2)), torch.eye(2), ctx(proj_steps=3, w_plus="true"))
    assert plus.codes["w"].shape == (2, method.generator.n_latent, 16)
    out = method.decode(method.resample(plus, ctx(2, direction="pca")), ctx())
    assert out.images.shape == (2, 1, SIZE, SIZE)
    with pytest.raises(ConfigError, match="--set direction: expected one of random, class, pca, got 'up'"):
        method.resample(latents, ctx(direction="up"))
    with pytest.raises(ConfigError, match=r"--set magnitude=-1.0: must be 0 or more"):
        method.resample(latents, ctx(magnitude=-1))


def test_bad_input_is_one_line(fitted):
    method, _, train, _ = fitted
    for shape, text in (((1, 24, 24), r"power-of-two side .* got 24x24; pass --image-size 32"),
                        ((1, 32, 16), r"got 32x16; pass --image-size 32"),
                        ((1, 4, 4), r"at least 8x8 pixels, got 4x4")):
        with pytest.raises(ConfigError, match=text) as err:
            StyleGAN2Method.check_image_shape(shape)
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="w_samples=100: must be at least 10000"):
        StyleGAN2Config(w_samples=100)
    with pytest.raises(ConfigError, match="batch_size=1: must be at least 2"):
        apply_overrides(StyleGAN2Config(), {"batch_size": "1"})
    with pytest.raises(ConfigError, match=r"channels=8,8: needs one count per resolution 4, 8, 16 \(3 values\)"):
        StyleGAN2Method(StyleGAN2Config(channels=(8, 8)), (1, 16, 16), ["a", "b"])
    with pytest.raises(DataError, match=r"stylegan2 encode: images must be \(N, 1, 16, 16\)"):
        method.encode(torch.rand(2, 3, 16, 16), torch.eye(2), ctx())
    with pytest.raises(DataError, match="latents have no 'w' codes"):
        method.decode(Latents(codes={}, source=torch.arange(1), soft=torch.ones(1, 2)), ctx())
    with pytest.raises(DataError, match="training set: images are"):
        method.fit(ImageSet(images=torch.rand(2, 1, 8, 8), labels=torch.zeros(2), class_names=["small", "big"],
                            ids=["a", "b"]), FitContext(generator=torch.Generator()))
    unfitted = StyleGAN2Method(StyleGAN2Config(**TINY), (1, SIZE, SIZE), ["small", "big"])
    with pytest.raises(ConfigError, match="no statistics of W"):
        unfitted.encode(train.float_images([0]), torch.eye(2)[:1], ctx())


def test_plugin_module_is_light_and_registers_lazily():
    code = ("import sys, lagaug.plugins.stylegan2 as p; seen = []; "
            "p.lagaug_register_methods(lambda *a, **k: seen.append((a, k))); "
            "assert 'torch' not in sys.modules, 'torch imported'; print(seen[0][0][0], seen[0][1]['name'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    target, name = out.stdout.split()
    assert name == "stylegan2" and target == "lagaug.plugins.stylegan2.method:StyleGAN2Method"
    from lagaug.core.contract import plugins

    make = getattr(plugins, "make_plugin_manager", None) or plugins.get_plugin_manager
    assert make().get_method("stylegan2") is StyleGAN2Method


def test_provenance_from_the_pool_and_class_directions_fitted_lazily_from_it(fitted):
    import copy

    method, _, train, _ = fitted
    rows = torch.tensor([0, 3, 5])
    c = ctx(1, variants=2, direction="class", class_proj_steps=5)
    c.pool, c.batch_index = train, rows  # what the loop gives a stage (see StageContext)
    latents = method.encode(train.float_images(rows), train.targets()[rows], c)
    assert latents.source.reshape(3, -1)[:, 0].tolist() == [0, 3, 5]
    bare = copy.deepcopy(method)
    del bare.state["class_directions"]
    bare.stats.class_present.zero_()
    with pytest.raises(ConfigError, match="no class directions"):
        bare.resample(latents, ctx(direction="class"))
    moved = bare.resample(latents, c)  # fits them on the pool's images first
    assert bare.state["class_directions"]["images"] == 24 and len(moved) == 6
    # fitted with class_proj_steps=0 (DAPPER's source-set fit): the lazy fit projects with
    # proj_steps instead of leaving every image at the mean w, and the moves are real
    zero = copy.deepcopy(bare)
    del zero.state["class_directions"]
    zero.stats.class_present.zero_()
    z = ctx(1, variants=2, direction="class", class_proj_steps=0, proj_steps=6)
    z.pool, z.batch_index = train, rows
    moved = zero.resample(latents, z)
    assert zero.state["class_directions"]["projection_steps"] == 6
    assert bool((moved.codes["move_norm"] > 0).all())
    assert moved.source.reshape(6, -1)[:, 0].tolist() == [0, 0, 3, 3, 5, 5]
