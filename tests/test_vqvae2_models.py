"""VQ-VAE-2 and PixelSNAIL modules: reference layout, quantizer maths, causality, learning."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F

from lagaug.plugins.vqvae2.pixelsnail import PixelSNAIL
from lagaug.plugins.vqvae2.training import batches, init_codebooks, mean_recon_error, prior_nll, prior_step, vqvae_step
from lagaug.plugins.vqvae2.vqvae import VQVAE2, Quantizer, perplexity
from lagaug.testing import disk_images

# sha256 (first 16 hex) of the sorted "key (shape)" lines of the reference's three default models,
# computed from the reference key lists (docs/compat.md): key names, nesting and shapes must match.
REFERENCE = {
    "vqvae": (64, "916d0bd947c8e5b3", 1388867),
    "top": (226, "b0faeec6397708f9", 84873280),
    "bottom": (171, "f160ef54042a2170", 89762816),
}


def layout(module: torch.nn.Module) -> tuple[int, str, int]:
    state = module.state_dict()
    lines = sorted(f"{k} {tuple(v.shape)}" for k, v in state.items())
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
    return len(lines), digest, sum(p.numel() for p in module.parameters())


def test_reference_state_dict_layouts():
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        models = {
            "vqvae": VQVAE2(),
            "top": PixelSNAIL([32, 32], 512, 256, 5, 4, 4, 256, dropout=0.1, n_out_res_block=0),
            "bottom": PixelSNAIL([64, 64], 512, 256, 5, 4, 4, 256, attention=False, dropout=0.1,
                                 n_cond_res_block=3, cond_res_channel=256),
        }
    for name, model in models.items():
        assert layout(model) == REFERENCE[name], name
    vq = models["vqvae"].state_dict()
    assert tuple(vq["quantize_t.embed"].shape) == (64, 512)  # (dim, n_embed): transposed
    assert tuple(vq["dec.blocks.6.weight"].shape) == (64, 3, 4, 4)
    bottom = models["bottom"].state_dict()
    assert "blocks.0.resblocks.0.condition.conv.weight_v" in bottom
    assert "blocks.0.resblocks.0.condition.conv.bias" not in bottom
    assert tuple(bottom["background"].shape) == (1, 2, 64, 64)


def test_quantizer_ema_update_and_straight_through():
    q = Quantizer(dim=2, n_embed=3, decay=0.5, eps=1e-5)
    q.set_codebook(torch.tensor([[0.0, 10.0, -10.0], [0.0, 0.0, 0.0]]))
    z = torch.tensor([[[1.0, 0.0], [9.0, 1.0], [11.0, -1.0]]], requires_grad=True)  # (1, 3, 2)
    q.train()
    quant, commit, ids = q(z)
    assert ids.tolist() == [[0, 1, 1]]
    # straight-through: the output's gradient flows to z unchanged
    quant.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))
    assert torch.allclose(commit, ((torch.tensor([[0.0, 0], [10, 0], [10, 0]]) - z.detach()) ** 2).mean())
    # EMA: counts (1 -> 0.5*1 + 0.5*count), sums likewise, then Laplace-smoothed means
    assert torch.allclose(q.cluster_size, torch.tensor([1.0, 1.5, 0.5]))
    assert torch.allclose(q.embed_avg[:, 1], torch.tensor([0.5 * 10 + 0.5 * 20, 0.0]))
    n = q.cluster_size.sum()
    smoothed = (q.cluster_size + 1e-5) / (n + 3e-5) * n
    assert torch.allclose(q.embed, q.embed_avg / smoothed)
    # eval mode leaves the codebook alone; lookup is embedding(ids, embed.T)
    q.eval()
    before = q.embed.clone()
    q(z.detach())
    assert torch.equal(q.embed, before)
    assert torch.equal(q.lookup(torch.tensor([2])), before[:, 2].unsqueeze(0))


def test_dead_codes_restart_on_batch_vectors():
    q = Quantizer(dim=2, n_embed=4)
    q.set_codebook(torch.zeros(2, 4))
    q.train()
    q(torch.full((5, 2), 3.0))  # everything goes to code 0
    q.cluster_size[1:] = 0.01
    moved = q.restart_dead_codes(torch.Generator().manual_seed(0), threshold=1.0)
    assert moved == 3 and torch.equal(q.embed[:, 1:], torch.full((2, 3), 3.0))


def test_vqvae_shapes_and_code_roundtrip():
    model = VQVAE2(in_channel=1, channel=16, n_res_block=1, n_res_channel=8, embed_dim=8,
                   n_embed=16, generator=torch.Generator().manual_seed(0)).eval()
    x = torch.rand(2, 1, 16, 24) * 2 - 1
    quant_t, quant_b, _, id_t, id_b = model.encode(x)
    assert id_t.shape == (2, 2, 3) and id_b.shape == (2, 4, 6)
    assert torch.allclose(model.decode_codes(id_t, id_b), model.decode(quant_t, quant_b), atol=1e-6)
    assert model(x)[0].shape == x.shape


def test_same_generator_same_weights():
    make = lambda s: VQVAE2(1, 16, 1, 8, 8, 16, generator=torch.Generator().manual_seed(s))  # noqa: E731
    a, b, c = make(1).state_dict(), make(1).state_dict(), make(2).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["enc_b.blocks.0.weight"], c["enc_b.blocks.0.weight"])


@pytest.mark.parametrize("attention, kernel", [(False, 3), (False, 5), (True, 5)])
def test_pixelsnail_is_causal(attention, kernel):
    """Changing the code at p changes no logit at p or before it (raster order)."""
    model = PixelSNAIL([5, 6], 7, 16, kernel, 2, 1, 8, attention=attention, dropout=0.0,
                       n_cond_res_block=1, cond_res_channel=8,
                       generator=torch.Generator().manual_seed(0)).eval()
    g = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 7, (1, 5, 6), generator=g)
    top = torch.randint(0, 7, (1, 3, 3), generator=g)
    base = model(codes, top)
    for p in (0, 8, 14, 29):
        i, j = divmod(p, 6)
        changed = codes.clone()
        changed[0, i, j] = (codes[0, i, j] + 1) % 7
        delta = (model(changed, top) - base).abs().amax(1).flatten()
        assert delta[: p + 1].max() == 0
        if p < 29:
            assert delta[p + 1 :].max() > 0  # and something later does see it


def test_causal_mask_applies_to_nonzero_masked_weights():
    model = PixelSNAIL([4, 4], 5, 8, 3, 1, 1, 8, attention=False, dropout=0.0,
                       generator=torch.Generator().manual_seed(0)).eval()
    conv = model.blocks[0].resblocks[0].conv1.conv.conv
    codes = torch.randint(0, 5, (1, 4, 4), generator=torch.Generator().manual_seed(1))
    before = model(codes)
    with torch.no_grad():
        conv.weight_v[:, :, -1, 1:] = 100.0  # what real checkpoints carry in masked taps
    assert torch.equal(model(codes), before)


def shapes_data(n: int, size: int, seed: int) -> torch.Tensor:
    """Bright disks of random place and size on a dark textured background, in [0, 1]."""
    return disk_images(n, seed, size)[0]


def test_vqvae_and_prior_learn_on_small_data():
    g = torch.Generator().manual_seed(0)
    images = shapes_data(96, 16, seed=1) * 2 - 1
    model = VQVAE2(1, 32, 1, 16, 8, 32, generator=g)
    init_codebooks(model, images, g)
    untrained = mean_recon_error(model, (images + 1) / 2, "cpu")
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(20):
        for idx in batches(96, 16, g):
            vqvae_step(model, opt, images[idx], 0.25, "l1", g, 1.0)
    trained = mean_recon_error(model, (images + 1) / 2, "cpu")
    assert trained < 0.4 * untrained, (untrained, trained)
    *_, top, bottom = model.eval().encode(images)
    assert perplexity(bottom, 32) > 6 and perplexity(top, 32) > 3  # usage not collapsed

    prior = PixelSNAIL([4, 4], 32, 16, 3, 1, 1, 16, attention=False, dropout=0.0,
                       n_cond_res_block=1, cond_res_channel=16, generator=g)
    opt = torch.optim.Adam(prior.parameters(), lr=3e-3)
    first = prior_nll(prior, bottom, top, "cpu")
    for _ in range(12):
        for idx in batches(96, 16, g):
            prior_step(prior, opt, bottom[idx], top[idx])
    assert prior_nll(prior, bottom, top, "cpu") < 0.7 * first


def test_training_elu_matches_torch_values_and_gradient_and_inference_is_torch_exactly():
    from lagaug.plugins.vqvae2.layers import elu

    x = torch.linspace(-8, 8, 4001).reshape(1, 1, 1, -1).repeat(2, 3, 1, 1)
    a = x.clone().requires_grad_(True)
    b = x.clone().requires_grad_(True)
    mine, ref = elu(a), F.elu(b)
    assert (mine - ref).abs().max() < 1e-6
    weights = torch.randn_like(x)
    (mine * weights).sum().backward()
    (ref * weights).sum().backward()
    assert (a.grad - b.grad).abs().max() < 1e-6
    with torch.no_grad():  # inference: torch's own kernel, bit for bit (the importers reproduce the reference)
        assert torch.equal(elu(a), F.elu(b))
    assert torch.equal(elu(x), F.elu(x))  # no gradient wanted: torch's own kernel too
