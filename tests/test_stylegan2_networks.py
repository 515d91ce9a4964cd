"""StyleGAN2 building blocks: FIR up/down-sampling, equalised learning rate, modulation and
demodulation, the minibatch standard deviation, network shapes, the reference key layout, and
seeded initialisation without global random state."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch
from torch.nn import functional as F

from lagaug.plugins.stylegan2.networks import (
    Discriminator,
    EqualConv2d,
    EqualLinear,
    Generator,
    ModulatedConv2d,
    ToRGB,
    Upsample,
    init_weights_,
    minibatch_stddev,
    reference_channels,
    scaled_channels,
)
from lagaug.plugins.stylegan2.ops import make_kernel, upfirdn2d


def direct_upfirdn(x, k, up, down, pad):
    """Zero insertion, padding and a true convolution written as explicit sums (no conv op)."""
    n, c, h, w = x.shape
    big = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
    for i in range(h):
        for j in range(w):
            big[:, :, i * up, j * up] = x[:, :, i, j]
    p0, p1 = pad
    padded = torch.zeros(n, c, h * up + p0 + p1, w * up + p0 + p1, dtype=x.dtype)
    padded[:, :, p0 : p0 + h * up, p0 : p0 + w * up] = big
    kh, kw = k.shape
    oh, ow = padded.shape[2] - kh + 1, padded.shape[3] - kw + 1
    out = torch.zeros(n, c, oh, ow, dtype=x.dtype)
    for y in range(oh):
        for xx in range(ow):
            for a in range(kh):
                for b in range(kw):  # convolution: the kernel is used flipped
                    out[:, :, y, xx] += padded[:, :, y + a, xx + b] * k[kh - 1 - a, kw - 1 - b]
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize("up,down,pad", [(2, 1, (2, 1)), (1, 2, (1, 1)), (1, 1, (1, 2))])
def test_upfirdn2d_is_upsample_pad_convolve_downsample(up, down, pad):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 5, 5, generator=g, dtype=torch.float64)
    k = torch.randn(4, 4, generator=g, dtype=torch.float64)  # asymmetric: the flip matters
    torch.testing.assert_close(upfirdn2d(x, k, up=up, down=down, pad=pad), direct_upfirdn(x, k, up, down, pad))


def test_blur_upsampling_keeps_a_constant_and_spreads_an_impulse_as_the_1331_kernel():
    up = Upsample()
    flat = up(torch.full((1, 1, 6, 6), 0.7))
    assert flat.shape == (1, 1, 12, 12)
    torch.testing.assert_close(flat[..., 2:-2, 2:-2], torch.full((1, 1, 8, 8), 0.7))
    impulse = torch.zeros(1, 1, 6, 6)
    impulse[0, 0, 2, 2] = 1.0
    out = up(impulse)[0, 0]
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    expected = torch.zeros(12, 12)
    expected[3:7, 3:7] = 4 * torch.outer(taps, taps) / 64
    torch.testing.assert_close(out, expected)
    assert float(out.sum()) == pytest.approx(4.0)  # 4 output pixels per input pixel, mass kept
    torch.testing.assert_close(make_kernel(), torch.outer(taps, taps) / 64)


def test_equalised_learning_rate_scales_weights_at_run_time():
    g = torch.Generator().manual_seed(1)
    lin = EqualLinear(400, 300, lr_mul=0.01, bias_init=0.5)
    init_weights_(lin, g)
    assert float(lin.weight.detach().std()) == pytest.approx(100.0, rel=0.05)  # stored raw: N(0, 1/lr_mul^2)
    assert torch.all(lin.bias == 0.5)
    x = torch.randn(256, 400, generator=g)
    out = lin(x)
    spread = float((out.detach() - 0.005).std())
    torch.testing.assert_close(out, F.linear(x, lin.weight * 0.01 / 20, lin.bias * 0.01))
    assert spread == pytest.approx(1.0, rel=0.1)  # unit scale out for unit in
    out.sum().backward()
    expected_grad = (torch.ones(256, 300).t() @ x) * (0.01 / 20)  # chain rule through the scale
    torch.testing.assert_close(lin.weight.grad, expected_grad, rtol=1e-4, atol=1e-3)
    conv = init_weights_(EqualConv2d(64, 32, 3, padding=1), g)
    y = conv(torch.randn(8, 64, 16, 16, generator=g)).detach()
    assert float(y[..., 1:-1, 1:-1].std()) == pytest.approx(1.0, rel=0.1)


def per_sample_modulated_conv(conv: ModulatedConv2d, x, style):
    """The paper's definition: one modulated (and demodulated) weight per sample."""
    outs = []
    styles = conv.modulation(style)
    for n in range(x.shape[0]):
        w = conv.weight[0] * conv.scale * styles[n].view(1, -1, 1, 1)
        if conv.demodulate:
            w = w / torch.sqrt(w.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        if conv.upsample:
            y = F.conv_transpose2d(x[n : n + 1], w.transpose(0, 1), stride=2)
            y = upfirdn2d(y, make_kernel() * 4, pad=(1, 1))
        else:
            y = F.conv2d(x[n : n + 1], w, padding=conv.kernel_size // 2)
        outs.append(y)
    return torch.cat(outs)


@pytest.mark.parametrize("upsample,demodulate", [(False, True), (True, True), (False, False)])
def test_modulated_conv_equals_per_sample_weights(upsample, demodulate):
    g = torch.Generator().manual_seed(2)
    conv = init_weights_(ModulatedConv2d(6, 5, 3, 7, demodulate=demodulate, upsample=upsample), g)
    conv.modulation.bias.data += torch.randn(6, generator=g) * 0.3
    x = torch.randn(3, 6, 8, 8, generator=g, dtype=torch.float32)
    style = torch.randn(3, 7, generator=g)
    out = conv(x, style)
    assert out.shape == (3, 5, 16 if upsample else 8, 16 if upsample else 8)
    torch.testing.assert_close(out, per_sample_modulated_conv(conv, x, style), rtol=1e-4, atol=1e-5)
    if demodulate:  # demodulated output has unit scale per output channel for unit input
        big = init_weights_(ModulatedConv2d(64, 32, 3, 7), g)
        y = big(torch.randn(4, 64, 16, 16, generator=g), torch.randn(4, 7, generator=g) * 3).detach()
        assert float(y[..., 1:-1, 1:-1].std()) == pytest.approx(1.0, rel=0.15)


def test_to_rgb_adds_the_upsampled_skip():
    g = torch.Generator().manual_seed(3)
    to_rgb = init_weights_(ToRGB(8, 4, img_channels=1), g)
    to_rgb.bias.data.fill_(0.25)
    x, style = torch.randn(2, 8, 8, 8, generator=g), torch.randn(2, 4, generator=g)
    skip = torch.randn(2, 1, 4, 4, generator=g)
    out = to_rgb(x, style, skip)
    expected = per_sample_modulated_conv(to_rgb.conv, x, style) + 0.25 + to_rgb.upsample(skip)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_minibatch_stddev_groups_samples_by_index_modulo():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 3, 2, 2, generator=g)
    out = minibatch_stddev(x, group_size=4)  # 6 = 3 groups of... largest divisor <= 4 is 3
    assert out.shape == (6, 4, 2, 2)
    for i in range(6):
        members = x[[j for j in range(6) if j % 2 == i % 2]]
        expected = torch.sqrt(members.var(0, unbiased=False) + 1e-8).mean()
        torch.testing.assert_close(out[i, 3], torch.full((2, 2), float(expected)))
    torch.testing.assert_close(out[:, :3], x)


def test_generator_and_discriminator_shapes():
    ch = scaled_channels(32, 256, 16)
    assert ch == {4: 16, 8: 16, 16: 16, 32: 8}
    gen = Generator(32, 12, 2, ch, img_channels=1, generator=torch.Generator().manual_seed(0))
    assert gen.n_latent == 8 and gen.num_layers == 7
    assert gen.noise_sides() == [4, 8, 8, 16, 16, 32, 32]
    z = torch.randn(3, 12, generator=torch.Generator().manual_seed(1))
    img = gen(z)
    assert img.shape == (3, 1, 32, 32)
    torch.testing.assert_close(gen(z), img)  # fixed noise: deterministic
    w_plus = gen.broadcast(gen.mapping(z)).clone()
    torch.testing.assert_close(gen.synthesis(w_plus), img)  # W and W+ agree when layers are equal
    w_plus[:, 4:] = gen.mapping(z.flip(0))[:, None]
    assert not torch.allclose(gen.synthesis(w_plus), img)
    noisy = gen(z, generator=torch.Generator().manual_seed(5))
    again = gen(z, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(noisy, again)
    with pytest.raises(ValueError, match="noise maps"):
        gen.synthesis(gen.mapping(z), noise=gen.fixed_noise()[:3])
    disc = Discriminator(32, ch, img_channels=1, generator=torch.Generator().manual_seed(0))
    assert disc(img).shape == (3, 1)
    assert [tuple(f.shape[1:]) for f in disc.features(img)] == [(8, 32, 32), (16, 16, 16), (16, 8, 8), (16, 4, 4)]
    with pytest.raises(ValueError, match="power-of-two"):
        Generator(24, 12, 2, ch)


def _digest(module) -> tuple[int, str]:
    lines = sorted(f"{k} {tuple(v.shape)}" for k, v in module.state_dict().items())
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def test_state_dict_is_the_reference_key_layout():
    """Key names and shapes equal the reference key lists (docs/compat.md) (digests of its four
    sections: "key (shape)" lines sorted, sha256) for the reference's own configurations."""
    with torch.device("meta"):
        g32 = Generator(32, 512, 8, reference_channels(32, 2), 3)
        d32 = Discriminator(32, reference_channels(32, 2), 3)
        g64 = Generator(64, 512, 8, reference_channels(64, 1), 3)
        d64 = Discriminator(64, reference_channels(64, 1), 3)
    assert _digest(g32) == (81, "8b1409501db235be")
    assert _digest(d32) == (29, "7386d94c4ccba9f0")
    assert _digest(g64) == (99, "0d5b109383a5be67")
    assert _digest(d64) == (36, "3c9c0c80bca42399")
    assert reference_channels(1024, 2)[64] == 512 and reference_channels(1024, 2)[1024] == 32


def test_initialisation_is_seeded_and_leaves_global_random_state_alone():
    ch = scaled_channels(16, 128, 8)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = Generator(16, 8, 2, ch, 1, generator=torch.Generator().manual_seed(7))
    b = Generator(16, 8, 2, ch, 1, generator=torch.Generator().manual_seed(7))
    c = Generator(16, 8, 2, ch, 1, generator=torch.Generator().manual_seed(8))
    assert torch.equal(torch.get_rng_state(), before)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["style.1.weight"], sc["style.1.weight"])
    assert float(sa["conv1.conv.modulation.bias"].mean()) == 1.0  # modulation bias starts at 1
    assert math.isclose(float(sa["style.1.weight"].detach().std()), 100.0, rel_tol=0.3)  # lr_mlp 0.01
