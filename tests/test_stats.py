"""Statistics: t quantiles, intervals, exact paired tests and Holm, against scipy and by hand."""

import math

import numpy as np
import pytest

from lagaug.core.stats import (
    EXACT_SIGN_FLIP,
    MONTE_CARLO_DRAWS,
    holm,
    mean_ci,
    paired_test,
    sign_flip_p,
    smallest_p,
    t_quantile,
    wilcoxon_p,
)

scipy_stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 7, 12, 29, 30, 31, 45, 100, 1000])
def test_t_quantile_matches_scipy_for_every_degree_of_freedom(dof):
    for p in (0.975, 0.9, 0.995):
        assert t_quantile(p, dof) == pytest.approx(scipy_stats.t.ppf(p, dof), rel=1e-9)
    assert math.isnan(t_quantile(0.975, 0))


def test_mean_ci_is_student_t_and_undefined_for_one_value():
    values = [0.61, 0.72, 0.68, 0.80, 0.59, 0.66, 0.74, 0.70, 0.63, 0.77, 0.69, 0.71, 0.65, 0.73, 0.67,
              0.62, 0.79, 0.60, 0.75, 0.64, 0.78, 0.58, 0.76, 0.70, 0.69, 0.66, 0.72, 0.68, 0.71, 0.74,
              0.67, 0.70, 0.73]  # 33 values: beyond any short table of quantiles
    mean, half = mean_ci(values)
    sem = scipy_stats.sem(values)
    assert mean == pytest.approx(np.mean(values))
    assert half == pytest.approx(scipy_stats.t.ppf(0.975, len(values) - 1) * sem, rel=1e-9)
    m1, h1 = mean_ci([0.7])
    assert m1 == 0.7 and math.isnan(h1)
    assert all(math.isnan(v) for v in mean_ci([]))


def test_exact_wilcoxon_matches_scipy_without_ties():
    rng = np.random.default_rng(3)
    for n in (4, 6, 9, 13):
        d = rng.normal(0.4, 1.0, n)
        assert wilcoxon_p(d) == pytest.approx(scipy_stats.wilcoxon(d, method="exact").pvalue, rel=1e-12)


def test_wilcoxon_handles_zeros_and_ties_by_counting():
    # zeros dropped -> d = [1, 1, 2, -3]; |d| ranks (ties averaged) 1.5, 1.5, 3, 4; W+ = 6.
    # Of the 16 sign patterns, 6 reach W+ >= 6 (6, 7, 7, 8.5, 8.5, 10): p = 2 * 6/16.
    assert wilcoxon_p([1, 1, 0, 2, -3, 0]) == pytest.approx(0.75)
    assert wilcoxon_p([0, 0]) == 1.0
    assert wilcoxon_p([1, 2, 3, 4, 5]) == pytest.approx(2 / 32)  # all one sign: the smallest p
    assert wilcoxon_p([-1, -2, -3]) == pytest.approx(2 / 8)


def test_sign_flip_is_exact_for_small_samples_and_corrected_beyond():
    assert sign_flip_p([1, 2, 3, 4, 5]) == pytest.approx(2 / 32)
    # |sum| = 2 for d = [1, -1, 2]; patterns reaching |sum| >= 2: 6 of 8
    assert sign_flip_p([1, -1, 2]) == pytest.approx(6 / 8)
    assert sign_flip_p([0, 0, 0]) == 1.0
    big = [1.0] * (EXACT_SIGN_FLIP + 5)  # Monte Carlo: never 0, the +1 correction
    assert sign_flip_p(big) == pytest.approx(1 / (1 + MONTE_CARLO_DRAWS), rel=0.5)
    assert sign_flip_p(big) > 0


def test_paired_test_reports_the_difference_its_interval_and_the_smallest_p():
    a, b = [0.80, 0.82, 0.79, 0.85], [0.70, 0.75, 0.72, 0.74]
    out = paired_test(a, b)
    assert out["test"] == "exact Wilcoxon signed-rank" and out["n"] == 4
    assert out["delta"] == pytest.approx(np.mean(np.subtract(a, b)))
    assert out["p"] == pytest.approx(2 / 16) and out["min_p"] == pytest.approx(2 / 16)
    assert smallest_p(3) == pytest.approx(0.25) and smallest_p(0) == 1.0
    with_nan = paired_test([0.8, float("nan"), 0.9], [0.7, 0.6, 0.8], "permutation")
    assert with_nan["n"] == 2 and with_nan["test"] == "sign-flip permutation"


def test_holm_adjusts_step_down_and_keeps_order():
    adjusted = holm([0.01, 0.04, 0.03, float("nan"), 0.2])
    # sorted 0.01, 0.03, 0.04, 0.2 (m = 4): 0.04, 0.09, 0.09 (monotone), 0.2
    assert adjusted[:3] == pytest.approx([0.04, 0.09, 0.09]) and adjusted[4] == pytest.approx(0.2)
    assert math.isnan(adjusted[3])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
