"""The command line: augment, fit, sample, and one-line errors with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


def lagaug(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lagaug", *args], capture_output=True, text=True, cwd=cwd)


def test_augment_prints_the_summary(example_plugin, tiny_npz, tmp_path):
    out = tmp_path / "run"
    r = lagaug("augment", "--method", "jitter", "--hard-k", "2", "--iterations", "1", "--data", str(tiny_npz),
               "--ensemble", "2", "--epochs", "1", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "hard-sample loop" in r.stdout and "AUC (95% CI)" in r.stdout
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert r.stderr == ""  # --quiet: no progress output


def test_fit_then_sample(example_plugin, tiny_npz, tmp_path):
    gen = tmp_path / "gen"
    r = lagaug("fit", "--method", "jitter", "--data", str(tiny_npz), "--out", str(gen), "--quiet")
    assert r.returncode == 0, r.stderr
    assert json.loads((gen / "generator.json").read_text())["method"] == "jitter"
    img = tmp_path / "in.png"
    Image.fromarray((np.random.default_rng(0).random((40, 40)) * 255).astype(np.uint8)).save(img)
    r = lagaug("sample", "--generator", str(gen), str(img), "--variants", "3", "--label", "1",
               "--set", "sigma=0.2", "--out", str(tmp_path / "out"), "--quiet")
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert files == ["in_0000.png", "in_0001.png", "in_0002.png"]
    lines = [json.loads(l) for l in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert [l["label"] for l in lines] == ["1"] * 3 and lines[0]["source"] == str(img)
    with Image.open(tmp_path / "out" / "in_0000.png") as im:
        assert im.size == (32, 32)


@pytest.mark.parametrize("args,message", [
    (["augment", "--method", "nope"], "Error: unknown method 'nope'; available methods:"),
    (["augment", "--method", "jitter", "--data", "/no/such/dir"], "/no/such/dir"),
    (["augment", "--method", "jitter", "--set", "x"], "Error: --set 'x': expected key=value"),
    (["augment", "--method", "jitter", "--resume"], "Error: --resume needs --out DIR"),
    (["sample", "--generator", "/no/gen", __file__, "--out", "o"], "not a saved generator"),
])
def test_bad_input_is_one_line_and_exit_1(example_plugin, tmp_path, args, message):
    r = lagaug(*args, cwd=tmp_path)
    assert r.returncode != 0
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "lagaug-runs").exists() or not any((tmp_path / "lagaug-runs").rglob("*.json"))


def test_generator_from_another_method_is_refused(example_plugin, tiny_npz, tmp_path):
    gen = tmp_path / "gen"
    assert lagaug("fit", "--method", "jitter", "--data", str(tiny_npz), "--out", str(gen), "--quiet").returncode == 0
    r = lagaug("augment", "--method", "vae", "--generator", str(gen), "--data", str(tiny_npz),
               "--out", str(tmp_path / "run"), "--quiet")
    assert r.returncode == 1
    assert "generator was saved by method 'jitter', but --method is 'vae'" in r.stderr
