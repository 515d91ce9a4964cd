"""Import of rosinality/stylegan2-pytorch generators.

The files are written from a key template built here from the reference layout (docs/compat.md: names, nesting, shapes),
not from lagaug's modules, scaled down (base 16 channels instead of 512); the imported generator is
checked against a functional forward pass written in this file from the raw tensors, following the
reference's own (fused, per-sample weight) computation."""

from __future__ import annotations

import argparse
import hashlib
import math

import pytest
import torch
from torch.nn import functional as F

from lagaug.core.contract.method import StageContext
from lagaug.core.errors import CheckpointError, ConfigError
from lagaug.plugins.stylegan2.importer import import_reference
from lagaug.plugins.stylegan2.method import StyleGAN2Method
from lagaug.plugins.stylegan2.networks import Generator

# -- the reference format, written out -----------------------------------------------------------


def channel_table(size, cm, base):
    return {2**i: base if 2**i <= 32 else base * 32 // 2**i * cm for i in range(2, int(math.log2(size)) + 1)}


def generator_shapes(size=32, style_dim=512, n_mlp=8, cm=2, base=512, img=3) -> dict[str, tuple]:
    ch = channel_table(size, cm, base)
    s: dict[str, tuple] = {}
    for i in range(1, n_mlp + 1):
        s[f"style.{i}.weight"], s[f"style.{i}.bias"] = (style_dim, style_dim), (style_dim,)
    s["input.input"] = (1, ch[4], 4, 4)

    def styled(prefix, cin, cout, up):
        s[f"{prefix}.conv.weight"] = (1, cout, cin, 3, 3)
        if up:
            s[f"{prefix}.conv.blur.kernel"] = (4, 4)
        s[f"{prefix}.conv.modulation.weight"], s[f"{prefix}.conv.modulation.bias"] = (cin, style_dim), (cin,)
        s[f"{prefix}.noise.weight"], s[f"{prefix}.activate.bias"] = (1,), (cout,)

    def rgb(prefix, cin, up):
        s[f"{prefix}.bias"] = (1, img, 1, 1)
        if up:
            s[f"{prefix}.upsample.kernel"] = (4, 4)
        s[f"{prefix}.conv.weight"] = (1, img, cin, 1, 1)
        s[f"{prefix}.conv.modulation.weight"], s[f"{prefix}.conv.modulation.bias"] = (cin, style_dim), (cin,)

    styled("conv1", ch[4], ch[4], False)
    rgb("to_rgb1", ch[4], False)
    prev = ch[4]
    sides = [4]
    for j, r in enumerate(sorted(ch)[1:]):
        styled(f"convs.{2 * j}", prev, ch[r], True)
        styled(f"convs.{2 * j + 1}", ch[r], ch[r], False)
        rgb(f"to_rgbs.{j}", ch[r], True)
        prev = ch[r]
        sides += [r, r]
    for i, side in enumerate(sides):
        s[f"noises.noise_{i}"] = (1, 1, side, side)
    return s


def discriminator_shapes(size=32, cm=2, base=512, img=3) -> dict[str, tuple]:
    ch = channel_table(size, cm, base)
    s: dict[str, tuple] = {"convs.0.0.weight": (ch[size], img, 1, 1), "convs.0.1.bias": (ch[size],)}
    cin = ch[size]
    for b, r in enumerate(sorted(ch, reverse=True)[:-1], start=1):
        cout = ch[r // 2]
        s[f"convs.{b}.conv1.0.weight"], s[f"convs.{b}.conv1.1.bias"] = (cin, cin, 3, 3), (cin,)
        s[f"convs.{b}.conv2.0.kernel"] = (4, 4)
        s[f"convs.{b}.conv2.1.weight"], s[f"convs.{b}.conv2.2.bias"] = (cout, cin, 3, 3), (cout,)
        s[f"convs.{b}.skip.0.kernel"], s[f"convs.{b}.skip.1.weight"] = (4, 4), (cout, cin, 1, 1)
        cin = cout
    s["final_conv.0.weight"], s["final_conv.1.bias"] = (ch[4], cin + 1, 3, 3), (ch[4],)
    s["final_linear.0.weight"], s["final_linear.0.bias"] = (ch[4], ch[4] * 16), (ch[4],)
    s["final_linear.1.weight"], s["final_linear.1.bias"] = (1, ch[4]), (1,)
    return s


def digest(shapes: dict[str, tuple]) -> tuple[int, str]:
    lines = sorted(f"{k} {tuple(v)}" for k, v in shapes.items())
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def test_templates_are_the_reference_keys_file():
    """At the reference's sizes the templates give exactly the reference key lists (docs/compat.md)."""
    assert digest(generator_shapes(32, cm=2)) == (81, "8b1409501db235be")
    assert digest(discriminator_shapes(32, cm=2)) == (29, "7386d94c4ccba9f0")
    assert digest(generator_shapes(64, cm=1)) == (99, "0d5b109383a5be67")
    assert digest(discriminator_shapes(64, cm=1)) == (36, "3c9c0c80bca42399")


TAPS = torch.tensor([1.0, 3.0, 3.0, 1.0])
BLUR = torch.outer(TAPS, TAPS) / 64


def fill(shapes: dict[str, tuple], seed: int) -> dict[str, torch.Tensor]:
    """Tensors as the reference stores them: raw N(0, 1) weights (N(0, 100^2) for the mapping,
    lr_mul 0.01), modulation biases near 1, small biases and noise strengths, the real blur kernels."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        if key.endswith("kernel"):
            out[key] = BLUR * (4 if ("conv.blur" in key or "upsample" in key) else 1)
        elif key.startswith("style.") and key.endswith("weight"):
            out[key] = torch.randn(shape, generator=g) * 100
        elif key.startswith("style.") and key.endswith("bias"):
            out[key] = torch.randn(shape, generator=g) * 10  # scaled by 0.01 at run time
        elif key.endswith("modulation.bias"):
            out[key] = 1 + 0.2 * torch.randn(shape, generator=g)
        elif key.endswith(("bias", "noise.weight")):
            out[key] = 0.1 * torch.randn(shape, generator=g)
        else:
            out[key] = torch.randn(shape, generator=g)
    return out


# -- an independent forward pass from the raw tensors (the reference's fused path) ---------------

SQ2 = math.sqrt(2.0)


def ref_mapping(sd, z, lr_mul=0.01):
    x = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
    i = 1
    while f"style.{i}.weight" in sd:
        w = sd[f"style.{i}.weight"]
        x = F.linear(x, w * lr_mul / math.sqrt(w.shape[1]))
        x = F.leaky_relu(x + sd[f"style.{i}.bias"] * lr_mul, 0.2) * SQ2
        i += 1
    return x


def fir(x, kernel, pad0, pad1):
    c = x.shape[1]
    x = F.pad(x, [pad0, pad1, pad0, pad1])
    return F.conv2d(x, kernel.flip(0, 1)[None, None].repeat(c, 1, 1, 1), groups=c)


def ref_modconv(sd, prefix, x, w, demod=True, up=False):
    weight = sd[f"{prefix}.weight"]  # (1, out, in, k, k)
    _, cout, cin, k, _ = weight.shape
    n, _, h, wd = x.shape
    mod_w = sd[f"{prefix}.modulation.weight"]
    style = F.linear(w, mod_w / math.sqrt(mod_w.shape[1]), sd[f"{prefix}.modulation.bias"])
    wt = weight / math.sqrt(cin * k * k) * style.view(n, 1, cin, 1, 1)
    if demod:
        wt = wt * torch.rsqrt(wt.pow(2).sum((2, 3, 4), keepdim=True) + 1e-8)
    if up:
        y = F.conv_transpose2d(x.reshape(1, n * cin, h, wd),
                               wt.transpose(1, 2).reshape(n * cin, cout, k, k), stride=2, groups=n)
        y = y.view(n, cout, 2 * h + 1, 2 * wd + 1)
        return fir(y, sd[f"{prefix}.blur.kernel"], 1, 1)
    y = F.conv2d(x.reshape(1, n * cin, h, wd), wt.reshape(n * cout, cin, k, k), padding=k // 2, groups=n)
    return y.view(n, cout, h, wd)


def ref_synthesis(sd, w, noises):
    def styled(prefix, x, up, noise):
        y = ref_modconv(sd, f"{prefix}.conv", x, w, up=up) + sd[f"{prefix}.noise.weight"] * noise
        return F.leaky_relu(y + sd[f"{prefix}.activate.bias"].view(1, -1, 1, 1), 0.2) * SQ2

    def rgb(prefix, x, skip):
        y = ref_modconv(sd, f"{prefix}.conv", x, w, demod=False) + sd[f"{prefix}.bias"]
        if skip is None:
            return y
        n, c, h, wd = skip.shape
        spread = torch.zeros(n, c, 2 * h, 2 * wd)
        spread[:, :, ::2, ::2] = skip
        return y + fir(spread, sd[f"{prefix}.upsample.kernel"], 2, 1)

    x = sd["input.input"].repeat(w.shape[0], 1, 1, 1)
    x = styled("conv1", x, False, noises[0])
    skip = rgb("to_rgb1", x, None)
    j = 0
    while f"to_rgbs.{j}.conv.weight" in sd:
        x = styled(f"convs.{2 * j}", x, True, noises[2 * j + 1])
        x = styled(f"convs.{2 * j + 1}", x, False, noises[2 * j + 2])
        skip = rgb(f"to_rgbs.{j}", x, skip)
        j += 1
    return skip


# -- files ---------------------------------------------------------------------------------------

SIZE, STYLE, N_MLP, BASE, CM = 64, 16, 3, 16, 1


def adam_state(n_params: int) -> dict:
    params = [torch.nn.Parameter(torch.randn(3)) for _ in range(n_params)]
    opt = torch.optim.Adam(params, lr=0.002, betas=(0.0, 0.99))
    sum(p.sum() for p in params).backward()
    opt.step()
    return opt.state_dict()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("sg2ckpt")
    g_ema = fill(generator_shapes(SIZE, STYLE, N_MLP, CM, BASE), seed=1)
    d = fill(discriminator_shapes(SIZE, CM, BASE), seed=2)
    converted = root / "converted.pt"
    torch.save({"g_ema": g_ema, "latent_avg": torch.randn(STYLE)}, converted)
    args = argparse.Namespace(size=SIZE, latent=STYLE, n_mlp=N_MLP, channel_multiplier=CM, r1=10.0,
                              path_regularize=2.0, mixing=0.9, batch=16, lr=0.002, iter=800000)
    training = root / "000100.pt"
    torch.save({"g": fill(generator_shapes(SIZE, STYLE, N_MLP, CM, BASE), seed=3), "d": d, "g_ema": g_ema,
                "g_optim": adam_state(2), "d_optim": adam_state(2), "args": args, "ada_aug_p": 0.0}, training)
    return {"root": root, "converted": converted, "training": training, "g_ema": g_ema, "d": d, "args": args}


def test_import_matches_the_reference_computation(files, tmp_path):
    method = import_reference(files["converted"], out=tmp_path / "gen", class_names=["a", "b"])
    assert method.image_shape == (3, SIZE, SIZE)
    assert method.generator.style_dim == STYLE and method.generator.n_mlp == N_MLP
    assert method.config.channels == (16, 16, 16, 16, 8) and method.config.lr_mlp == 0.01
    assert method.state["imported"]["channel_multiplier"] == CM
    assert method.state["imported"]["kind"] == "converted weights"
    assert method.discriminator is None and method.config.discriminator is False
    sd = files["g_ema"]
    z = torch.randn(3, STYLE, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        w = method.generator.mapping(z)
        torch.testing.assert_close(w, ref_mapping(sd, z), rtol=1e-4, atol=1e-4)
        fixed = [sd[f"noises.noise_{i}"] for i in range(method.generator.num_layers)]
        ours = method.generator.synthesis(w, noise=fixed)
        ref = ref_synthesis(sd, ref_mapping(sd, z), fixed)
        assert ours.shape == (3, 3, SIZE, SIZE)
        torch.testing.assert_close(ours, ref, rtol=1e-3, atol=1e-3)
        # the same tensors read with the mapping multiplier 1.0 make another generator
        wrong = Generator(SIZE, STYLE, N_MLP, dict(zip([4, 8, 16, 32, 64], method.config.channels)), 3, lr_mlp=1.0)
        wrong.load_state_dict(method.generator.state_dict())
        assert (wrong.mapping(z) - w).abs().mean() > 0.5 * w.abs().mean()
    # the saved directory loads to the same generator
    again = StyleGAN2Method.load(tmp_path / "gen")
    with torch.no_grad():
        torch.testing.assert_close(again.generator.synthesis(w, noise=fixed), ours)
    assert again.state["imported"]["file"] == str(files["converted"])


def test_training_checkpoint_with_args_and_discriminator(files):
    method = import_reference(files["training"], class_names=["x", "y"], image_size=SIZE, channel_multiplier=1)
    assert method.state["imported"]["kind"] == "training checkpoint"
    assert method.state["imported"]["args"]["r1"] == 10.0
    assert method.discriminator is not None
    for key, value in files["d"].items():
        torch.testing.assert_close(method.discriminator.state_dict()[key], value)
    # an imported generator projects, moves (random / pca) and decodes; class moves need data
    ctx = StageContext(generator=torch.Generator().manual_seed(0),
                       options={"proj_steps": 4, "direction": "pca"}, variants=2)
    images = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    latents = method.encode(images, torch.eye(2), ctx)
    out = method.decode(method.resample(latents, ctx), ctx)
    assert out.images.shape == (4, 3, SIZE, SIZE) and out.metrics["direction"].tolist() == [2.0] * 4
    ctx.options["direction"] = "class"
    with pytest.raises(ConfigError, match="no class directions"):
        method.resample(latents, ctx)


def test_bad_files_are_one_line_errors(files, tmp_path):
    root = files["root"]
    no_g_ema = root / "no_g_ema.pt"
    torch.save({"g": files["g_ema"], "d": files["d"]}, no_g_ema)
    with pytest.raises(CheckpointError, match=r"no_g_ema.pt: no 'g_ema' generator in this file \(found d, g\)"):
        import_reference(no_g_ema)
    bare = root / "bare.pt"
    torch.save(files["g_ema"], bare)
    with pytest.raises(CheckpointError, match="looks like a bare state dict"):
        import_reference(bare)
    pkl = root / "network-snapshot-000100.pkl"
    pkl.write_bytes(b"not opened")
    with pytest.raises(CheckpointError, match=r"\.pkl: refused: a \.pkl file; NVIDIA's StyleGAN \.pkl files are pickles"):
        import_reference(pkl)
    disguised = root / "nvidia.pt"  # an NVIDIA pickle under another name: refused by its contents
    disguised.write_bytes(b"\x80\x02cdnnlib.tflib.network\nNetwork\nq\x00)\x81q\x01.")
    with pytest.raises(CheckpointError, match=r"refused: it is an NVIDIA pickle \(it holds 'dnnlib.tflib.network.Network'\)"):
        import_reference(disguised)
    with pytest.raises(CheckpointError, match=r"makes 64x64 images but --image-size is 32; pass --image-size 64"):
        import_reference(files["converted"], image_size=32)
    with pytest.raises(CheckpointError, match=r"--channel-multiplier says channel_multiplier 2 but the tensor "
                       r"shapes give channel multiplier 1 .*; pass --channel-multiplier 1 or leave it out"):
        import_reference(files["converted"], channel_multiplier=2)
    lying = root / "lying_args.pt"
    torch.save({"g_ema": files["g_ema"], "args": argparse.Namespace(size=SIZE, channel_multiplier=2)}, lying)
    with pytest.raises(CheckpointError, match="its args says channel_multiplier 2 but the tensor shapes give channel multiplier 1"):
        import_reference(lying)
    broken = dict(files["g_ema"])
    broken["convs.3.conv.weight"] = torch.randn(1, 8, 16, 3, 3)
    bad_shape = root / "bad_shape.pt"
    torch.save({"g_ema": broken}, bad_shape)
    with pytest.raises(CheckpointError, match=r"g_ema key 'convs.3.conv.weight' has shape \(1, 8, 16, 3, 3\), expected \(1, 16, 16, 3, 3\)"):
        import_reference(bad_shape)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        import_reference(root / "missing.pt")
    for err_file in (no_g_ema, pkl, disguised, lying, bad_shape):
        with pytest.raises(CheckpointError) as err:
            import_reference(err_file, image_size=32)
        assert "\n" not in str(err.value) and str(err_file) in str(err.value)


class NotATensor:
    pass


def test_other_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"g_ema": {}, "extra": NotATensor()}, path)
    with pytest.raises(CheckpointError, match=r"refused to load: it holds Python objects \(.*NotATensor\) whose code "
                                              r"lagaug will not run; a rosinality checkpoint may hold only tensors"):
        import_reference(path)
    text = tmp_path / "text.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        import_reference(text)


def test_the_import_checkpoint_command_reads_stylegan2_files(files, tmp_path):
    from helpers import invoke

    ok = invoke("import-checkpoint", "--method", "stylegan2", files["converted"], "--out", tmp_path / "gen",
                "--class-names", "a,b")
    assert ok.returncode == 0, ok.stderr
    assert "stylegan2 generator for" in ok.stdout and (tmp_path / "gen" / "generator.json").exists()
    bad = invoke("import-checkpoint", "--method", "stylegan2", files["converted"], "--channel-multiplier", "2",
                 "--out", tmp_path / "gen2")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "pass --channel-multiplier 1" in bad.stderr
    assert not (tmp_path / "gen2").exists()
