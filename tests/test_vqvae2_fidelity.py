"""vqvae2 fidelity aids and records: the border mode, the 1/2 bottom map, presets, the fit's
diagnostics (generator.json, fit.json, reconstructions.png, the last-checkpoint warning), and
``--set region=...`` through ``augment``, ``fit`` and ``sample``."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import invoke

from lagaug.core.config import apply_overrides
from lagaug.core.errors import ConfigError
from lagaug.core.run.generators import method_config
from lagaug.plugins.vqvae2.diagnostics import code_usage, prior_warning, recon_figures
from lagaug.plugins.vqvae2.layers import init_weights_
from lagaug.plugins.vqvae2.method import PRESETS, VQVAE2Config, VQVAE2Method
from lagaug.plugins.vqvae2.vqvae import VQVAE2, upconv

TINY = ["--set", "channel=8", "--set", "n_res_block=1", "--set", "n_res_channel=4", "--set", "embed_dim=4",
        "--set", "n_embed=16", "--set", "epochs=2", "--set", "prior_channel=8", "--set", "prior_res_channel=8",
        "--set", "prior_n_block=1", "--set", "prior_n_res_block=1", "--set", "prior_n_cond_res_block=1",
        "--set", "prior_epochs=2", "--set", "grid_images=3", "--set", "bottom_stride=2"]


def test_replicate_border_upsamples_the_edge_like_the_inside():
    """A constant map through a 4x4 / stride-2 transposed conv: every 2x2 cell of the output is the
    same pattern with border='replicate'; with the reference's zero arithmetic the outer row and
    column differ (one kernel tap instead of two) — the checkerboard band at the borders."""
    up = init_weights_(upconv(3, 2), torch.Generator().manual_seed(0))
    x = torch.ones(1, 3, 6, 6)

    def edge_gap(out):
        cells = out.unfold(2, 2, 2).unfold(3, 2, 2)  # (1, C, 6, 6, 2, 2)
        return float((cells - cells[:, :, 2:3, 2:3]).abs().max())

    up.border = "zero"
    assert edge_gap(up(x)) > 0.05
    up.border = "replicate"
    assert edge_gap(up(x)) < 1e-6
    inside = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    y = torch.rand(1, 3, 6, 6)
    a = up(y)
    up.border = "zero"
    assert torch.allclose(a[inside], up(y)[inside])  # same weights, same arithmetic inside


def test_bottom_stride_2_halves_the_bottom_cell():
    model = VQVAE2(1, 8, 1, 4, 4, 16, bottom_stride=2, border="replicate")
    *_, top, bottom = model.encode(torch.rand(2, 1, 32, 32) * 2 - 1)
    assert top.shape == (2, 8, 8) and bottom.shape == (2, 16, 16)
    m = VQVAE2Method(VQVAE2Config(channel=8, n_embed=16, bottom_stride=2), (1, 32, 32), ["a"])
    assert m.bottom_shape == (16, 16) and m.top_shape == (8, 8)
    with pytest.raises(ConfigError, match=r"bottom_stride=3: expected auto \(by image size\), 4"):
        VQVAE2Config(bottom_stride=3)


def test_bottom_stride_auto_follows_the_image_size_and_is_saved_as_a_number(tmp_path):

    cfg = VQVAE2Config(channel=8, n_res_channel=4, embed_dim=4, n_embed=16)
    assert cfg.bottom_stride == "auto"
    shapes = {size: VQVAE2Method(cfg, (1, size, size), ["a"]).bottom_shape for size in (16, 32, 48, 64, 128, 256)}
    assert shapes == {16: (16, 16), 32: (32, 32), 48: (24, 24), 64: (32, 32), 128: (32, 32), 256: (64, 64)}
    m = VQVAE2Method(cfg, (1, 32, 32), ["a"])
    m.save(tmp_path / "g")
    saved = json.loads((tmp_path / "g" / "generator.json").read_text())
    assert saved["config"]["bottom_stride"] == 1
    assert VQVAE2Method.load(tmp_path / "g").bottom_shape == (32, 32)
    assert apply_overrides(cfg, {"bottom_stride": "4"}).bottom_stride == 4
    with pytest.raises(ConfigError, match=r"--set bottom_stride: expected an integer or auto, got 'x'"):
        apply_overrides(cfg, {"bottom_stride": "x"})


def test_bottom_stride_1_keeps_the_image_resolution_and_fits(tmp_path):
    """A bottom map at the image's own resolution (1-px structure): shapes, a decode of the right
    size, and a short fit that reconstructs held-out images (PSNR above 15 dB)."""
    model = VQVAE2(1, 8, 1, 4, 4, 16, bottom_stride=1, border="replicate")
    *_, top, bottom = model.encode(torch.rand(2, 1, 16, 16) * 2 - 1)
    assert top.shape == (2, 8, 8) and bottom.shape == (2, 16, 16)
    assert model.decode_codes(top, bottom).shape == (2, 1, 16, 16)
    from lagaug.core.run.generators import fit_generator
    from lagaug.testing import learnable_splits

    data = learnable_splits(size=16, train=(8, 8, 8), val=(2, 2, 2), test=(2, 2, 2))
    small = {k: v for k, v in (kv.split("=") for kv in TINY[1::2])}
    gen = fit_generator("vqvae2", data, overrides={**small, "bottom_stride": "1", "epochs": "6"}, out=tmp_path / "g")
    assert gen.bottom_shape == (16, 16) and gen.top_shape == (8, 8)
    fit = json.loads((tmp_path / "g" / "fit.json").read_text())
    assert fit["diagnostics"]["reconstruction"]["psnr"] > 15


def test_presets_apply_first_and_the_user_wins():
    name = next(n for n, v in PRESETS.items() if v)
    cfg = apply_overrides(VQVAE2Config(), {"preset": name})
    assert cfg.preset == name and all(getattr(cfg, k) == v for k, v in PRESETS[name].items())
    key = next(iter(PRESETS[name]))
    mine = apply_overrides(VQVAE2Config(), {"preset": name, key: str(VQVAE2Config().__dict__[key])})
    assert getattr(mine, key) == getattr(VQVAE2Config(), key)  # an explicit value beats the preset's
    with pytest.raises(ConfigError, match="preset='nope' is not a preset; presets: quick"):
        apply_overrides(VQVAE2Config(), {"preset": "nope"})


def test_region_is_an_option_of_every_command():
    cfg, typed = method_config(VQVAE2Method, {"region": "0,0,4,4"})
    assert cfg.region == "0,0,4,4" and typed == {"region": "0,0,4,4"}
    with pytest.raises(ConfigError, match=r"--set region='0,0,4': expected a box y0,x0,y1,x1"):
        method_config(VQVAE2Method, {"region": "0,0,4"})


def test_diagnostic_figures():
    x = torch.rand(4, 1, 8, 8)
    assert recon_figures(x, x)["l1"] == 0 and recon_figures(x, x)["psnr"] == 100
    assert abs(recon_figures(x * 0 + 0.5, x * 0 + 0.6)["psnr"] - 20) < 1e-3
    usage = code_usage(torch.tensor([[0, 0], [1, 3]]), 5)
    assert usage["used"] == 3 and usage["dead_codes"] == 2 and 1 < usage["perplexity"] < 3
    rec = {"val_nll": [3.0, 2.0, 1.0], "chosen_epoch": 3}
    assert "lowest at its last epoch (3 of 3)" in prior_warning("bottom", rec, pinned=False)
    assert prior_warning("bottom", rec, pinned=True) is None
    assert prior_warning("bottom", {"val_nll": [1.0, 2.0], "chosen_epoch": 1}, pinned=False) is None


def test_fit_records_diagnostics_and_region_reaches_sample_and_augment(example_plugin, learn_npz, tmp_path):
    gen = tmp_path / "gen"
    r = invoke("fit", "--method", "vqvae2", "--data", str(learn_npz), "--image-size", "16", *TINY,
               "--out", str(gen), "--quiet")
    assert r.returncode == 0, r.stderr
    meta = json.loads((gen / "generator.json").read_text())
    diag = meta["extra"]["diagnostics"]
    assert diag["reconstruction"]["images"].endswith("validation images") and diag["reconstruction"]["psnr"] > 5
    assert set(diag["codebook"]) == {"top", "bottom"} and "dead_codes" in diag["codebook"]["bottom"]
    assert len(meta["extra"]["vqvae"]["train_loss"]) == 2 and len(meta["extra"]["bottom_prior"]["train_loss"]) == 2
    assert meta["extra"]["bottom_prior"]["criterion"] and meta["config"]["border"] == "replicate"
    assert "seconds" not in json.dumps(meta)  # timings live in fit.json only
    fit = json.loads((gen / "fit.json").read_text())
    assert fit["diagnostics"] == diag and fit["fit_seconds"] > 0
    assert (gen / "reconstructions.png").stat().st_size > 200  # 3 rows: source | decode | 3 variants
    img = tmp_path / "spot" / "a.png"
    img.parent.mkdir()
    from PIL import Image

    Image.fromarray((torch.rand(16, 16) * 255).byte().numpy()).save(img)
    r = invoke("sample", "--generator", str(gen), str(img), "--variants", "4", "--set", "region=0,0,2,2",
               "--set", "temperature=3", "--out", str(tmp_path / "out"), "--quiet")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert max(x["codes_changed"] for x in lines) <= 4 / 64 and "source_distance" in lines[0]  # 2x2 of 8x8
    r = invoke("augment", "--method", "vqvae2", "--data", str(learn_npz), "--image-size", "16", "--hard-k", "2",
               "--iterations", "1", "--ensemble", "1", "--epochs", "1", "--generator", str(gen),
               "--set", "region=1,1,3,3", "--out", str(tmp_path / "run"), "--quiet")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in (tmp_path / "run" / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and max(x["codes_changed"] for x in lines) <= 4 / 64 and "label_fidelity" in lines[0]
    r = invoke("sample", "--generator", str(gen), str(img), "--set", "region=0,0,9,9", "--out",
               str(tmp_path / "bad"), "--quiet")
    assert r.returncode == 1 and "--set region=0,0,9,9: outside the 8x8 bottom map" in r.stderr


def test_a_version_1_generator_loads_as_it_was_fitted(tmp_path):
    """Saved before the border and bottom_stride options: zero padding, the bottom map at 1/4."""
    m = VQVAE2Method(VQVAE2Config(channel=8, n_res_channel=4, embed_dim=4, n_embed=16, bottom_stride=4,
                                  border="zero"), (1, 16, 16), ["a"])
    m.save(tmp_path / "g")
    meta = json.loads((tmp_path / "g" / "generator.json").read_text())
    assert meta["method_version"] == 2
    for key in ("border", "bottom_stride", "region", "preset", "grid_images"):
        del meta["config"][key]
    meta["method_version"] = 1
    (tmp_path / "g" / "generator.json").write_text(json.dumps(meta))
    old = VQVAE2Method.load(tmp_path / "g")
    assert old.config.border == "zero" and old.vqvae.enc_b.blocks[0].padding_mode == "zeros"
    assert old.config.bottom_stride == 4 and old.bottom_shape == (4, 4)
    x = torch.rand(2, 1, 16, 16)
    assert torch.equal(old.vqvae(x)[0], m.vqvae(x)[0])
