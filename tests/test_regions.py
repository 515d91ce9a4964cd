"""Where the defect is: masks in the data, the region stage (mask, anomaly map, saliency), and
methods that keep the region (the core's blend; cut-paste)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import invoke
from PIL import Image

from lagaug.core.contract.method import StageContext
from lagaug.core.contract.plugins import make_plugin_manager
from lagaug.core.data.dataset import InMemoryPool
from lagaug.core.data.sources import load_data
from lagaug.core.errors import ConfigError, DataError
from lagaug.core.regions.anomaly import AnomalyConfig, AnomalyModel
from lagaug.core.regions.masks import check_masks, dilate, resolve_normal_classes, to_grid
from lagaug.core.regions.measure import pixel_auroc, region_figures
from lagaug.core.regions.saliency import occlusion_map, saliency_region
from lagaug.core.run.pipeline import synthesize
from lagaug.testing import defect_npz, defect_set

# -- masks in the data --------------------------------------------------------------------------


def test_npz_masks_are_read_resized_by_overlap_and_carried_into_the_validation_carve(tmp_path):
    path = defect_npz(tmp_path / "d.npz", size=16)
    raw = np.load(path)
    splits = load_data(path, image_size=32)  # twice the size: every drawn pixel becomes a 2x2 block
    train, val, test = splits.train, splits.val, splits.test
    assert train.masks.shape == (len(train), 32, 32) and val.masks is not None and test.masks is not None
    assert int(train.mask_rows().flatten(1).any(1).sum()) + int(val.mask_rows().flatten(1).any(1).sum()) == 16
    first = int(test.labels.tolist().index(1))
    expected = np.kron(raw["m_test"][first], np.ones((2, 2))) > 0
    assert np.array_equal(test.masks[first].numpy(), expected)
    small = load_data(path, image_size=8)  # halved: a pixel is on when any source pixel under it was
    assert np.array_equal(small.test.masks[first].numpy(), raw["m_test"][first].reshape(8, 2, 8, 2).any((1, 3)))
    assert splits.summary()["masks"] == {"train": int(train.mask_rows().flatten(1).any(1).sum()),
                                         "val": int(val.mask_rows().flatten(1).any(1).sum()), "test": 10}
    assert "masks: train" in splits.counts_line()


def test_bad_npz_masks_are_one_line_naming_the_key(tmp_path):
    path = defect_npz(tmp_path / "d.npz")
    arrays = dict(np.load(path))
    arrays["m_train"] = arrays["m_train"][:, :8]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=r"bad.npz: m_train has shape \(56, 8, 16\); masks must be \(56, 16, 16\)"):
        load_data(tmp_path / "bad.npz", image_size=16)


def test_folder_masks_mirror_the_image_folders(tmp_path):
    root = tmp_path / "data"
    data = defect_set(6, 4, size=16)
    for i in range(len(data)):
        cls = data.class_names[int(data.labels[i])]
        (root / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.images[i, 0].numpy()).save(root / cls / f"{i}.png")
        if data.masks[i].any():
            (root / "masks" / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(data.masks[i].numpy().astype(np.uint8) * 255).save(root / "masks" / cls / f"{i}.png")
    splits = load_data(root, image_size=16)
    assert splits.class_names == ["defect", "ok"]  # masks/ is not a class
    everything = splits.train.concat(splits.val).concat(splits.test)
    for i, id_ in enumerate(everything.ids):
        k = int(id_.split("/")[1].split(".")[0])
        assert torch.equal(everything.masks[i], data.masks[k]), id_
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "masks" / "defect" / "6.png")  # a smaller mask
    with pytest.raises(DataError, match=r"mask .*masks/defect/6.png is 8x8 but its image .*defect/6.png is 16x16"):
        load_data(root, image_size=16)
    (root / "masks" / "defect" / "6.png").unlink()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "masks" / "defect" / "99.png")
    with pytest.raises(DataError, match=r"mask .*99.png has no image .*defect/99\.\*"):
        load_data(root, image_size=16)


def test_the_embedded_data_brings_a_mask_for_every_defect_and_none_for_ok():
    from lagaug.core.data.synthetic import make_default_splits, render_image

    splits = make_default_splits(32, 0, n_unlabeled=0, train=(6, 6), val=(1, 1), test=(1, 1))
    train = splits.train
    has = train.masks.flatten(1).any(1)
    assert has.tolist() == [False] * 6 + [True] * 6
    assert splits.extra["normal_classes"] == ["ok"]
    for i in range(6, 12):  # the mask lies on the pixels the defect changed
        img, notes = render_image(32, 0, "train", 1, i - 6)
        assert np.array_equal(train.images[i, 0].numpy(), img)
        assert 0 < int(train.masks[i].sum()) < 0.3 * 32 * 32, notes


def test_normal_classes_and_masks_on_them(tmp_path):
    assert resolve_normal_classes(None, ["defect", "ok"]) == [1]
    assert resolve_normal_classes(None, ["a", "b"]) == []
    assert resolve_normal_classes(["b"], ["a", "b"]) == [1]
    assert resolve_normal_classes(["none"], ["ok", "b"]) == []
    with pytest.raises(ConfigError, match=r"--normal-class 'c' is not a class; classes are: a, b"):
        resolve_normal_classes(["c"], ["a", "b"])
    data = defect_set(4, 2)
    data.masks[1, 3, 3] = True  # a mask on an ok image
    with pytest.raises(DataError, match=r"d.npz: 1 train image\(s\) of class 'ok' have a defect mask \(e.g. train/0001\)"):
        check_masks({"train": data}, [0], "d.npz")
    check_masks({"train": data}, [], "d.npz")  # no normal class: nothing to refuse


def test_a_mask_on_a_normal_image_stops_augment_before_anything_is_written(tmp_path):
    path = defect_npz(tmp_path / "d.npz")
    arrays = dict(np.load(path))
    arrays["m_train"][0, 2, 2] = 1  # row 0 is ok
    np.savez(tmp_path / "bad.npz", **arrays)
    out = tmp_path / "run"
    r = invoke("augment", "--method", "cut-paste", "--data", tmp_path / "bad.npz", "--image-size", "16",
               "--out", out, "--quiet")
    assert r.returncode == 1
    assert "1 train image(s) of class 'ok' have a defect mask" in r.stderr and "--normal-class" in r.stderr
    assert not out.exists()


# -- mask arithmetic ----------------------------------------------------------------------------


def test_dilate_and_grid():
    m = torch.zeros(1, 8, 8, dtype=torch.bool)
    m[0, 4, 4] = True
    assert int(dilate(m, 1).sum()) == 9 and int(dilate(m, 0).sum()) == 1
    grid = to_grid(m, (4, 4))
    assert grid.shape == (1, 4, 4) and grid[0, 2, 2] and int(grid.sum()) == 1


def test_pixel_auroc_and_region_figures():
    truth = torch.zeros(2, 4, 4, dtype=torch.bool)
    truth[0, 1, 1] = True
    perfect = truth.float()
    assert pixel_auroc(perfect[:1], truth[:1]) == 1.0
    assert pixel_auroc(1 - perfect[:1], truth[:1]) == 0.0
    figures = region_figures(perfect, truth, truth)
    assert figures == {"images": 1, "iou": 1.0, "hit": 1.0, "pixel_auroc": 1.0}  # image 1 has no defect: left out


# -- finding regions ----------------------------------------------------------------------------


def stage_ctx(pool, rows, **kw):
    return StageContext(generator=torch.Generator().manual_seed(0), pool=pool, batch_index=torch.as_tensor(rows), **kw)


def test_the_region_stage_uses_masks_and_leaves_normal_images_alone():
    from lagaug.core.regions.stage import find_regions

    data = defect_set(4, 4)
    rows = [0, 5, 6]
    ctx = stage_ctx(data, rows, normal_classes=[0])
    regions = find_regions(data.float_images(rows), data.targets()[rows], ctx)
    assert regions.source == ["normal class", "mask", "mask"]
    assert torch.equal(regions.masks[1], data.masks[5]) and not regions.masks[0].any()
    ctx.region_source = "none"
    assert find_regions(data.float_images(rows), data.targets()[rows], ctx).source == ["normal class", "none", "none"]
    ctx.region_source = "anomaly"
    with pytest.raises(ConfigError, match="no anomaly model was fitted"):
        find_regions(data.float_images(rows), data.targets()[rows], ctx)


def test_the_anomaly_map_finds_drawn_defects_far_better_than_chance():
    train, test = defect_set(48, 0, seed=1), defect_set(0, 24, seed=1, split="test")
    pool = InMemoryPool(defect_set(96, 0, seed=1, split="pool"))
    model = AnomalyModel((1, 16, 16), AnomalyConfig(steps=250))
    report = model.fit(train.float_images(), pool, generator=torch.Generator().manual_seed(0))
    assert report["last_loss"] < 0.7 * report["first_loss"]  # it learnt the surfaces (down to their noise)
    images = test.float_images()
    figures = region_figures(model.score(images), model.region(images), test.masks)
    assert figures["pixel_auroc"] > 0.9 and figures["hit"] >= 0.8, figures
    clean = defect_set(24, 0, seed=1, split="val").float_images()
    found = model.region(clean).flatten(1).float().mean()
    assert float(found) < 0.05  # a clean surface: (almost) nothing passes the threshold


def test_occlusion_saliency_points_at_what_the_classifier_looks_at():
    data = defect_set(0, 6, seed=2)

    def classify(x):  # a "classifier" whose defect evidence is how far pixels stray from the surface's level
        stray = ((x - 0.5).abs() - 0.12).clamp_min(0).flatten(1).sum(1)
        p = torch.sigmoid(4 * stray - 2)
        return torch.stack([1 - p, p], 1)

    sal = occlusion_map(classify, data.float_images(), torch.ones(6, dtype=torch.long), patch=4)
    figures = region_figures(sal, saliency_region(sal), data.masks)
    assert figures["hit"] == 1.0 and figures["pixel_auroc"] > 0.8, figures


# -- keeping the region -------------------------------------------------------------------------


@pytest.fixture
def jitter_method(example_plugin):
    pm = make_plugin_manager()
    cls = pm.get_method("jitter")
    return pm, cls(cls.Config(sigma=0.3), (1, 16, 16), ["ok", "defect"])


def test_a_blend_method_gets_the_region_back_and_the_source_label(jitter_method):
    pm, method = jitter_method
    data = defect_set(4, 4)
    rows = torch.tensor([1, 5])
    ctx = stage_ctx(data, rows, variants=2, normal_classes=[0])
    out = synthesize(pm, method, data.float_images(rows), data.targets()[rows], ctx)
    src = data.float_images(out.primary)
    inside = out.masks.unsqueeze(1)
    assert not out.masks[:2].any() and out.masks[2:].any()  # the ok image: nothing kept
    assert torch.allclose(out.images[inside], src[inside], atol=1e-6)  # the defect's pixels are the source's
    outside = ~dilate(out.masks, 3).unsqueeze(1)
    assert float((out.images - src).abs()[outside].mean()) > 0.05  # the rest was varied
    assert [n["region_source"] for n in out.notes] == ["normal class"] * 2 + ["mask"] * 2
    ctx = stage_ctx(data, rows, variants=2, normal_classes=[0], region_source="none")
    plain = synthesize(pm, method, data.float_images(rows), data.targets()[rows], ctx)
    assert float((plain.images - src).abs()[inside].mean()) > 0.05  # without a region the defect is jittered too


def test_cut_paste_puts_the_defect_onto_a_background_with_both_sources():
    pm = make_plugin_manager()
    cls = pm.get_method("cut-paste")
    method = cls(cls.Config(place="same", flip=False, feather=0.0, margin=0), (1, 16, 16), ["ok", "defect"])
    data = defect_set(8, 4)
    pool = InMemoryPool(defect_set(10, 0, split="pool"))
    rows = torch.tensor([9, 10, 2])
    ctx = stage_ctx(data, rows, variants=2, normal_classes=[0], unlabeled=pool)
    out = synthesize(pm, method, data.float_images(rows), data.targets()[rows], ctx)
    assert out.source[:4, 1].ge(len(data)).all() and out.source[4:, 1].eq(-1).all()
    everything = ctx.source_set()
    assert everything.ids[len(data):] == [pool.id_of(int(i)) for i in range(10)][:0] + everything.ids[len(data):]
    for j in range(4):
        src, bg = everything.float_images([int(out.source[j, 0])])[0], everything.float_images([int(out.source[j, 1])])[0]
        m = data.masks[int(out.source[j, 0])]
        assert torch.equal(out.masks[j], m)
        assert torch.allclose(out.images[j, 0][m], src[0][m], atol=1e-6)  # the defect, where it was
        assert torch.allclose(out.images[j, 0][~m], bg[0][~m], atol=1e-6)  # on the background
        assert out.notes[j]["pasted"] is True and out.notes[j]["background_from"] == "pool"
        assert abs(float(out.weight[j].sum()) - 1) < 1e-6
    assert torch.allclose(out.images[4:], data.float_images([2, 2]))  # an ok image: nothing to paste
    assert out.notes[4]["pasted"] is False
