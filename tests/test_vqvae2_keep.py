"""``vqvae2`` keeps a defect: ``keep=region`` leaves the codes under it and redraws the rest;
``transplant`` writes them onto a defect-free background at the same place."""

from __future__ import annotations

import pytest
import torch
from test_vqvae2_method import TINY

from lagaug.core.contract.method import StageContext
from lagaug.core.contract.plugins import make_plugin_manager
from lagaug.core.data.dataset import DataSplits, InMemoryPool
from lagaug.core.errors import ConfigError
from lagaug.core.regions.masks import dilate, to_grid
from lagaug.core.run.generators import fit_generator
from lagaug.core.run.pipeline import synthesize
from lagaug.testing import defect_set


@pytest.fixture(scope="module")
def fitted():
    train = defect_set(40, 20, seed=3, size=32)
    val = defect_set(8, 4, seed=3, size=32, split="val")
    pool = InMemoryPool(defect_set(64, 0, seed=3, size=32, split="pool"))
    pm = make_plugin_manager()
    over = {**{k: str(v) for k, v in TINY.items()}, "epochs": "4", "prior_epochs": "2", "grid_images": "0"}
    method = fit_generator("vqvae2", DataSplits(train, val, val, pool), overrides=over, seed=0, plugins=pm)
    return pm, method, train, pool


def run(fitted, rows, **options):
    pm, method, train, pool = fitted
    from lagaug.core.config import resolve_options

    _, typed = resolve_options(method.config, options)
    ctx = StageContext(generator=torch.Generator().manual_seed(1), variants=2, options=typed, pool=train,
                       batch_index=torch.tensor(rows), normal_classes=[0], unlabeled=pool)
    rows_t = torch.tensor(rows)
    return synthesize(pm, method, train.float_images(rows_t), train.targets()[rows_t], ctx), ctx


def codes_of(method, images):
    return method._codes(images, torch.device("cpu"))


def test_keep_region_leaves_the_codes_under_the_defect_and_redraws_the_rest(fitted):
    pm, method, train, _ = fitted
    out, _ = run(fitted, [45, 50, 3])
    top_src, bottom_src = codes_of(method, train.float_images(out.primary))
    grown = dilate(train.masks[out.primary], method.config.keep_margin)
    keep = to_grid(grown, method.bottom_shape)
    for j in range(4):  # the defect images
        assert keep[j].any() and out.masks[j].any()
        assert out.notes[j]["kept_cells"] == int(keep[j].sum()) and out.notes[j]["region_source"] == "mask"
    assert all(0 < float(v) < 1 for v in out.metrics["codes_changed"][:4])  # some codes redrawn, not all
    src = train.float_images(out.primary)
    inside = out.masks[:4].unsqueeze(1)
    assert torch.allclose(out.images[:4][inside], src[:4][inside], atol=1e-6)  # keep_pixels: the defect's own pixels
    plain, _ = run(fitted, [45, 50], keep_pixels="false")
    assert float((plain.images - src[:4]).abs()[inside].mean()) > 1e-3  # the decoder's rendering only nears them
    # re-encode is not exact, so check the codes the resampler wrote: run the stages by hand
    ctx = StageContext(generator=torch.Generator().manual_seed(1), variants=2, pool=train,
                       batch_index=torch.tensor([45, 50]), normal_classes=[0])
    rows = torch.tensor([45, 50])
    ctx.regions = pm.call_stage("lagaug_find_region", method=method, images=train.float_images(rows),
                                soft=train.targets()[rows], context=ctx)
    enc = method.encode(train.float_images(rows), train.targets()[rows], ctx)
    new = method.resample(enc, ctx)
    kept = to_grid(dilate(train.masks[new.source[:, 0]], method.config.keep_margin), method.bottom_shape)
    assert torch.equal(new.codes["bottom"][kept], new.codes["bottom_source"][kept])  # kept: unchanged
    assert bool((new.codes["bottom"][~kept] != new.codes["bottom_source"][~kept]).any())  # the rest: redrawn
    assert torch.equal(new.codes["top"], enc.codes["top"].repeat_interleave(2, 0))


def test_keep_none_redraws_the_defect_too(fitted):
    pm, method, train, _ = fitted
    out, _ = run(fitted, [45], keep="none")
    assert not out.masks.any() and out.notes[0]["keep"] == "none"
    ctx = StageContext(generator=torch.Generator().manual_seed(1), variants=2, pool=train, options={"keep": "none"},
                       batch_index=torch.tensor([45, 50]), normal_classes=[0])
    rows = torch.tensor([45, 50])
    ctx.regions = pm.call_stage("lagaug_find_region", method=method, images=train.float_images(rows),
                                soft=train.targets()[rows], context=ctx)
    new = method.resample(method.encode(train.float_images(rows), train.targets()[rows], ctx), ctx)
    under = to_grid(train.masks[new.source[:, 0]], method.bottom_shape)
    assert bool((new.codes["bottom"][under] != new.codes["bottom_source"][under]).any())


def test_transplant_puts_the_defect_at_its_place_on_a_pool_image(fitted):
    pm, method, train, pool = fitted
    ctx = StageContext(generator=torch.Generator().manual_seed(2), variants=2, pool=train,
                       batch_index=torch.tensor([45, 3]), normal_classes=[0], unlabeled=pool,
                       options={"transplant": "pool", "seam": 1})
    rows = torch.tensor([45, 3])
    ctx.regions = pm.call_stage("lagaug_find_region", method=method, images=train.float_images(rows),
                                soft=train.targets()[rows], context=ctx)
    enc = method.encode(train.float_images(rows), train.targets()[rows], ctx)
    new = method.resample(enc, ctx)
    everything = ctx.source_set()
    assert new.source[:2, 1].ge(len(train)).all() and new.source[2:, 1].eq(-1).all()  # pool backgrounds; ok: none
    assert everything.ids[int(new.source[0, 1])].startswith("pool:")
    bg_top, bg_bottom = codes_of(method, everything.float_images(new.source[:2, 1]))
    grown = dilate(train.masks[[45, 45]], method.config.keep_margin)
    keep_b = to_grid(grown, method.bottom_shape)
    seam = dilate(keep_b, 1) & ~keep_b
    src_top, src_bottom = enc.codes["top"][[0, 0]], enc.codes["bottom"][[0, 0]]
    bottom = new.codes["bottom"][:2]
    assert torch.equal(bottom[keep_b], src_bottom[keep_b])  # the defect's codes, at their place
    far = ~(keep_b | seam)
    assert torch.equal(bottom[far], bg_bottom[far])  # the background's codes elsewhere
    keep_t = to_grid(grown, method.top_shape)
    assert torch.equal(new.codes["top"][:2][keep_t], src_top[keep_t])
    assert torch.equal(new.codes["top"][:2][~keep_t], bg_top[~keep_t])
    weights = new.weight[:2]
    assert torch.allclose(weights.sum(1), torch.ones(2)) and bool((weights[:, 0] < 0.5).all())
    out = method.decode(new, ctx)
    assert out.notes[0]["transplant"] == "pool" and out.notes[0]["seam"] == 1
    assert torch.equal(out.masks[0], train.masks[45])


def test_transplant_options_are_checked():
    from lagaug.plugins.vqvae2.config import VQVAE2Config

    with pytest.raises(ConfigError, match=r"--set transplant='x': expected none, pool .* or train"):
        VQVAE2Config(transplant="x")
    with pytest.raises(ConfigError, match=r"--set keep='all': expected region"):
        VQVAE2Config(keep="all")
    with pytest.raises(ConfigError, match=r"--set seam=-1: must be 0 or more"):
        VQVAE2Config(seam=-1)


def test_transplant_without_a_pool_says_what_to_do(fitted):
    pm, method, train, _ = fitted
    ctx = StageContext(generator=torch.Generator().manual_seed(2), pool=train, batch_index=torch.tensor([45]),
                       normal_classes=[0], options={"transplant": "pool"})
    with pytest.raises(ConfigError, match=r"transplant=pool needs an unlabelled pool \(--unlabeled\); use transplant=train"):
        synthesize(pm, method, train.float_images([45]), train.targets()[[45]], ctx)
    ctx = StageContext(generator=torch.Generator().manual_seed(2), pool=train, batch_index=torch.tensor([45]),
                       normal_classes=[0], options={"transplant": "train"})
    out = synthesize(pm, method, train.float_images([45]), train.targets()[[45]], ctx)
    assert int(train.labels[int(out.source[0, 1])]) == 0  # a defect-free training image
