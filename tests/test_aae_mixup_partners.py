"""aae-mixup's partner rules and mixing weight, on hand-made pools (no model)."""

from __future__ import annotations

import pytest
import torch

from lagaug.core.errors import ConfigError, DataError
from lagaug.plugins.aae_mixup.partners import PartnerPool, allowed_classes, check_lambda, choose_partners, draw_lambda

NAMES = ["a", "b", "c"]


def pool(labels, real=None, codes=None) -> PartnerPool:
    labels = torch.tensor(labels)
    z = codes if codes is not None else torch.arange(len(labels)).float()[:, None]
    real = torch.ones(len(labels), dtype=torch.bool) if real is None else torch.tensor(real)
    return PartnerPool(labels=labels, real=real, codes=lambda rows: z[rows], class_names=NAMES,
                       ids=[f"img{i}" for i in range(len(labels))])


def choose(rule, p, rows, probs=None, allowed=None, k=1, seed=0, codes=None):
    rows = torch.tensor(rows)
    z_a = p.codes(rows) if codes is None else codes
    return choose_partners(rule, p, rows, p.labels[rows], z_a, probs,
                           allowed if allowed is not None else torch.ones(3, dtype=torch.bool), k,
                           torch.Generator().manual_seed(seed))


def test_random_partners_are_real_images_of_another_class():
    p = pool([0, 0, 1, 1, 2, 2], real=[True, True, True, False, True, False])
    rows = [0] * 200 + [2] * 200
    partners, fallback = choose("random", p, rows)
    assert not fallback
    assert set(partners[:200].tolist()) == {2, 4}  # class 1 and 2, real only (3 and 5 are synthetic)
    assert set(partners[200:].tolist()) == {0, 1, 4}


def test_nearest_is_the_closest_other_class_code_and_k_widens_the_draw():
    codes = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.3, 0.0], [0.9, 0.0], [-0.5, 0.0]])
    p = pool([0, 0, 1, 1, 2], codes=codes)
    partners, _ = choose("nearest", p, [0, 1, 2])
    assert partners.tolist() == [2, 2, 1]  # class 0 -> the class-1 code at 0.3; class 1 -> row 1 (0.1)
    wide, _ = choose("nearest", p, [0] * 100, k=2)
    assert set(wide.tolist()) == {2, 4}  # the two closest other-class codes: 0.3 and -0.5


def test_confuser_takes_the_class_the_ensemble_confuses_and_falls_back_without_probabilities():
    p = pool([0, 0, 1, 1, 2, 2])
    probs = torch.tensor([[0.5, 0.1, 0.4]] * 3 + [[0.2, 0.5, 0.3]] * 3)  # row 0 is confused with c
    partners, fallback = choose("confuser", p, [0] * 50 + [3] * 50, probs=probs)
    assert not fallback and set(partners[:50].tolist()) == {4, 5} and set(partners[50:].tolist()) == {4, 5}
    only_b = torch.tensor([True, True, False])  # partner_classes=a,b: the most confused *allowed* class
    partners, _ = choose("confuser", p, [0] * 20, probs=probs, allowed=only_b)
    assert set(partners.tolist()) == {2, 3}
    partners, fallback = choose("confuser", p, [0] * 100, probs=None)
    assert fallback and set(partners.tolist()) == {2, 3, 4, 5}


def test_same_takes_the_own_class_but_never_the_image_itself():
    p = pool([0, 0, 0, 1])
    partners, _ = choose("same", p, [0] * 100)
    assert set(partners.tolist()) == {1, 2}


@pytest.mark.parametrize("rule,labels,real,allowed,message", [
    ("random", [0, 0, 0], None, None, r"image 'img0' \(class 'a'\) has no partner: the pool holds no real image of "
                                      r"another class among the partner classes \(a\); give images of at least two"),
    ("random", [0, 1], [True, False], None, r"no real image of another class"),
    ("random", [0, 1, 2], None, [True, False, False], r"among the partner classes \(a\)"),
    ("same", [0, 1], None, None, r"no real image of its own class \(other than itself\)"),
])
def test_no_partner_is_one_line(rule, labels, real, allowed, message):
    p = pool(labels, real=real)
    allow = None if allowed is None else torch.tensor(allowed)
    with pytest.raises(DataError, match=message) as err:
        choose(rule, p, [0], allowed=allow)
    assert "\n" not in str(err.value)


def test_partner_classes_must_be_classes():
    assert allowed_classes([], NAMES).all()
    assert allowed_classes(["c"], NAMES).tolist() == [False, False, True]
    with pytest.raises(ConfigError, match=r"partner_classes 'dog' is not a class; classes are: a, b, c"):
        allowed_classes(["dog"], NAMES)


def test_lambda_beta_is_folded_and_range_is_uniform_in_it():
    g = torch.Generator().manual_seed(0)
    lam = draw_lambda(20000, "beta", 1.0, (0.6, 0.9), g)
    assert float(lam.min()) >= 0.5 and float(lam.max()) <= 1.0
    assert abs(float(lam.mean()) - 0.75) < 0.01  # folded Beta(1, 1) = uniform on [0.5, 1]
    peaked = draw_lambda(20000, "beta", 50.0, (0.6, 0.9), g)
    assert abs(float(peaked.mean()) - 0.5) < 0.05  # large alpha: lambda near 0.5, an even mix
    fixed = draw_lambda(100, "range", 1.0, (0.7, 0.7), g)
    assert torch.allclose(fixed, torch.full((100,), 0.7))
    ranged = draw_lambda(20000, "range", 1.0, (0.6, 0.9), g)
    assert float(ranged.min()) >= 0.6 and float(ranged.max()) <= 0.9 and abs(float(ranged.mean()) - 0.75) < 0.01


def test_lambda_draws_use_only_the_generator_given():
    torch.manual_seed(1)
    state = torch.get_rng_state()
    a = draw_lambda(10, "beta", 0.4, (0.6, 0.9), torch.Generator().manual_seed(3))
    b = draw_lambda(10, "beta", 0.4, (0.6, 0.9), torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("mode,alpha,lam_range,message", [
    ("beta", 0.0, (0.6, 0.9), r"alpha must be a number > 0 \(Beta\(alpha, alpha\)\), got 0.0"),
    ("beta", 1.0, (0.3, 0.9), r"lam_range must satisfy 0.5 <= low <= high <= 1 .*, got 0.3,0.9"),
    ("range", 1.0, (0.9, 0.6), r"got 0.9,0.6"),
    ("range", 1.0, (0.6, 1.2), r"got 0.6,1.2"),
    ("range", 1.0, (0.6,), r"lam_range must be two numbers low,high"),
    ("linear", 1.0, (0.6, 0.9), r"lam must be one of beta, range, got 'linear'"),
])
def test_lambda_options_out_of_range_are_refused_with_the_valid_range(mode, alpha, lam_range, message):
    with pytest.raises(ConfigError, match=message):
        check_lambda(mode, alpha, lam_range)
