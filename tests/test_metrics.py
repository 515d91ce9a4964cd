"""AUC, macro-F1, accuracy and the 95% interval, against hand-computed and scipy values."""

import math

import numpy as np
import pytest

from lagaug.core.metrics import binary_auc, classification_metrics, macro_f1, mean_ci, roc_auc


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
    expected = np.mean([binary_auc(probs[:, c], labels == c) for c in range(3)])
    assert roc_auc(probs, labels) == pytest.approx(expected)


def test_macro_f1_and_accuracy():
    # class 0: tp=1 fp=1 fn=1 -> f1 .5 ; class 1: tp=2 fp=1 fn=1 -> f1 2/3
    pred = np.array([0, 0, 1, 1, 1])
    labels = np.array([0, 1, 1, 1, 0])
    assert macro_f1(pred, labels, 2) == pytest.approx((0.5 + 2 / 3) / 2)
    probs = np.eye(2)[pred]
    m = classification_metrics(probs, labels)
    assert m["accuracy"] == pytest.approx(0.6) and m["f1"] == pytest.approx((0.5 + 2 / 3) / 2)


def test_mean_ci_uses_student_t():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert mean_ci([0.7]) == (0.7, 0.0)
