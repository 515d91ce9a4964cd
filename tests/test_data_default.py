"""The embedded default data set: shape, balance, determinism, a lazy pool, and real hard cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lagaug.core.data import DataSplits, load_data, make_default_splits, synthetic
from lagaug.core.data.synthetic import HARD_SEVERITY, SyntheticPool, render_image

SMALL = dict(n_unlabeled=30, train=(10, 4), val=(3, 2), test=(5, 3))


@pytest.fixture(scope="module")
def default() -> DataSplits:
    return make_default_splits()


def _auc(score: np.ndarray, y: np.ndarray) -> float:
    pos, neg = score[y == 1], score[y == 0]
    return float((pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean())


def _stats(images: torch.Tensor) -> np.ndarray:
    """Simple per-image statistics a threshold or a linear model could use."""
    x = images[:, 0].double().numpy() / 255
    grad = np.abs(np.diff(x, axis=1)).mean((1, 2)) + np.abs(np.diff(x, axis=2)).mean((1, 2))
    q = np.percentile(x.reshape(len(x), -1), [1, 99], axis=1)
    return np.stack([x.mean((1, 2)), x.std((1, 2)), x.min((1, 2)), x.max((1, 2)), grad, q[0], q[1]], 1)


def test_sizes_classes_and_ids(default):
    assert default.class_names == ["ok", "defect"]
    assert default.train.class_counts() == [200, 40]
    assert default.val.class_counts() == [60, 15]
    assert default.test.class_counts() == [300, 60]
    for part in (default.train, default.val, default.test):
        assert part.images.dtype == torch.uint8 and part.images.shape[1:] == (1, 32, 32)
        assert part.labels.dtype == torch.int64
        assert len(set(part.ids)) == len(part)
    assert default.train.ids[12] == "default/train/ok/00012"
    assert default.test.ids[-1] == "default/test/defect/00059"
    assert len(default.unlabeled) == 2000 and default.unlabeled.channels == 1
    assert "embedded default" in default.description


def test_sizes_are_parameters():
    splits = make_default_splits(16, 3, **SMALL)
    assert splits.train.class_counts() == [10, 4]
    assert splits.val.class_counts() == [3, 2]
    assert splits.test.class_counts() == [5, 3]
    assert len(splits.unlabeled) == 30
    assert make_default_splits(16, 0, n_unlabeled=0, train=(2, 1), val=(1, 1), test=(1, 1)).unlabeled is None


def test_same_seed_same_bits_other_seed_other_images():
    a, b, c = (make_default_splits(32, s, **SMALL) for s in (5, 5, 6))
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(a, name).images, getattr(b, name).images)
        assert not torch.equal(getattr(a, name).images, getattr(c, name).images)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(next(a.unlabeled.iter_batches(8, g1)), next(b.unlabeled.iter_batches(8, g2)))


@pytest.mark.parametrize("size", [16, 24, 64, 128])
def test_any_size_from_16_to_128(size):
    splits = make_default_splits(size, 0, n_unlabeled=4, train=(3, 3), val=(1, 1), test=(1, 1))
    assert splits.train.image_size == (size, size)
    assert next(splits.unlabeled.iter_batches(4, torch.Generator())).shape == (4, 1, size, size)
    # the same scene at every size: the defect notes do not depend on the resolution
    assert splits.extra["notes"]["train"] == make_default_splits(32, 0, n_unlabeled=0, train=(3, 3), val=(1, 1), test=(1, 1)).extra["notes"]["train"]


def test_load_data_default_is_the_embedded_set(default):
    splits = load_data()
    assert torch.equal(splits.train.images, default.train.images)
    assert isinstance(splits.unlabeled, SyntheticPool)
    assert torch.equal(load_data("default", seed=0).test.images, default.test.images)


def test_pool_streams_every_image_once_and_renders_lazily(monkeypatch):
    rendered: list[int] = []
    real = synthetic.render_image

    def counting(size, seed, split, label, index):
        assert (split, label) == ("unlabeled", 0)  # the pool holds ok surfaces only
        rendered.append(index)
        return real(size, seed, split, label, index)

    monkeypatch.setattr(synthetic, "render_image", counting)
    pool = SyntheticPool(23, 16, seed=0)
    batches = pool.iter_batches(5, torch.Generator().manual_seed(0))
    first = next(batches)
    assert first.shape == (5, 1, 16, 16) and len(rendered) == 5  # nothing rendered ahead
    sizes = [len(first)] + [len(b) for b in batches]
    assert sizes == [5, 5, 5, 5, 3]
    assert sorted(rendered) == list(range(23))
    # the pool keeps no images: its whole state is four numbers
    assert vars(pool) == {"size": 23, "image_side": 16, "seed": 0, "n_channels": 1}


def test_pool_images_are_their_index_and_differ_from_train():
    pool = SyntheticPool(10, 32, seed=0)
    img, notes = render_image(32, 0, "unlabeled", 0, 7)
    assert torch.equal(pool.render([7])[0, 0], torch.from_numpy(img).float() / 255)
    assert notes["defect"] is None
    train_first, _ = render_image(32, 0, "train", 0, 7)
    assert not np.array_equal(img, train_first)
    rgb = SyntheticPool(4, 16, seed=0, n_channels=3).render([0, 1])
    assert rgb.shape == (2, 3, 16, 16) and torch.equal(rgb[:, 0], rgb[:, 2])


def test_hard_cases_exist(default):
    notes = [n for split in ("train", "val", "test") for n in default.extra["notes"][split]]
    defects = [n for n in notes if n["defect"] is not None]
    oks = [n for n in notes if n["defect"] is None]
    assert {n["defect"] for n in defects} == {"scratch", "crack", "chip"}
    hard = sum(n["severity"] < HARD_SEVERITY for n in defects) / len(defects)
    assert 0.1 < hard < 0.35  # a real share of faint or tiny defects, but most are visible
    marked = sum(bool(n["marks"]) for n in oks) / len(oks)
    assert marked > 0.2  # ok surfaces with streaks, specks or glints


def test_pixel_statistics_differ_but_do_not_separate(default):
    train_x, test_x = _stats(default.train.images), _stats(default.test.images)
    y_train, y_test = default.train.labels.numpy(), default.test.labels.numpy()
    # every single statistic overlaps heavily between classes ...
    single = [max(a, 1 - a) for a in (_auc(test_x[:, j], y_test) for j in range(test_x.shape[1]))]
    assert max(single) < 0.85
    # ... yet the classes do differ: defects add dark or bright marks, so the extremes move
    assert max(single) > 0.6
    # and a logistic regression on all of them together is far from perfect
    mu, sd = train_x.mean(0), train_x.std(0)
    a = np.c_[(train_x - mu) / sd, np.ones(len(train_x))]
    b = np.c_[(test_x - mu) / sd, np.ones(len(test_x))]
    w = np.zeros(a.shape[1])
    for _ in range(1500):
        w -= 0.2 * a.T @ (1 / (1 + np.exp(-a @ w)) - y_train) / len(a)
    assert 0.6 < _auc(b @ w, y_test) < 0.95
