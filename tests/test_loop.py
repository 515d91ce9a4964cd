"""The hard-sample loop end to end (with the example plugin's tiny method): the run record,
determinism, resuming after a kill, and its errors."""

from __future__ import annotations

import csv
import json

import pytest
import torch

import lagaug.core.plugins as plugins
from lagaug import hookimpl
from lagaug.core.errors import ConfigError
from lagaug.core.loop import AugmentConfig, Loop, run_augment
from lagaug.core.plugins import build_plugin_manager


def config(tiny_npz, out, **kw):
    base = dict(method="jitter", hard_k=2, iterations=2, variants=2, data=str(tiny_npz), image_size=32,
                ensemble=2, epochs=2, out=str(out), seed=3)
    return AugmentConfig(**{**base, **kw})


class IterationLog:
    def __init__(self):
        self.seen = []

    @hookimpl
    def lagaug_iteration_end(self, iteration, metrics, added, run_dir):
        self.seen.append((iteration, added, metrics["train_size"], run_dir))


@pytest.fixture
def pm(example_plugin, monkeypatch):
    log = IterationLog()
    manager = build_plugin_manager(extra_plugins=[("log", log)])
    monkeypatch.setattr(plugins, "_PM", manager)
    manager.iteration_log = log
    return manager


def test_run_writes_the_full_record(pm, tiny_npz, tmp_path):
    out = tmp_path / "run"
    result = run_augment(config(tiny_npz, out))
    rows = result.rows
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    assert [r["added"] for r in rows] == [0, 4, 4]
    n_train = rows[0]["train_size"]
    assert [r["train_size"] for r in rows] == [n_train, n_train + 4, n_train + 8]
    assert all(0 <= r["auc_mean"] <= 1 and r["auc_ci"] >= 0 for r in rows)

    saved = json.loads((out / "config.json").read_text())
    assert saved["method"] == "jitter" and saved["hard_k"] == 2 and saved["seed"] == 3
    assert (out / "generator" / "generator.json").exists() and (out / "generator" / "weights.safetensors").exists()
    with open(out / "metrics.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [int(r["iteration"]) for r in table] == [0, 1, 2] and "auc_ci" in table[0]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3
    assert (out / "metrics.png").stat().st_size > 1000
    assert (out / "grids" / "it001.png").exists() and (out / "grids" / "it002.png").exists()

    manifest = [json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 8
    first = manifest[0]
    assert set(first) >= {"id", "file", "source", "method", "iteration", "seed", "label", "soft", "source_score"}
    assert first["method"] == "jitter" and first["iteration"] == 1
    assert all((out / m["file"]).exists() for m in manifest)
    real_ids = {l.split(",")[0] for l in (out / "iterations" / "it000" / "scores.csv").read_text().splitlines()[1:]}
    assert all(m["source"] in real_ids for m in manifest if m["iteration"] == 1)
    # the sources of iteration 1 are the two lowest-scored real images of iteration 0
    scores = [l.split(",") for l in (out / "iterations" / "it000" / "scores.csv").read_text().splitlines()[1:]]
    hardest = [s[0] for s in sorted(scores, key=lambda s: float(s[3]))[:2]]
    assert sorted({m["source"] for m in manifest if m["iteration"] == 1}) == sorted(hardest)
    assert [s[:2] for s in pm.iteration_log.seen] == [(0, 0), (1, 4), (2, 4)]  # lagaug_iteration_end


def test_same_seed_same_results(pm, tiny_npz, tmp_path):
    a = run_augment(config(tiny_npz, tmp_path / "a", iterations=1)).rows
    b = run_augment(config(tiny_npz, tmp_path / "b", iterations=1)).rows
    assert [r["auc_mean"] for r in a] == [r["auc_mean"] for r in b]
    assert (tmp_path / "a/synthetic/it001/00000.png").read_bytes() == (tmp_path / "b/synthetic/it001/00000.png").read_bytes()


class Kill:
    """Simulates a kill right after iteration ``at`` has been recorded."""

    def __init__(self, at):
        self.at = at

    @hookimpl
    def lagaug_iteration_end(self, iteration, metrics, added, run_dir):
        if iteration == self.at:
            raise KeyboardInterrupt


def test_killed_run_resumes_without_redoing_work(example_plugin, monkeypatch, tiny_npz, tmp_path):
    full = tmp_path / "full"
    monkeypatch.setattr(plugins, "_PM", build_plugin_manager())
    reference = run_augment(config(tiny_npz, full)).rows

    part = tmp_path / "part"
    monkeypatch.setattr(plugins, "_PM", build_plugin_manager(extra_plugins=[("kill", Kill(1))]))
    loop = Loop(config(tiny_npz, part))
    with pytest.raises(KeyboardInterrupt):
        loop.execute()
    assert (part / "iterations/it001/metrics.json").exists() and not (part / "iterations/it002").exists()
    done = {p: p.stat().st_mtime_ns for p in part.rglob("*") if p.is_file()}

    monkeypatch.setattr(plugins, "_PM", build_plugin_manager())
    resumed = run_augment(config(tiny_npz, part), resume=True).rows
    strip = lambda rows: [{k: v for k, v in r.items()} for r in rows]  # noqa: E731
    assert strip(resumed) == strip(reference)
    for path, mtime in done.items():
        if path.name not in ("metrics.jsonl", "metrics.csv", "metrics.png", "manifest.jsonl"):
            assert path.stat().st_mtime_ns == mtime, f"{path} was rewritten"


def test_existing_run_needs_resume_and_the_same_config(pm, tiny_npz, tmp_path):
    out = tmp_path / "run"
    run_augment(config(tiny_npz, out, iterations=0))
    with pytest.raises(ConfigError, match=r"--out .*run: a run already exists there; pass --resume"):
        run_augment(config(tiny_npz, out, iterations=0))
    with pytest.raises(ConfigError, match=r"--resume: .* was started with hard_k=2, not 3"):
        run_augment(config(tiny_npz, out, iterations=0, hard_k=3), resume=True)


def test_classes_restrict_what_is_augmented(pm, tiny_npz, tmp_path):
    out = tmp_path / "run"
    run_augment(config(tiny_npz, out, iterations=1, classes=["1"], hard_k=3, variants=1))
    manifest = [json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 3 and {m["source_label"] for m in manifest} == {"1"}


@pytest.mark.parametrize("kw,message", [
    (dict(method="nope"), r"unknown method 'nope'; available methods: .*jitter"),
    (dict(hard_k=0), r"--hard-k must be at least 1, got 0"),
    (dict(hard_k=500), r"--hard-k 500 is larger than the \d+ candidate images"),
    (dict(classes=["cat"]), r"--classes 'cat' is not a class; classes are: 0, 1"),
    (dict(classifier="convnxt_tiny"), r"--classifier 'convnxt_tiny' is not a timm model; did you mean"),
    (dict(set={"sigma": "loud"}), r"--set sigma: expected float, got 'loud'"),
    (dict(set={"sigmaa": "1"}), r"unknown key 'sigmaa' for JitterConfig; valid keys: sigma"),
])
def test_bad_options_are_one_clear_line(pm, tiny_npz, tmp_path, kw, message):
    with pytest.raises(ConfigError, match=message):
        run_augment(config(tiny_npz, tmp_path / "run", iterations=1, **kw))
