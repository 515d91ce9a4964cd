"""AUC, macro-F1, accuracy and the 95% interval, against hand-computed and scipy values."""

import math

import numpy as np
import pytest

from lagaug.core.metrics import binary_auc, classification_metrics, macro_f1, roc_auc, summarise


def test_binary_auc_known_values():
    assert binary_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert binary_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert binary_auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    # positives .5 .9 .1, negatives .3 .5: pairs won 3 of 6, one tie counts half -> 3.5/6
    assert binary_auc([0.3, 0.5, 0.9, 0.5, 0.1], [0, 1, 1, 0, 1]) == pytest.approx(3.5 / 6)
    assert math.isnan(binary_auc([0.1, 0.2], [1, 1]))


def test_auc_matches_mann_whitney():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    s = rng.integers(0, 20, 200).astype(float)  # many ties
    y = rng.random(200) < 0.3
    u = scipy_stats.mannwhitneyu(s[y], s[~y]).statistic
    assert binary_auc(s, y) == pytest.approx(u / (y.sum() * (~y).sum()))


def test_multiclass_auc_is_macro_one_vs_rest():
    probs = np.array([[.8, .1, .1], [.1, .8, .1], [.1, .1, .8], [.6, .3, .1]])
    labels = np.array([0, 1, 2, 1])
    # every class's positives outscore its negatives (class 0: .8 vs .1 .1 .6; class 1: .8 .3 vs
    # .1 .1; class 2: .8 vs .1 .1 .1): AUC 1
    assert roc_auc(probs, labels) == pytest.approx(1.0)
    probs[3] = [.1, .05, .85]  # image 3 (class 1) now looks like class 2
    # class 0: 1; class 1: positives .8 .05 vs .1 .1 -> (1 + 1 + 0 + 0) / 4 = .5;
    # class 2: positive .8 vs .1 .1 .85 -> 2/3
    assert roc_auc(probs, labels) == pytest.approx((1 + 0.5 + 2 / 3) / 3)


def test_macro_f1_and_accuracy():
    # class 0: tp=1 fp=1 fn=1 -> f1 .5 ; class 1: tp=2 fp=1 fn=1 -> f1 2/3
    pred = np.array([0, 0, 1, 1, 1])
    labels = np.array([0, 1, 1, 1, 0])
    assert macro_f1(pred, labels, 2) == pytest.approx((0.5 + 2 / 3) / 2)
    probs = np.eye(2)[pred]
    m = classification_metrics(probs, labels)
    assert m["accuracy"] == pytest.approx(0.6) and m["f1"] == pytest.approx((0.5 + 2 / 3) / 2)


def test_summarise_gives_mean_and_interval_per_metric_and_none_for_one_member():
    members = [{"auc": 0.7, "f1": 0.5}, {"auc": 0.8, "f1": 0.7}, {"auc": 0.9, "f1": 0.6}]
    out = summarise(members)
    assert out["auc_mean"] == pytest.approx(0.8) and out["f1_mean"] == pytest.approx(0.6)
    # half-width: t(0.975, 2) * sd / sqrt(3) with sd = 0.1 and t = 4.3027 (scipy.stats.t.ppf)
    assert out["auc_ci"] == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-6)
    single = summarise([{"auc": 0.7}])
    assert single["auc_mean"] == 0.7 and math.isnan(single["auc_ci"])
