"""The hard-sample loop end to end (with the example plugin's tiny method): the run record,
determinism, resuming after a kill, and its errors."""

from __future__ import annotations

import csv
import json

import pytest

from lagaug import hookimpl
from lagaug.core.contract.plugins import make_plugin_manager
from lagaug.core.errors import ConfigError
from lagaug.core.run.loop import AugmentConfig, Loop, run_augment
from lagaug.testing import TEST_ENSEMBLE


def config(data, out, **kw):
    """A test-sized run whose ensembles learn (not perfectly): figures that can differ."""
    base = dict(method="jitter", hard_k=2, iterations=2, variants=2, data=str(data), image_size=16,
                classifier_set=dict(TEST_ENSEMBLE), out=str(out), seed=3)
    return AugmentConfig(**{**base, **kw})


class IterationLog:
    def __init__(self):
        self.seen = []

    @hookimpl
    def lagaug_iteration_end(self, iteration, metrics, added, run_dir):
        self.seen.append((iteration, added, metrics["train_size"], run_dir))


@pytest.fixture
def pm(example_plugin):
    log = IterationLog()
    manager = make_plugin_manager(extra_plugins=[("log", log)])
    manager.iteration_log = log
    return manager


def test_run_writes_the_full_record(pm, learn_npz, tmp_path):
    out = tmp_path / "run"
    result = run_augment(config(learn_npz, out), plugins=pm)
    rows = result.rows
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    assert [r["added"] for r in rows] == [0, 4, 4]
    n_train = rows[0]["train_size"]
    assert [r["train_size"] for r in rows] == [n_train, n_train + 4, n_train + 8]
    # the ensembles learn, but not perfectly: the figures are not constants
    # (majority-class macro-F1 on this test set: 0.222)
    for r in rows:
        assert 0.8 < r["auc_mean"] < 1.0 and r["f1_mean"] > 0.6, r
    member_aucs = [m["auc"] for r in rows for m in r["per_member"]]
    assert len(set(member_aucs)) > 1
    assert "chance_warning" not in rows[0]
    assert all(m["kept_epoch"] > 1 for m in rows[0]["members"])
    assert rows[1]["auc_delta"] == pytest.approx(
        sum(a["auc"] - b["auc"] for a, b in zip(rows[1]["per_member"], rows[0]["per_member"])) / 2)

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
    with open(out / "iterations" / "it000" / "scores.csv", newline="") as fh:
        scored = list(csv.DictReader(fh))
    real_ids = {r["id"] for r in scored}
    assert all(m["source"][0] in real_ids and m["source_weight"] == [1.0] for m in manifest if m["iteration"] == 1)
    # the sources of iteration 1 are the two lowest-scored real images of iteration 0
    hardest = [r["id"] for r in sorted(scored, key=lambda r: float(r["score"]))[:2]]
    assert sorted({m["source"][0] for m in manifest if m["iteration"] == 1}) == sorted(hardest)
    assert [s[:2] for s in pm.iteration_log.seen] == [(0, 0), (1, 4), (2, 4)]  # lagaug_iteration_end


def test_same_seed_same_results(pm, learn_npz, tmp_path):
    a = run_augment(config(learn_npz, tmp_path / "a", iterations=1), plugins=pm).rows
    b = run_augment(config(learn_npz, tmp_path / "b", iterations=1), plugins=pm).rows
    assert [r["auc_mean"] for r in a] == [r["auc_mean"] for r in b]
    assert [r["per_member"] for r in a] == [r["per_member"] for r in b]
    c = run_augment(config(learn_npz, tmp_path / "c", iterations=1, seed=4), plugins=pm).rows
    assert [r["per_member"] for r in c] != [r["per_member"] for r in a]  # another seed, other figures
    assert (tmp_path / "a/synthetic/it001/00000.png").read_bytes() == (tmp_path / "b/synthetic/it001/00000.png").read_bytes()


class Kill:
    """Simulates a kill right after iteration ``at`` has been recorded."""

    def __init__(self, at):
        self.at = at

    @hookimpl
    def lagaug_iteration_end(self, iteration, metrics, added, run_dir):
        if iteration == self.at:
            raise KeyboardInterrupt


def test_killed_run_resumes_without_redoing_work(example_plugin, monkeypatch, learn_npz, tmp_path):
    full = tmp_path / "full"
    reference = run_augment(config(learn_npz, full), plugins=make_plugin_manager()).rows

    part = tmp_path / "part"
    loop = Loop(config(learn_npz, part), plugins=make_plugin_manager(extra_plugins=[("kill", Kill(1))]))
    with pytest.raises(KeyboardInterrupt):
        loop.execute()
    assert (part / "iterations/it001/metrics.json").exists() and not (part / "iterations/it002").exists()
    done = {p: p.stat().st_mtime_ns for p in part.rglob("*") if p.is_file()}

    resumed = run_augment(config(learn_npz, part), resume=True, plugins=make_plugin_manager()).rows
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731  (wall times)
    assert strip(resumed) == strip(reference)
    for path, mtime in done.items():
        if path.name not in ("metrics.jsonl", "metrics.csv", "metrics.png", "manifest.jsonl", "plugins.json"):
            assert path.stat().st_mtime_ns == mtime, f"{path} was rewritten"


def test_existing_run_needs_resume_and_the_same_config(pm, learn_npz, tmp_path):
    out = tmp_path / "run"
    run_augment(config(learn_npz, out, iterations=0), plugins=pm)
    with pytest.raises(ConfigError, match=r"--out .*run: a run already exists there; pass --resume"):
        run_augment(config(learn_npz, out, iterations=0), plugins=pm)
    with pytest.raises(ConfigError, match=r"--resume: .* was started with hard_k=2, not 3"):
        run_augment(config(learn_npz, out, iterations=0, hard_k=3), resume=True, plugins=pm)


def test_classes_restrict_what_is_augmented(pm, learn_npz, tmp_path):
    out = tmp_path / "run"
    run_augment(config(learn_npz, out, iterations=1, classes=["spot"], hard_k=3, variants=1), plugins=pm)
    manifest = [json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 3 and {m["source_label"][0] for m in manifest} == {"spot"}


@pytest.mark.parametrize("kw,message", [
    (dict(method="nope"), r"unknown method 'nope'; available methods: .*jitter"),
    (dict(hard_k=0), r"--hard-k must be at least 1, got 0"),
    (dict(hard_k=500), r"--hard-k 500 is larger than the \d+ images for training"),
    (dict(hard_k=40, classes=["spot"]), r"--hard-k 40 is larger than the 12 images in --classes spot"),
    (dict(classes=["cat"]), r"--classes 'cat' is not a class; classes are: ok, spot, line"),
    (dict(classifier="convnxt_tiny"), r"--classifier 'convnxt_tiny' is not a timm model; did you mean"),
    (dict(set={"sigma": "loud"}), r"--set sigma: expected float, got 'loud'"),
    (dict(set={"sigmaa": "1"}), r"unknown key 'sigmaa' for JitterConfig; valid keys: sigma"),
])
def test_bad_options_are_one_clear_line_before_anything_is_written(pm, learn_npz, tmp_path, kw, message):
    with pytest.raises(ConfigError, match=message):
        run_augment(config(learn_npz, tmp_path / "run", iterations=1, **kw), plugins=pm)
    assert not (tmp_path / "run").exists()
