"""Hostile input and faults: one line and early, nothing left behind, resume by identity, one
process per run, SIGTERM, file modes, real CSV, deterministic generator files."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import invoke, make_distribution
from PIL import Image

from lagaug.core.contract.plugins import make_plugin_manager
from lagaug.core.errors import CheckpointError, ConfigError
from lagaug.core.run.loop import AugmentConfig, run_augment
from lagaug.core.store.rundir import lock_line


def lagaug(*args, cwd=None, env=None, **kw):
    """``lagaug ARGS`` in a new process (for signals, umask, environment)."""
    return subprocess.run([sys.executable, "-m", "lagaug", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, **kw)


def one_line_error(r, message):
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("Error: "), r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


def run_args(data, out, *extra):
    return ["augment", "--method", "jitter", "--data", str(data), "--image-size", "16", "--iterations", "1",
            "--ensemble", "1", "--epochs", "1", "--out", str(out), "--quiet", *extra]


# -- output paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["file", "under-file", "proc"])
def test_bad_out_paths_are_one_line_before_any_work(example_plugin, learn_npz, tmp_path, where):
    afile = tmp_path / "afile"
    afile.write_text("x")
    out = {"file": afile, "under-file": afile / "run", "proc": Path("/proc/lagaug-run")}[where]
    for args in (run_args(learn_npz, out), ["fit", "--method", "jitter", "--data", str(learn_npz), "--out", str(out)]):
        r = invoke(*args)
        one_line_error(r, "--out")
        assert "choose another --out" in r.stderr
    img = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(img)
    r = invoke("fit", "--method", "jitter", "--data", str(learn_npz), "--out", str(tmp_path / "gen"), "--quiet")
    assert r.returncode == 0, r.stderr
    one_line_error(invoke("sample", "--generator", str(tmp_path / "gen"), str(img), "--label", "ok", "--out", str(out)),
                   "--out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "gen", "in.png", "learn.npz", "site"]


def test_a_failed_start_leaves_nothing_behind(example_plugin, learn_npz, tmp_path):
    out = tmp_path / "run"
    r = invoke(*run_args(learn_npz, out, "--hard-k", "500"))
    one_line_error(r, "--hard-k 500 is larger than the")
    r = invoke("augment", "--method", "vae", "--data", str(learn_npz), "--set", "min_class_images=100",
               "--out", str(out), "--quiet")
    one_line_error(r, "vae fits one VAE per class and needs at least 100 training images per class")
    assert not out.exists()


# -- saved generators ------------------------------------------------------------------------------


@pytest.fixture
def saved_gen(plugins, learn_npz, tmp_path):
    from lagaug.core.data.sources import load_data
    from lagaug.core.run.generators import fit_generator

    gen = tmp_path / "gen"
    fit_generator("jitter", load_data(learn_npz, image_size=16), out=gen, plugins=plugins)
    return gen


@pytest.mark.parametrize("edit,message", [
    (lambda m: m.update(method_version="two"), r"method_version must be a positive whole number, got 'two'"),
    (lambda m: m.update(class_names="ab"), r"class_names must be a list of class names, got 'ab'"),
    (lambda m: m.update(image_shape=[1, 16]), r"image_shape must be \[channels, height, width\]"),
    (lambda m: m["config"].update(sigma="loud"), r"generator.json: config key sigma: expected float, got 'loud'"),
    (lambda m: m["config"].update(sigmaa=1), r"generator.json: config: unknown key 'sigmaa'"),
])
def test_a_malformed_generator_json_is_an_error_in_that_file(plugins, saved_gen, edit, message):
    from lagaug.core.run.generators import load_generator

    meta = json.loads((saved_gen / "generator.json").read_text())
    edit(meta)
    (saved_gen / "generator.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=message) as err:
        load_generator(saved_gen, plugins=plugins)
    assert "--set" not in str(err.value)


def test_a_generator_from_a_newer_lagaug_is_reported(plugins, saved_gen):
    from lagaug.core.run.generators import load_generator

    meta = json.loads((saved_gen / "generator.json").read_text())
    meta["lagaug_version"] = "99.0"
    (saved_gen / "generator.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"saved by lagaug 99.0, newer than this lagaug"):
        load_generator(saved_gen, plugins=plugins)


def test_a_bad_generator_is_refused_before_the_run_exists(plugins, saved_gen, learn_npz, tmp_path):
    (saved_gen / "weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot read weights"):
        run_augment(AugmentConfig(method="jitter", data=str(learn_npz), image_size=16, generator=str(saved_gen),
                                  out=str(tmp_path / "run")), plugins=plugins)
    assert not (tmp_path / "run").exists()


def test_the_same_seed_writes_the_same_generator_file(plugins, learn_npz, tmp_path):
    from lagaug.core.data.sources import load_data
    from lagaug.core.run.generators import fit_generator

    splits = load_data(learn_npz, image_size=16)
    tiny = {"latent_dim": 2, "epochs": 2, "min_steps": 2, "channels": 4, "hidden": 8}
    for name in ("a", "b"):
        fit_generator("vae", splits, overrides=tiny, seed=1, out=tmp_path / name, plugins=plugins)
    assert (tmp_path / "a" / "generator.json").read_bytes() == (tmp_path / "b" / "generator.json").read_bytes()
    assert (tmp_path / "a" / "weights.safetensors").read_bytes() == (tmp_path / "b" / "weights.safetensors").read_bytes()


# -- resume by identity ----------------------------------------------------------------------------


def test_resume_recognises_the_run_whatever_the_spelling(example_plugin, learn_npz, tmp_path, monkeypatch):
    shutil.copy(learn_npz, tmp_path / "data.npz")
    monkeypatch.chdir(tmp_path)
    r = invoke(*run_args("data.npz", "runs/one/", "--iterations", "0"))
    assert r.returncode == 0, r.stderr
    # absolute paths for both, the data given absolute, then the run moved elsewhere
    r = invoke(*run_args(tmp_path / "data.npz", tmp_path / "runs" / "one", "--iterations", "0"), "--resume")
    assert r.returncode == 0, r.stderr
    shutil.move(tmp_path / "runs" / "one", tmp_path / "moved")
    shutil.move(tmp_path / "data.npz", tmp_path / "data2.npz")
    r = invoke(*run_args("data2.npz", "moved", "--iterations", "0"), "--resume")
    assert r.returncode == 0, r.stderr
    # other data under the old name is another run
    from lagaug.testing import learnable_npz

    learnable_npz(tmp_path / "data2.npz", seed=5)
    r = invoke(*run_args("data2.npz", "moved", "--iterations", "0"), "--resume")
    one_line_error(r, "was started with other data")


def test_resume_into_a_folder_without_a_run_is_refused(example_plugin, learn_npz, tmp_path):
    (tmp_path / "notarun").mkdir()
    (tmp_path / "notarun" / "x.txt").write_text("mine")
    one_line_error(invoke(*run_args(learn_npz, tmp_path / "notarun"), "--resume"), "holds no lagaug run")
    one_line_error(invoke(*run_args(learn_npz, tmp_path / "empty"), "--resume"), "holds no lagaug run")
    assert not (tmp_path / "empty").exists()


# -- one process per run, leftovers, SIGTERM -------------------------------------------------------


def test_a_second_process_is_refused_and_a_stale_lock_is_taken_over(example_plugin, learn_npz, tmp_path):
    out = tmp_path / "run"
    assert invoke(*run_args(learn_npz, out, "--iterations", "0")).returncode == 0
    assert not (out / ".lagaug.lock").exists()  # released at the end
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lagaug.lock").write_text(lock_line(sleeper.pid))  # as lagaug writes it: PID and start time
        r = invoke(*run_args(learn_npz, out, "--iterations", "0"), "--resume")
        one_line_error(r, f"another lagaug process (PID {sleeper.pid}) is using this run")
    finally:
        sleeper.kill()
        sleeper.wait()
    (out / "iterations" / ".metrics.json.abc123.tmp").write_text("half")  # a killed writer's leftover
    r = invoke(*run_args(learn_npz, out, "--iterations", "0"), "--resume")  # the holder is gone: stale
    assert r.returncode == 0, r.stderr
    assert not list(out.rglob("*.tmp"))


def test_sigterm_stops_like_ctrl_c_and_the_run_resumes(example_plugin, learn_npz, tmp_path):
    out = tmp_path / "run"
    long_enough = ("--iterations", "2", "--epochs", "40", "--classifier-set", "min_epoch_size=64")  # 160 steps each
    proc = subprocess.Popen([sys.executable, "-m", "lagaug", *run_args(learn_npz, out, *long_enough)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (out / "iterations" / "it000" / "metrics.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == ["terminated; finished work is saved — run again with --resume to continue"]
    assert (out / "iterations" / "it000" / "metrics.json").exists() and not (out / "metrics.jsonl").exists()
    r = invoke(*run_args(learn_npz, out, *long_enough), "--resume")
    assert r.returncode == 0, r.stderr
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3


# -- files others can read -------------------------------------------------------------------------


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_files_follow_the_umask(example_plugin, learn_npz, tmp_path, umask, mode):
    out = tmp_path / "run"
    r = lagaug(*run_args(learn_npz, out), preexec_fn=lambda: os.umask(umask))
    assert r.returncode == 0, r.stderr
    files = [p for p in out.rglob("*") if p.is_file() and p.name != ".lagaug.lock"]
    assert {p.suffix for p in files} >= {".json", ".png", ".safetensors", ".csv", ".jsonl"}
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(mode)}


def test_ids_with_commas_and_newlines_survive_csv_and_resume(plugins, tmp_path):
    from lagaug.testing import learnable_set

    data = learnable_set(40, size=16, seed=3)
    names = ["plain", 'a,b "quoted"', "line\nbreak"]
    for i in range(len(data)):
        folder = tmp_path / "data" / data.class_names[int(data.labels[i])]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.images[i, 0].numpy()).save(folder / f"{names[i % 3]} {i}.png")
    cfg = AugmentConfig(method="jitter", data=str(tmp_path / "data"), image_size=16, iterations=1, ensemble=1,
                        epochs=1, out=str(tmp_path / "run"))
    from lagaug.core.run.loop import Loop

    loop = Loop(cfg, plugins=plugins)
    loop.prepare()
    loop.run.release_lock()
    loop.evaluate(0, loop.splits.train, 0, loop.generator())  # scores.csv written, then "killed"
    with open(tmp_path / "run" / "iterations" / "it000" / "scores.csv", newline="") as fh:
        ids = [row["id"] for row in csv.DictReader(fh)]
    assert ids == loop.splits.train.ids and any("\n" in i for i in ids) and any("," in i for i in ids)
    result = run_augment(cfg, resume=True, plugins=plugins)
    assert [r["iteration"] for r in result.rows] == [0, 1]


# -- plugins ---------------------------------------------------------------------------------------


def test_a_load_filter_matching_nothing_warns(example_plugin, monkeypatch):
    env = {**os.environ, "LAGAUG_LOAD_PLUGINS": "nosuch"}
    r = lagaug("list-plugins", env=env)
    assert r.returncode == 0
    assert "warning: LAGAUG_LOAD_PLUGINS names nosuch, which matched no installed plugin" in r.stderr


MISSING_TARGET = """
from lagaug import hookimpl

@hookimpl
def lagaug_register_methods(register):
    register("no_such_module.method:Thing", name="ghost")
"""


def test_list_plugins_checks_targets_and_unknown_method_names_broken_plugins(plugin_site):
    make_distribution(plugin_site, "ghost-plugin", "1.0", {"ghost": "ghost_mod"}, {"ghost_mod": MISSING_TARGET})
    r = invoke("list-plugins", "--json")
    ghost = next(p for p in json.loads(r.stdout) if p["name"] == "ghost")
    assert "module 'no_such_module.method' does not exist" in ghost["error"]
    make_distribution(plugin_site, "broken-thing", "1.0", {"broken": "broken_x"}, {"broken_x": "raise ImportError('x')"})
    with pytest.raises(ConfigError, match=r"unknown method 'nope'; .* plugins that failed to load: broken"):
        make_plugin_manager().get_method("nope")


FAILING_LOGGER = """
from lagaug import hookimpl

@hookimpl
def lagaug_iteration_end(iteration, metrics, added, run_dir):
    raise RuntimeError("logger down")
"""


def test_a_failing_hook_is_reported_even_when_quiet(example_plugin, learn_npz, tmp_path):
    make_distribution(example_plugin, "bad-logger", "1.0", {"badlog": "badlog_mod"}, {"badlog_mod": FAILING_LOGGER})
    r = invoke(*run_args(learn_npz, tmp_path / "run", "--iterations", "0"))
    assert r.returncode == 0, r.stderr
    assert "warning: a lagaug_iteration_end hook failed: RuntimeError: logger down" in r.stderr
