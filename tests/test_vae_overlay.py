"""Behaviour of the ``vae-overlay`` method (Malyshev et al. 2021) on tiny disc / bar images."""

from __future__ import annotations

import json

import pytest
import torch

from lagaug.core.config import resolve_options
from lagaug.core.contract.method import FitContext, StageContext
from lagaug.core.data.dataset import ImageSet
from lagaug.core.errors import ConfigError, DataError
from lagaug.plugins.vae_overlay.config import VAEOverlayConfig
from lagaug.plugins.vae_overlay.method import VAEOverlayMethod
from lagaug.plugins.vae_overlay.model import OverlayVAE, train_on_copies
from lagaug.plugins.vae_overlay.overlay import choose_partners

SIZE = 16
CLASSES = ["disc", "bar"]
SMALL = dict(class_steps=40, batch_size=8, channels=8, copies=500, epochs=2, batch_copies=5)
_yy, _xx = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")


def disc(cy: float, cx: float, r: float) -> torch.Tensor:
    return (((_yy - cy) ** 2 + (_xx - cx) ** 2).sqrt() <= r).float()[None]


def bar(row: int, col: int, length: int, vertical: bool = False) -> torch.Tensor:
    x = torch.zeros(1, SIZE, SIZE)
    if vertical:
        x[:, col : col + length, row : row + 2] = 1
    else:
        x[:, row : row + 2, col : col + length] = 1
    return x


def image_set(discs, bars, synthetic=()) -> ImageSet:
    images = [disc(*d) for d in discs] + [bar(*b) for b in bars]
    labels = [0] * len(discs) + [1] * len(bars)
    flags = torch.zeros(len(images), dtype=torch.bool)
    flags[list(synthetic)] = True
    return ImageSet(images=torch.stack(images), labels=torch.tensor(labels), class_names=list(CLASSES),
                    ids=[f"img{i}" for i in range(len(images))], synthetic=flags)


TRAIN_DISCS = [(6, 6, 3.5), (9, 9, 4), (7, 9, 3), (9, 6, 4.5), (8, 8, 5)]
TRAIN_BARS = [(2, 2, 10), (12, 3, 11), (7, 1, 12), (3, 4, 9, True), (10, 2, 12, True)]


def new_method(**kw) -> VAEOverlayMethod:
    return VAEOverlayMethod(VAEOverlayConfig(**{**SMALL, **kw}), (1, SIZE, SIZE), list(CLASSES))


def stage(method, pool: ImageSet, rows, seed=0, variants=1, **options):
    """encode -> resample -> decode of pool ``rows`` with typed ``options``."""
    _, typed = resolve_options(method.config, options)
    rows = torch.tensor(rows)
    ctx = StageContext(generator=torch.Generator().manual_seed(seed), variants=variants, options=typed,
                       pool=pool, batch_index=rows)
    latents = method.resample(method.encode(pool.float_images(rows), pool.targets()[rows], ctx), ctx)
    return latents, method.decode(latents, ctx)


def rmse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).flatten(-3).pow(2).mean(-1).sqrt()


@pytest.fixture(scope="module")
def fitted() -> VAEOverlayMethod:
    method = new_method()
    method.fit(image_set(TRAIN_DISCS, TRAIN_BARS), FitContext(generator=torch.Generator().manual_seed(0)))
    return method


# -- the networks learn ---------------------------------------------------------------------------
def test_group_vae_reconstruction_falls_and_source_latents_separate():
    x = torch.stack([disc(6, 6, 3.5), disc(9, 9, 4), bar(12, 2, 11)])
    vae = OverlayVAE((1, SIZE, SIZE), 2, 8, 16, torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = float(rmse(vae.reconstruct(x), x).mean())
        mu0 = vae.encode(x)[0]
    batch = torch.arange(3).repeat(5)  # every minibatch holds copies of all three images
    losses = train_on_copies(vae, x, lambda s: batch, 200, optimizer="rmsprop", lr=2e-3, beta=1.0,
                             generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        after = float(rmse(vae.reconstruct(x), x).mean())
        mu, logvar = vae.encode(x)
    assert after < before / 4, (before, after)
    assert sum(losses[-20:]) / 20 < losses[0] / 4
    # three clusters, each a few posterior sigmas from the others (they start on top of each other)
    sigma = float((0.5 * logvar).exp().max())
    assert float(torch.pdist(mu).min()) > 2 * sigma
    assert float(torch.pdist(mu).min()) > 10 * float(torch.pdist(mu0).min())


def test_fit_trains_every_class_vae(fitted):
    figures = fitted.fit_metrics
    assert all(fitted.fitted) and set(figures["train_loss"]) == set(CLASSES)
    assert all(figures["train_loss"][c] < figures["first_loss"][c] / 2 for c in CLASSES)


# -- overlays -------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decoded_overlay_is_closer_to_each_source_than_to_any_image_of_another_class(fitted, seed):
    """Faithful mode (a group VAE on the two discs): the decoded sum is nearer each disc than any bar.

    The check can fail: a blank image, a bar, or a disc far from both sources would."""
    pool = image_set([(6.5, 6.5, 4), (8.5, 9, 4)], [(13, 1, 11), (2, 3, 12), (5, 2, 10, True)])
    latents, out = stage(fitted, pool, [0], seed=seed)
    assert out.source.tolist() == [[0, 1]] and len(latents.info["group_vaes"]) == 1
    sources, bars = pool.float_images([0, 1]), pool.float_images([2, 3, 4])
    with torch.no_grad():  # the group VAE learned its two images: each latent decodes to its source
        recon = latents.info["group_vaes"][0].decode(latents.codes["source_latents"][0])
    assert float(rmse(recon, sources).max()) < 0.1
    to_sources, to_bars = rmse(out.images[0], sources), rmse(out.images[0], bars)
    assert float(to_sources.max()) < float(to_bars.min()), (to_sources, to_bars)
    assert torch.allclose(out.metrics["source_0_rmse"], to_sources[:1], atol=1e-5)
    blank = torch.zeros(1, SIZE, SIZE)
    assert float(rmse(blank, sources).max()) > float(rmse(blank, bars).min())  # the check discriminates


@pytest.mark.parametrize("rule", ["sum", "mean", "rescaled"])
def test_where_the_combined_latent_lands_is_reported(fitted, rule):
    pool = image_set(TRAIN_DISCS, TRAIN_BARS)
    latents, out = stage(fitted, pool, [0, 6], mode="shared", combine=rule, sources=3)
    src_z = latents.codes["source_latents"]  # (N, S, d): the class-VAE latents that were combined
    for j in range(len(out)):
        total = src_z[j].sum(0)
        factor = {"sum": 1.0, "mean": 1 / 3, "rescaled": float(src_z[j].norm(dim=1).mean() / total.norm())}[rule]
        assert torch.allclose(latents.codes["z"][j], factor * total, atol=1e-5)
        assert torch.allclose(out.weight[j], torch.full((3,), factor))  # the coefficients, as provenance
        norm = float(latents.codes["z"][j].norm())
        assert out.metrics["sum_norm"][j] == pytest.approx(norm, rel=1e-5)
        cls = int(pool.labels[out.source[j, 0]])  # the training latents: this class's images
        with torch.no_grad():
            train_mu = fitted.vaes[cls].encode(pool.float_images(torch.nonzero(pool.labels == cls).flatten()))[0]
        norms = train_mu.norm(dim=1)
        assert out.metrics["train_norm_ratio"][j] == pytest.approx(norm / float(norms.max()), rel=1e-4)
        assert out.metrics["train_norm_rank"][j] == pytest.approx(float((norms < norm).float().mean()))
        if rule == "mean":
            assert float(out.metrics["train_norm_ratio"][j]) <= 1 + 1e-5
    assert torch.allclose(out.soft, pool.targets()[out.source[:, 0]])  # same class: that class


def test_farthest_partners_are_the_farthest_real_images_of_the_class(fitted):
    # rows 0-4 discs, 5 a synthetic disc (never a partner), 6-8 bars
    pool = image_set(TRAIN_DISCS + [(8, 7, 6)], TRAIN_BARS[:3], synthetic=[5])
    latents, out = stage(fitted, pool, [0], mode="shared", variants=5)
    with torch.no_grad():
        mu = fitted.vaes[0].encode(pool.float_images(range(5)))[0]
    order = (mu - mu[0]).norm(dim=1).argsort(descending=True).tolist()
    assert out.source[:, 0].tolist() == [0] * 5
    # the farthest, then the next farthest for the next variant, ... until the real discs run out
    assert out.source[:4, 1].tolist() == order[:4] and int(out.source[4, 1]) == order[0]
    assert out.weight.tolist() == [[1.0, 1.0]] * 5


def test_a_hard_image_repeated_in_the_batch_shares_one_group_vae_and_takes_new_partners(fitted):
    pool = image_set(TRAIN_DISCS, TRAIN_BARS)
    latents, out = stage(fitted, pool, [0, 6, 0], copies=20, epochs=1)  # as compare asks: rows repeat
    assert len(latents.info["group_vaes"]) == 2  # one per distinct hard image
    assert out.source[:, 0].tolist() == [0, 6, 0] and int(out.source[0, 1]) != int(out.source[2, 1])


def test_choose_partners_farthest_and_random():
    cand = torch.tensor([[1.0, 0.0], [5.0, 0.0], [0.0, 4.0], [-3.0, 0.0]])
    hard = torch.zeros(2)
    g = torch.Generator().manual_seed(0)
    assert choose_partners(hard, cand, 2, 1, "farthest", g).tolist() == [[1, 2]]  # farthest, then max-min
    assert choose_partners(hard, cand, 2, 2, "farthest", g).tolist() == [[1, 2], [3, 0]]  # unused ones first
    draws = {tuple(choose_partners(hard, cand, 2, 1, "random", torch.Generator().manual_seed(s))[0].tolist())
             for s in range(20)}
    assert len(draws) > 3 and all(len(set(d)) == 2 for d in draws)


def test_partners_of_other_classes_mix_the_labels(fitted):
    pool = image_set(TRAIN_DISCS, TRAIN_BARS)
    _, out = stage(fitted, pool, [0, 1], mode="shared", partner_classes="other", combine="mean")
    assert bool((pool.labels[out.source[:, 1]] == 1).all())
    assert torch.allclose(out.soft, torch.tensor([[0.5, 0.5], [0.5, 0.5]]))


def test_random_partners_follow_the_seed(fitted):
    pool = image_set(TRAIN_DISCS, TRAIN_BARS)
    picks = [stage(fitted, pool, [0], seed=s, mode="shared", partner="random", variants=3)[1].source
             for s in (1, 1, 2, 3)]
    assert torch.equal(picks[0], picks[1]) and not (torch.equal(picks[0], picks[2]) and torch.equal(picks[0], picks[3]))


# -- bad input ------------------------------------------------------------------------------------
def test_a_class_with_too_few_images_is_one_line_naming_it(fitted):
    lonely = image_set(TRAIN_DISCS, [(2, 2, 10)])  # one bar
    with pytest.raises(DataError, match=r"^vae-overlay: class 'bar' has 1 training image\(s\), but sources=3") as err:
        new_method(sources=3).fit(lonely, FitContext(generator=torch.Generator().manual_seed(0)))
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match=r"class 'bar': an overlay of 3 sources needs 2 partner\(s\), but there "
                                        r"are only 0 other real image\(s\) of class 'bar'") as err:
        stage(fitted, lonely, [5], mode="shared", sources=3)
    assert "\n" not in str(err.value) and "--set sources" in str(err.value)


@pytest.mark.parametrize("key, value, message", [
    ("sources", "1", "sources must be between 2 and 8, got 1"),
    ("sources", "9", "sources must be between 2 and 8, got 9"),
    ("copies", "0", "copies must be at least 1, got 0"),
    ("posterior_scale", "-0.5", "posterior_scale must be between 0 and 10, got -0.5"),
    ("latent_dim", "0", "latent_dim must be between 1 and 64, got 0"),
    ("mode", "fast", "expected one of faithful, shared, got 'fast'"),
])
def test_options_out_of_range_are_refused_with_the_valid_range(key, value, message):
    with pytest.raises(ConfigError, match=message) as err:
        resolve_options(VAEOverlayConfig(), {key: value})
    assert "\n" not in str(err.value)


# -- in the loop ----------------------------------------------------------------------------------
def test_augment_records_every_source_with_its_weight(tmp_path):
    from lagaug.core.contract.plugins import make_plugin_manager
    from lagaug.core.run.loop import AugmentConfig, run_augment
    from lagaug.testing import learnable_npz

    data = learnable_npz(tmp_path / "learn.npz", counts=(20, 10, 10), test=(10, 10, 10))
    cfg = AugmentConfig(method="vae-overlay", hard_k=2, iterations=1, data=str(data), image_size=16,
                        ensemble=1, epochs=1, out=str(tmp_path / "run"), seed=1,
                        set={"class_steps": "10", "copies": "20", "epochs": "1", "channels": "4", "combine": "mean"})
    run_augment(cfg, plugins=make_plugin_manager())
    manifest = [json.loads(line) for line in (tmp_path / "run" / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 2
    for line in manifest:
        assert len(line["source"]) == 2 and line["source_weight"] == [0.5, 0.5]
        assert line["source_label"] == [line["label"]] * 2 and not line["source"][1].startswith("synthetic")
        assert {"sum_norm", "train_norm_ratio", "source_0_rmse", "source_1_rmse"} <= set(line)
