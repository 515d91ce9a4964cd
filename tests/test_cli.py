"""The command line: the README's commands at test size, augment/fit/sample, options that are
claimed in the README, and one-line errors with a non-zero exit."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT, invoke
from PIL import Image

TINY_VQVAE2 = ["--set", "channel=8", "--set", "n_res_block=1", "--set", "n_res_channel=4", "--set", "embed_dim=4",
               "--set", "n_embed=16", "--set", "epochs=2", "--set", "prior_channel=8", "--set", "prior_res_channel=8",
               "--set", "prior_n_block=1", "--set", "prior_n_res_block=1", "--set", "prior_n_cond_res_block=1",
               "--set", "prior_epochs=2", "--set", "pretrain_epochs=1", "--set", "prior_pretrain_epochs=1"]


def lagaug(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "lagaug", *args], capture_output=True, text=True, cwd=cwd,
                          env=env)


def quickstart_main_command() -> list[str]:
    """The README Quickstart's first command, after ``pip install -e . &&``."""
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    first = re.findall(r"```bash\n(.*?)\n```", quick, re.S)[0]
    return first.split("&&", 1)[1].split()


def test_the_readme_main_command_runs_at_test_size(tmp_path):
    """Quickstart: `lagaug augment --method vqvae2 --hard-k 2` on the embedded data with the
    default unlabelled pool — here with a tiny generator and ensemble so the test stays short."""
    cmd = quickstart_main_command()
    assert cmd[:5] == ["lagaug", "augment", "--method", "vqvae2", "--hard-k"]
    out = tmp_path / "run"
    r = lagaug(*cmd[1:], "--iterations", "1", "--ensemble", "1", "--epochs", "1", "--image-size", "16",
               "--unlabeled", "default", *TINY_VQVAE2, "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "hard-sample loop" in r.stdout and "AUC (95% CI)" in r.stdout
    manifest = [json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 2 and all(m["method"] == "vqvae2" for m in manifest)
    assert {"structure_error", "codes_changed"} <= set(manifest[0])
    data = json.loads((out / "data.json").read_text())
    assert data["counts"]["train"] == {"ok": 200, "defect": 40} and data["unlabeled"] == 2000


def test_readme_python_api_snippet_runs(tmp_path, monkeypatch, example_plugin):
    """The README's Python API block, run as written but on tiny data and a tiny run."""
    text = (ROOT / "README.md").read_text()
    code = re.search(r"## Python API\n\n```python\n(.*?)```", text, re.S).group(1)
    from lagaug.testing import learnable_set

    folder = tmp_path / "my_images"
    data = learnable_set(24, size=16, seed=2)
    for i in range(len(data)):
        path = folder / data.class_names[int(data.labels[i])] / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.images[i, 0].numpy()).save(path)
    monkeypatch.chdir(tmp_path)
    small = (code.replace('method="vae", hard_k=2, iterations=2', 'method="jitter", hard_k=2, iterations=1, '
                          'ensemble=1, epochs=1, image_size=16')
             .replace("image_size=64", "image_size=16")
             .replace('"vae", splits, overrides={"latent_dim": 8}', '"jitter", splits, overrides={"sigma": 0.1}'))
    assert small != code
    namespace: dict = {}
    exec(compile(small, "README.md", "exec"), namespace)
    assert (tmp_path / "runs" / "demo" / "metrics.csv").exists()
    assert tuple(namespace["synth"].images.shape) == (8, 1, 16, 16)


def test_augment_prints_the_summary_and_honours_include_synthetic(example_plugin, learn_npz, tmp_path):
    out = tmp_path / "run"
    r = lagaug("augment", "--method", "jitter", "--hard-k", "3", "--iterations", "2", "--data", str(learn_npz),
               "--image-size", "16", "--ensemble", "1", "--epochs", "1", "--include-synthetic",
               "--device", "auto", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "hard-sample loop" in r.stdout and "AUC (95% CI)" in r.stdout
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3
    assert r.stderr == ""  # --quiet: no progress output
    config = json.loads((out / "config.json").read_text())
    assert config["include_synthetic"] is True and config["device"] == "auto"
    # the iteration-1 ensemble's scores cover the synthetic images, which may be chosen
    import csv

    with open(out / "iterations" / "it001" / "scores.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sum(r["synthetic"] == "1" for r in rows) == 3
    chosen = {json.loads(l)["source"][0] for l in (out / "synthetic" / "it002" / "manifest.jsonl").read_text().splitlines()}
    hardest = {r["id"] for r in sorted(rows, key=lambda r: float(r["score"]))[:3]}
    assert chosen == hardest


def test_trace_plugins_prints_hook_calls(example_plugin, learn_npz, tmp_path, monkeypatch):
    monkeypatch.setenv("LAGAUG_TRACE_PLUGINS", "1")
    r = invoke("augment", "--method", "jitter", "--iterations", "1", "--data", str(learn_npz), "--image-size", "16",
               "--ensemble", "1", "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet")
    assert r.returncode == 0, r.stderr
    for hook in ("lagaug_encode", "lagaug_resample", "lagaug_decode", "lagaug_score", "lagaug_select"):
        assert f"{hook} [hook]" in r.stderr


def _png(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.random.default_rng(seed).random((40, 40)) * 255).astype(np.uint8)).save(path)
    return path


def test_fit_then_sample(example_plugin, learn_npz, tmp_path):
    gen = tmp_path / "gen"
    r = invoke("fit", "--method", "jitter", "--data", str(learn_npz), "--out", str(gen), "--quiet")
    assert r.returncode == 0, r.stderr
    assert json.loads((gen / "generator.json").read_text())["method"] == "jitter"
    img = _png(tmp_path / "in.png")
    r = invoke("sample", "--generator", str(gen), str(img), "--variants", "3", "--label", "spot",
               "--set", "sigma=0.2", "--out", str(tmp_path / "out"), "--quiet")
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert files == ["in_0000.png", "in_0001.png", "in_0002.png"]
    lines = [json.loads(l) for l in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert [l["label"] for l in lines] == ["spot"] * 3 and lines[0]["source"] == [str(img)]
    with Image.open(tmp_path / "out" / "in_0000.png") as im:
        assert im.size == (32, 32)
    # without --label: each image's folder names its class; a folder that is no class is an error
    a, b = _png(tmp_path / "ok" / "a.png", 1), _png(tmp_path / "line" / "b.png", 2)
    r = invoke("sample", "--generator", str(gen), str(a), str(b), "--variants", "1", "--out", str(tmp_path / "o2"),
               "--quiet")
    assert r.returncode == 0, r.stderr
    labels = [json.loads(l)["label"] for l in (tmp_path / "o2" / "manifest.jsonl").read_text().splitlines()]
    assert labels == ["ok", "line"]
    r = invoke("sample", "--generator", str(gen), str(img), "--out", str(tmp_path / "o3"), "--quiet")
    assert r.returncode == 1 and "give --label (one of: ok, spot, line)" in r.stderr


@pytest.mark.parametrize("args,message", [
    (["augment", "--method", "nope"], "Error: unknown method 'nope'; available methods:"),
    (["augment", "--method", "jitter", "--data", "/no/such/dir"], "/no/such/dir"),
    (["augment", "--method", "jitter", "--set", "x"], "Error: --set 'x': expected key=value"),
    (["augment", "--method", "jitter", "--resume"], "Error: --resume needs --out DIR"),
    (["augment", "--method", "jitter", "--device", "cuda:7"], "Error: --device cuda:7"),
    (["sample", "--generator", "/no/gen", __file__, "--out", "o"], "not a saved generator"),
])
def test_bad_input_is_one_line_and_exit_1(example_plugin, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    r = invoke(*args) if args[0] == "sample" or "--set" in args else lagaug(*args, cwd=tmp_path)
    assert r.returncode == 1
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "lagaug-runs").exists() or not any((tmp_path / "lagaug-runs").rglob("*.json"))


def test_generator_from_another_method_is_refused(example_plugin, learn_npz, tmp_path):
    gen = tmp_path / "gen"
    assert invoke("fit", "--method", "jitter", "--data", str(learn_npz), "--out", str(gen), "--quiet").returncode == 0
    r = invoke("augment", "--method", "vae", "--generator", str(gen), "--data", str(learn_npz),
               "--out", str(tmp_path / "run"), "--quiet")
    assert r.returncode == 1
    assert "generator was saved by method 'jitter', but --method is 'vae'" in r.stderr
