"""The cached PixelSNAIL sampler: at every sampled position its logits equal those of one
teacher-forced forward pass over the final codes; region sampling leaves other codes alone."""

from __future__ import annotations

import pytest
import torch

from lagaug.plugins.vqvae2.pixelsnail import PixelSNAIL
from lagaug.plugins.vqvae2.sampler import box_mask, naive_sample, sample

N_CLASS = 13


def random_prior(attention: bool, conditioned: bool, kernel: int = 5, shape=(6, 8), seed: int = 0,
                 n_out_res_block: int = 1) -> PixelSNAIL:
    """A small prior with random, not-too-tame weights (weight norms and biases perturbed)."""
    g = torch.Generator().manual_seed(seed)
    model = PixelSNAIL(shape, N_CLASS, 16, kernel, 2, 2, 12, attention=attention, dropout=0.1,
                       n_cond_res_block=2 if conditioned else 0,
                       cond_res_channel=10 if conditioned else 0, n_out_res_block=n_out_res_block,
                       generator=g)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
    return model.eval()


def random_codes(model: PixelSNAIL, batch: int = 3, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    h, w = model.shape
    codes = torch.randint(0, N_CLASS, (batch, h, w), generator=g)
    top = torch.randint(0, N_CLASS, (batch, h // 2, w // 2), generator=g) if model.conditioned else None
    return codes, top


def per_row_mask(batch: int, shape) -> torch.Tensor:
    """A different region for every batch row (rows 1 and 2 overlap, row 0 is a single cell)."""
    mask = torch.zeros(batch, *shape, dtype=torch.bool)
    mask[0, 3, 5] = True
    mask[1, 1:3, 2:7] = True
    mask[2, 2:5, 0:3] = True
    return mask


CASES = [
    pytest.param(False, True, 5, id="bottom-prior-k5"),
    pytest.param(False, True, 3, id="bottom-prior-k3"),
    pytest.param(True, False, 5, id="top-prior-attention"),
    pytest.param(True, True, 3, id="attention+condition"),
    pytest.param(False, False, 7, id="plain-k7"),
]


@pytest.mark.parametrize("attention, conditioned, kernel", CASES)
@pytest.mark.parametrize("region", ["full", "box", "per-row"])
def test_cached_logits_equal_teacher_forced(attention, conditioned, kernel, region):
    model = random_prior(attention, conditioned, kernel)
    codes, top = random_codes(model)
    mask = {"full": None, "box": box_mask(model.shape, (2, 1, 5, 6)),
            "per-row": per_row_mask(codes.shape[0], model.shape)}[region]
    new, logits = sample(model, codes, mask=mask, condition=top,
                         generator=torch.Generator().manual_seed(7), return_logits=True)
    sampled = ~torch.isnan(logits[:, 0])
    expected = torch.ones_like(codes, dtype=torch.bool) if mask is None else mask.expand_as(codes)
    assert torch.equal(sampled, expected)
    with torch.no_grad():
        forced = model(new, condition=top)
    diff = (logits - forced).abs()[sampled.unsqueeze(1).expand_as(logits)]
    assert diff.max().item() <= 1e-4
    assert torch.equal(new[~sampled], codes[~sampled])  # outside the region: unchanged
    if mask is not None:
        assert not torch.equal(new, codes)


@pytest.mark.parametrize("attention, conditioned", [(False, True), (True, False)])
def test_cached_and_naive_samplers_agree(attention, conditioned):
    model = random_prior(attention, conditioned)
    codes, top = random_codes(model)
    mask = box_mask(model.shape, (1, 2, 4, 8))
    cached, c_logits = sample(model, codes, mask=mask, condition=top, temperature=0.8,
                              generator=torch.Generator().manual_seed(3), return_logits=True)
    naive, n_logits = naive_sample(model, codes, mask=mask, condition=top, temperature=0.8,
                                   generator=torch.Generator().manual_seed(3), return_logits=True)
    assert torch.equal(cached, naive)
    both = ~torch.isnan(c_logits)
    assert torch.allclose(c_logits[both], n_logits[both], atol=1e-4)


def test_same_seed_same_codes_other_seed_differs():
    model = random_prior(False, True)
    codes, top = random_codes(model)
    draw = lambda seed: sample(model, codes, condition=top, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    assert torch.equal(draw(1), draw(1))
    assert not torch.equal(draw(1), draw(2))


def test_samples_follow_the_softmax():
    """At the first position nothing precedes, so every row has the same logits: the share of
    each code over many rows must match softmax(logits / T)."""
    model = random_prior(False, False, shape=(2, 2), n_out_res_block=0)
    rows = 3000
    codes = torch.zeros(rows, 2, 2, dtype=torch.long)
    mask = box_mask((2, 2), (0, 0, 1, 1))
    new, logits = sample(model, codes, mask=mask, temperature=0.7,
                         generator=torch.Generator().manual_seed(0), return_logits=True)
    p = torch.softmax(logits[0, :, 0, 0] / 0.7, 0)
    share = torch.bincount(new[:, 0, 0], minlength=N_CLASS).float() / rows
    assert (share - p).abs().max() < 0.04


def test_low_temperature_picks_the_most_likely_code():
    model = random_prior(True, False)
    codes, _ = random_codes(model)
    new, logits = sample(model, codes, temperature=1e-4, generator=torch.Generator().manual_seed(0),
                         return_logits=True)
    assert torch.equal(new, logits.argmax(1))


def test_bad_arguments():
    model = random_prior(False, True)
    codes, top = random_codes(model)
    with pytest.raises(ValueError, match="temperature"):
        sample(model, codes, condition=top, temperature=0)
    with pytest.raises(ValueError, match="condition"):
        sample(model, codes)
    with pytest.raises(ValueError, match="code map"):
        sample(model, codes[:, :4], condition=top)
    with pytest.raises(ValueError, match="mask"):
        sample(model, codes, mask=torch.ones(3, 3, dtype=torch.bool), condition=top)
