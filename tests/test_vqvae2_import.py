"""Import of rosinality/vq-vae-2-pytorch checkpoints.

The files here are built from a key template written from the reference format (docs/compat.md) (names, nesting, shapes;
scaled down), not from lagaug's modules, and the imported generator is checked against a direct
functional computation from the raw tensors."""

from __future__ import annotations

import argparse
import collections
import hashlib
import math
import subprocess
import sys

import pytest
import torch
from torch.nn import functional as F

from lagaug.core.contract.method import StageContext
from lagaug.core.errors import CheckpointError
from lagaug.plugins.vqvae2.importer import import_reference
from lagaug.plugins.vqvae2.method import VQVAE2Method

# -- the reference format, written out -----------------------------------------------------------


def vqvae_shapes(cin=3, ch=128, n_res=2, rc=32, ed=64, ne=512) -> dict[str, tuple]:
    s: dict[str, tuple] = {}

    def conv(name, o, i, k):
        s[f"{name}.weight"], s[f"{name}.bias"] = (o, i, k, k), (o,)

    def upconv(name, i, o):
        s[f"{name}.weight"], s[f"{name}.bias"] = (i, o, 4, 4), (o,)

    def res(prefix, start):
        for r in range(start, start + n_res):
            conv(f"{prefix}.{r}.conv.1", rc, ch, 3)
            conv(f"{prefix}.{r}.conv.3", ch, rc, 1)

    conv("enc_b.blocks.0", ch // 2, cin, 4), conv("enc_b.blocks.2", ch, ch // 2, 4)
    conv("enc_b.blocks.4", ch, ch, 3), res("enc_b.blocks", 5)
    conv("enc_t.blocks.0", ch // 2, ch, 4), conv("enc_t.blocks.2", ch, ch // 2, 3)
    res("enc_t.blocks", 3)
    conv("quantize_conv_t", ed, ch, 1)
    for q in ("quantize_t", "quantize_b"):
        s[f"{q}.embed"], s[f"{q}.cluster_size"], s[f"{q}.embed_avg"] = (ed, ne), (ne,), (ed, ne)
    conv("dec_t.blocks.0", ch, ed, 3), res("dec_t.blocks", 1), upconv(f"dec_t.blocks.{n_res + 2}", ch, ed)
    conv("quantize_conv_b", ed, ed + ch, 1)
    upconv("upsample_t", ed, ed)
    conv("dec.blocks.0", ch, 2 * ed, 3), res("dec.blocks", 1)
    upconv(f"dec.blocks.{n_res + 2}", ch, ch // 2), upconv(f"dec.blocks.{n_res + 4}", ch // 2, cin)
    return s


def pixelsnail_shapes(shape, n_class=512, ch=256, k=5, n_block=4, n_res=4, rc=256,
                      attention=True, n_cond=0, cond_ch=0, cond_k=3, n_out=0) -> dict[str, tuple]:
    s: dict[str, tuple] = {"background": (1, 2, *shape)}

    def wn(name, o, i, kh=None, kw=None, bias=True):
        conv = kh is not None
        s[f"{name}.weight_g"] = (o, 1, 1, 1) if conv else (o, 1)
        s[f"{name}.weight_v"] = (o, i, kh, kw) if conv else (o, i)
        if bias:
            s[f"{name}.bias"] = (o,)

    def gated(prefix, cin, c, kk, causal=False, aux=0):
        nest = ".conv.conv" if causal else ".conv"
        wn(f"{prefix}.conv1{nest}", c, cin, kk, kk)
        if aux:
            wn(f"{prefix}.aux_conv.conv", c, aux, 1, 1)
        wn(f"{prefix}.conv2{nest}", 2 * cin, c, kk, kk)

    wn("horizontal.conv.conv", ch, n_class, k // 2, k)
    wn("vertical.conv.conv", ch, n_class, (k + 1) // 2, k // 2)
    for b in range(n_block):
        for r in range(n_res):
            gated(f"blocks.{b}.resblocks.{r}", ch, rc, k, causal=True)
            if n_cond:
                wn(f"blocks.{b}.resblocks.{r}.condition.conv", 2 * ch, cond_ch, 1, 1, bias=False)
        if attention:
            gated(f"blocks.{b}.key_resblock", 2 * ch + 2, ch, 1)
            gated(f"blocks.{b}.query_resblock", ch + 2, ch, 1)
            wn(f"blocks.{b}.causal_attention.query", ch // 2, ch + 2)
            wn(f"blocks.{b}.causal_attention.key", ch // 2, 2 * ch + 2)
            wn(f"blocks.{b}.causal_attention.value", ch // 2, 2 * ch + 2)
            gated(f"blocks.{b}.out_resblock", ch, ch, 1, aux=ch // 2)
        else:
            wn(f"blocks.{b}.out.conv", ch, ch + 2, 1, 1)
    if n_cond:
        wn("cond_resnet.blocks.0.conv", cond_ch, n_class, cond_k, cond_k)
        for r in range(1, n_cond + 1):
            gated(f"cond_resnet.blocks.{r}", cond_ch, cond_ch, cond_k)
    for r in range(n_out):
        gated(f"out.{r}", ch, rc, 1)
    wn(f"out.{n_out + 1}.conv", n_class, ch, 1, 1)
    return s


def digest(shapes: dict[str, tuple]) -> tuple[int, str]:
    lines = sorted(f"{k} {tuple(v)}" for k, v in shapes.items())
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def test_templates_are_the_reference_keys_file():
    """At default sizes the templates give exactly the reference key lists (docs/compat.md)."""
    assert digest(vqvae_shapes()) == (64, "916d0bd947c8e5b3")
    assert digest(pixelsnail_shapes([32, 32])) == (226, "b0faeec6397708f9")
    assert digest(pixelsnail_shapes([64, 64], attention=False, n_cond=3, cond_ch=256)) == (
        171, "f160ef54042a2170")


def fill(shapes: dict[str, tuple], seed: int) -> dict[str, torch.Tensor]:
    """Random tensors for every key (weights ~ 1/sqrt(fan_in); masked taps non-zero too)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        if key == "background":
            h, w = shape[2:]
            rows = ((torch.arange(h) - h / 2) / h).view(h, 1).expand(h, w)
            cols = ((torch.arange(w) - w / 2) / w).view(1, w).expand(h, w)
            out[key] = torch.stack([rows, cols]).unsqueeze(0).float()
        elif key.endswith("cluster_size"):
            out[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith("embed") or key.endswith("embed_avg"):
            out[key] = torch.randn(shape, generator=g) * 0.5
        else:
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
            out[key] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
            if key.endswith("weight_g"):
                out[key] = out[key].abs() * 3 + 0.5
    return out


VQ = dict(cin=3, ch=16, n_res=2, rc=8, ed=8, ne=32)
BOTTOM = dict(n_class=32, ch=16, k=5, n_block=2, n_res=2, rc=16, attention=False, n_cond=2, cond_ch=16)
TOP = dict(n_class=32, ch=16, k=5, n_block=2, n_res=1, rc=16, attention=True, n_out=1)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("reference")
    vq = fill(vqvae_shapes(**VQ), seed=1)
    bottom = fill(pixelsnail_shapes([8, 8], **BOTTOM), seed=2)
    top = fill(pixelsnail_shapes([4, 4], **TOP), seed=3)
    torch.save({f"module.{k}": v for k, v in vq.items()}, d / "vqvae_560.pt")  # multi-GPU prefix
    args = dict(batch=32, epoch=420, lr=3e-4, channel=16, n_res_block=2, n_res_channel=16,
                n_out_res_block=0, n_cond_res_block=2, dropout=0.25, sched="cycle", ckpt=None)
    torch.save({"model": bottom, "args": argparse.Namespace(hier="bottom", **args)},
               d / "pixelsnail_bottom_001.pt")
    torch.save({"model": top, "args": argparse.Namespace(hier="top", **{**args, "n_out_res_block": 1})},
               d / "pixelsnail_top_001.pt")
    return {"dir": d, "vq": vq, "bottom": bottom, "top": top}


# -- a direct computation from the raw tensors ----------------------------------------------------


def vq_encode(S, x, n_res):
    conv = lambda x, n, s=1, p=0: F.conv2d(x, S[f"{n}.weight"], S[f"{n}.bias"], s, p)  # noqa: E731

    def res(x, prefix, start):
        for r in range(start, start + n_res):
            x = x + conv(F.relu(conv(F.relu(x), f"{prefix}.{r}.conv.1", p=1)), f"{prefix}.{r}.conv.3")
        return x

    def nearest(z, q):
        flat = z.permute(0, 2, 3, 1)
        d = ((flat.unsqueeze(-1) - S[f"{q}.embed"]) ** 2).sum(-2)
        return d.argmin(-1)

    b = F.relu(conv(F.relu(conv(x, "enc_b.blocks.0", 2, 1)), "enc_b.blocks.2", 2, 1))
    b = F.relu(res(conv(b, "enc_b.blocks.4", p=1), "enc_b.blocks", 5))
    t = conv(F.relu(conv(b, "enc_t.blocks.0", 2, 1)), "enc_t.blocks.2", p=1)
    t = F.relu(res(t, "enc_t.blocks", 3))
    id_t = nearest(conv(t, "quantize_conv_t"), "quantize_t")
    qt = F.embedding(id_t, S["quantize_t.embed"].t()).permute(0, 3, 1, 2)
    dt = F.relu(res(conv(qt, "dec_t.blocks.0", p=1), "dec_t.blocks", 1))
    n = f"dec_t.blocks.{n_res + 2}"
    dt = F.conv_transpose2d(dt, S[f"{n}.weight"], S[f"{n}.bias"], 2, 1)
    id_b = nearest(conv(torch.cat([dt, b], 1), "quantize_conv_b"), "quantize_b")
    return id_t, id_b


def vq_decode(S, id_t, id_b, n_res):
    up = lambda x, n: F.conv_transpose2d(x, S[f"{n}.weight"], S[f"{n}.bias"], 2, 1)  # noqa: E731
    qt = F.embedding(id_t, S["quantize_t.embed"].t()).permute(0, 3, 1, 2)
    qb = F.embedding(id_b, S["quantize_b.embed"].t()).permute(0, 3, 1, 2)
    x = torch.cat([up(qt, "upsample_t"), qb], 1)
    x = F.conv2d(x, S["dec.blocks.0.weight"], S["dec.blocks.0.bias"], padding=1)
    for r in range(1, 1 + n_res):
        h = F.conv2d(F.relu(x), S[f"dec.blocks.{r}.conv.1.weight"], S[f"dec.blocks.{r}.conv.1.bias"], padding=1)
        x = x + F.conv2d(F.relu(h), S[f"dec.blocks.{r}.conv.3.weight"], S[f"dec.blocks.{r}.conv.3.bias"])
    x = F.relu(up(F.relu(x), f"dec.blocks.{n_res + 2}"))
    return up(x, f"dec.blocks.{n_res + 4}")


def snail_logits(S, codes, top, k, n_block, n_res, attention, n_cond, n_out, n_class=32):
    """PixelSNAIL as docs/compat.md describes it, with the causal mask re-applied."""

    def weight(name, causal=False):
        v = S[f"{name}.weight_v"].clone()
        if causal:
            v[:, :, -1, v.shape[-1] // 2 :] = 0
        norm = v.flatten(1).norm(dim=1).view(-1, *[1] * (v.dim() - 1))
        return S[f"{name}.weight_g"] * v / norm

    def conv(x, name, pad=0, causal=False):
        return F.conv2d(x, weight(name, causal), S.get(f"{name}.bias"), padding=pad)

    def gated(x, prefix, kind, kk, cond=None, aux=None):
        if kind == "causal":
            c = lambda y, n: conv(F.pad(y, [kk // 2, kk // 2, kk - 1, 0]), f"{prefix}.{n}.conv.conv", causal=True)  # noqa: E731
        else:
            c = lambda y, n: conv(y, f"{prefix}.{n}.conv", pad=kk // 2)  # noqa: E731
        h = c(F.elu(x), "conv1")
        if aux is not None:
            h = h + conv(F.elu(aux), f"{prefix}.aux_conv.conv")
        h = c(F.elu(h), "conv2")
        if cond is not None:
            h = h + conv(cond, f"{prefix}.condition.conv")
        return F.glu(h, 1) + x

    b, h, w = codes.shape
    onehot = F.one_hot(codes, n_class).permute(0, 3, 1, 2).float()
    hor = conv(F.pad(onehot, [k // 2, k // 2, k // 2 - 1, 0]), "horizontal.conv.conv")
    ver = conv(F.pad(onehot, [k // 2 - 1, 0, (k + 1) // 2 - 1, 0]), "vertical.conv.conv")
    out = F.pad(hor, [0, 0, 1, 0])[:, :, :h] + F.pad(ver, [1, 0, 0, 0])[:, :, :, :w]
    bg = S["background"].expand(b, 2, h, w)
    cond = None
    if n_cond:
        cond = conv(F.one_hot(top, n_class).permute(0, 3, 1, 2).float(), "cond_resnet.blocks.0.conv", pad=1)
        for r in range(1, n_cond + 1):
            cond = gated(cond, f"cond_resnet.blocks.{r}", "wn", 3)
        cond = F.interpolate(cond, scale_factor=2)
    for blk in range(n_block):
        x = out
        for r in range(n_res):
            out = gated(out, f"blocks.{blk}.resblocks.{r}", "causal", k, cond=cond)
        if not attention:
            out = conv(torch.cat([out, bg], 1), f"blocks.{blk}.out.conv")
            continue
        key = gated(torch.cat([x, out, bg], 1), f"blocks.{blk}.key_resblock", "wn", 1)
        query = gated(torch.cat([out, bg], 1), f"blocks.{blk}.query_resblock", "wn", 1)
        a = f"blocks.{blk}.causal_attention"
        heads = lambda t, n: F.linear(t.flatten(2).transpose(1, 2), weight(f"{a}.{n}"), S[f"{a}.{n}.bias"]).view(b, h * w, 8, -1).transpose(1, 2)  # noqa: E731
        q, kk, v = heads(query, "query"), heads(key, "key"), heads(key, "value")
        att = q @ kk.transpose(2, 3) / math.sqrt(q.shape[-1])
        mask = torch.ones(h * w, h * w).tril(-1)
        att = torch.softmax(att.masked_fill(mask == 0, -1e4), 3) * (torch.arange(h * w) > 0).float().view(-1, 1)
        att_out = (att @ v).transpose(1, 2).reshape(b, h, w, -1).permute(0, 3, 1, 2)
        out = gated(out, f"blocks.{blk}.out_resblock", "wn", 1, aux=att_out)
    for r in range(n_out):
        out = gated(out, f"out.{r}", "wn", 1)
    return conv(F.elu(out), f"out.{n_out + 1}.conv")


# -- tests ---------------------------------------------------------------------------------------


def test_import_matches_a_direct_computation(files, tmp_path):
    d = files["dir"]
    assert (files["bottom"]["blocks.0.resblocks.0.conv1.conv.conv.weight_v"][:, :, -1, 2:] != 0).any()
    import_reference(d / "vqvae_560.pt", bottom_prior=d / "pixelsnail_bottom_001.pt",
                     top_prior=d / "pixelsnail_top_001.pt", out=tmp_path / "gen",
                     class_names=["ok", "defect"])
    method = VQVAE2Method.load(tmp_path / "gen")  # through the saved directory
    cfg = method.config
    assert method.image_shape == (3, 32, 32) and method.class_names == ["ok", "defect"]
    assert (cfg.channel, cfg.n_res_block, cfg.n_res_channel, cfg.embed_dim, cfg.n_embed) == (16, 2, 8, 8, 32)
    assert (cfg.prior_n_block, cfg.prior_n_res_block, cfg.prior_n_cond_res_block, cfg.prior_kernel) == (2, 2, 2, 5)
    assert cfg.top_prior and cfg.top_prior_n_out_res_block == 1 and cfg.prior_dropout == 0.25
    assert method.state["bottom_prior"]["masked_nonzero_weights"] > 0

    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 32, 32, generator=g)
    ctx = StageContext(generator=g)
    latents = method.encode(images, torch.ones(3, 2) / 2, ctx)
    id_t, id_b = vq_encode(files["vq"], images * 2 - 1, VQ["n_res"])
    assert torch.equal(latents.codes["top"], id_t) and torch.equal(latents.codes["bottom"], id_b)
    decoded = method.decode(latents, ctx).images
    direct = (vq_decode(files["vq"], id_t, id_b, VQ["n_res"]).clamp(-1, 1) + 1) / 2
    assert (decoded - direct).abs().max() < 1e-5

    bottom_codes = torch.randint(0, 32, (2, 8, 8), generator=g)
    top_codes = torch.randint(0, 32, (2, 4, 4), generator=g)
    with torch.no_grad():
        ours = method.bottom_prior(bottom_codes, top_codes)
        ref = snail_logits(files["bottom"], bottom_codes, top_codes, 5, 2, 2, False, 2, 0)
        assert (ours - ref).abs().max() < 1e-4
        ours = method.top_prior(top_codes)
        ref = snail_logits(files["top"], top_codes, None, 5, 2, 1, True, 0, 1)
        assert (ours - ref).abs().max() < 1e-4

    new = method.resample(latents, StageContext(generator=g, options={"region": "0,0,4,4"}))
    assert torch.equal(new.codes["top"], latents.codes["top"])
    assert torch.equal(new.codes["bottom"][:, 4:], latents.codes["bottom"][:, 4:])


def test_vqvae_only_needs_an_image_size(files):
    d = files["dir"]
    with pytest.raises(Exception, match="--image-size"):
        import_reference(d / "vqvae_560.pt")
    method = import_reference(d / "vqvae_560.pt", image_size=16)
    assert method.image_shape == (3, 16, 16)
    with pytest.raises(Exception, match="no trained bottom prior"):
        method.resample(method.encode(torch.rand(1, 3, 16, 16), torch.ones(1, 1), StageContext(
            generator=torch.Generator())), StageContext(generator=torch.Generator()))


class NotATensor:
    """Any class the allow-list does not name."""


def test_other_pickled_objects_are_refused(files, tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": files["bottom"], "args": argparse.Namespace(hier="bottom"),
                "extra": NotATensor()}, path)
    with pytest.raises(CheckpointError, match=r"refused to load: it holds Python objects \(.*NotATensor\) whose "
                                              r"code lagaug will not run"):
        import_reference(files["dir"] / "vqvae_560.pt", bottom_prior=path)
    path = tmp_path / "counter.pt"  # weights_only allows a Counter; still not a state dict
    torch.save({"enc_b.blocks.0.weight": collections.Counter(a=1)}, path)
    with pytest.raises(CheckpointError, match="holds a Counter, expected a tensor"):
        import_reference(path, image_size=32)
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        import_reference(path, image_size=32)


def test_the_cli_refuses_a_pickle_in_one_line_and_a_flat_background_clearly(files, tmp_path):
    import subprocess
    import sys

    path = tmp_path / "evil.pt"
    torch.save({"model": files["bottom"], "args": argparse.Namespace(hier="bottom"), "extra": NotATensor()}, path)
    r = subprocess.run([sys.executable, "-m", "lagaug", "import-checkpoint", "--vqvae", str(files["dir"] / "vqvae_560.pt"),
                        "--bottom-prior", str(path), "--out", str(tmp_path / "gen")], capture_output=True, text=True)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "whose code lagaug will not run" in r.stderr and "Traceback" not in r.stderr
    flat = dict(files["bottom"])
    flat["background"] = flat["background"].flatten()
    torch.save({"model": flat, "args": argparse.Namespace(hier="bottom")}, tmp_path / "flat.pt")
    with pytest.raises(CheckpointError, match=r"'background' has shape \(\d+,\), expected \(1, 2, height, width\)"):
        import_reference(files["dir"] / "vqvae_560.pt", bottom_prior=tmp_path / "flat.pt")


def test_wrong_shapes_and_kinds_name_the_key(files, tmp_path):
    d = files["dir"]
    vq = dict(files["vq"])
    vq["quantize_conv_b.weight"] = torch.zeros(8, 20, 1, 1)
    torch.save(vq, tmp_path / "bad_vq.pt")
    with pytest.raises(CheckpointError) as err:
        import_reference(tmp_path / "bad_vq.pt", image_size=32)
    assert "'quantize_conv_b.weight' has shape (8, 20, 1, 1), expected (8, 24, 1, 1)" in str(err.value)
    assert "\n" not in str(err.value)

    bottom = dict(files["bottom"])
    bottom["blocks.1.out.conv.weight_v"] = torch.zeros(16, 17, 1, 1)
    torch.save({"model": bottom, "args": argparse.Namespace()}, tmp_path / "bad_bottom.pt")
    with pytest.raises(CheckpointError, match=r"'blocks.1.out.conv.weight_v' has shape \(16, 17, 1, 1\), expected \(16, 18, 1, 1\)"):
        import_reference(d / "vqvae_560.pt", bottom_prior=tmp_path / "bad_bottom.pt")

    other = fill(pixelsnail_shapes([8, 8], **{**BOTTOM, "n_class": 64}), seed=4)
    torch.save({"model": other}, tmp_path / "other_codes.pt")
    with pytest.raises(CheckpointError, match="models 64 codes, expected 32"):
        import_reference(d / "vqvae_560.pt", bottom_prior=tmp_path / "other_codes.pt")

    with pytest.raises(CheckpointError, match="PixelSNAIL checkpoint"):
        import_reference(d / "pixelsnail_bottom_001.pt")
    with pytest.raises(CheckpointError, match="looks like a top prior"):
        import_reference(d / "vqvae_560.pt", bottom_prior=d / "pixelsnail_top_001.pt")
    with pytest.raises(CheckpointError, match="this is a VQ-VAE checkpoint"):
        import_reference(d / "vqvae_560.pt", top_prior=d / "vqvae_560.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        import_reference(tmp_path / "missing.pt", image_size=32)


def test_import_checkpoint_command(files, tmp_path):
    from helpers import invoke

    d = files["dir"]
    ok = invoke("import-checkpoint", "--vqvae", d / "vqvae_560.pt", "--bottom-prior", d / "pixelsnail_bottom_001.pt",
                "--out", tmp_path / "gen", "--class-names", "ok,defect")
    assert ok.returncode == 0, ok.stderr
    assert "vqvae2 generator for 3x32x32 images (VQ-VAE-2, bottom prior" in ok.stdout
    assert VQVAE2Method.load(tmp_path / "gen").class_names == ["ok", "defect"]
    same = invoke("import-checkpoint", d / "vqvae_560.pt", "--out", tmp_path / "gen2", "--image-size", "32")
    assert same.returncode == 0, same.stderr  # the file given without --vqvae
    bad = invoke("import-checkpoint", "--vqvae", d / "pixelsnail_top_001.pt", "--out", tmp_path / "x")
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: ") and bad.stderr.count("\n") == 1
    other = invoke("import-checkpoint", "--method", "vae", d / "vqvae_560.pt", "--out", tmp_path / "y")
    assert other.returncode == 1 and "method 'vae' cannot import checkpoints" in other.stderr


def test_plugin_module_is_light_and_registers_lazily():
    code = ("import sys, lagaug.plugins.vqvae2 as p; seen = []; "
            "p.lagaug_register_methods(lambda *a, **k: seen.append((a, k))); "
            "assert 'torch' not in sys.modules, 'torch imported'; print(seen[0][0][0], seen[0][1]['name'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    target, name = out.stdout.split()
    assert name == "vqvae2" and target == "lagaug.plugins.vqvae2.method:VQVAE2Method"
