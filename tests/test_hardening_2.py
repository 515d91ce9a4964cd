"""Hostile input and faults, second round: a full disk, options checked before the run exists,
the safetensors writer's leftovers, wide .npz values, reused PIDs, a port that answers but is not
Ray, damaged report inputs, non-finite options and outputs, and the wording of what is refused."""

from __future__ import annotations

import errno
import json
import resource
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import invoke

from lagaug import hookimpl
from lagaug.core.errors import ConfigError, DataError, PluginError, WriteError
from lagaug.core.run.loop import AugmentConfig, run_augment


def one_line_error(r, message):
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    assert message in lines[0] and "Traceback" not in r.stderr, r.stderr


def run_args(data, out, *extra):
    return ["augment", "--method", "jitter", "--data", str(data), "--image-size", "16", "--iterations", "1",
            "--ensemble", "1", "--epochs", "1", "--out", str(out), "--quiet", "--no-report", *extra]


# -- 1. a full disk --------------------------------------------------------------------------------


def test_a_file_too_large_for_the_disk_is_one_line_naming_it_and_the_run_resumes(example_plugin, learn_npz, tmp_path):
    """A real OS error in the safetensors writer (a file-size limit: EFBIG, as a tiny disk gives
    ENOSPC): one line naming the file, never its temporary, and a run that resumes."""
    out = tmp_path / "run"
    limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))  # noqa: E731
    r = subprocess.run([sys.executable, "-m", "lagaug", *run_args(learn_npz, out)], capture_output=True, text=True,
                       preexec_fn=limit)
    member = out / "iterations" / "it000" / "ensemble" / "member_00.safetensors"
    one_line_error(r, f"{member}: cannot write (File too large); finished work is saved — fix that and run "
                      "again with --resume to continue")
    assert not member.exists() and not [p for p in out.rglob("*") if p.name.startswith(".tmp")]
    r = invoke(*run_args(learn_npz, out), "--resume")
    assert r.returncode == 0, r.stderr
    assert member.exists() and len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_no_space_in_the_safetensors_writer_names_the_file(tmp_path, monkeypatch):
    import safetensors.torch
    import torch

    from lagaug.core.store.atomic import atomic_save_safetensors

    def full(tensors, filename, metadata=None):
        raise safetensors.SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(WriteError) as err:
        atomic_save_safetensors(tmp_path / "out" / "w.safetensors", {"a": torch.zeros(2)})
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(tmp_path / "out" / "w.safetensors")
    assert str(err.value) == f"{tmp_path / 'out' / 'w.safetensors'}: cannot write (No space left on device)"
    assert list((tmp_path / "out").iterdir()) == []


def test_a_folder_in_the_way_names_the_file_not_its_temporary(tmp_path):
    from lagaug.report.demo import write_augment_run

    run = write_augment_run(tmp_path / "run", images=4)
    (run / "report.html").mkdir()
    r = invoke("report", run)
    one_line_error(r, f"Error: {run / 'report.html'}: cannot write (Is a directory)")
    assert ".tmp" not in r.stderr and "--resume" not in r.stderr


def test_a_config_that_cannot_be_written_leaves_no_folder(plugins, learn_npz, tmp_path, monkeypatch):
    import lagaug.core.store.rundir as rundir

    def refuse(path, obj):
        raise WriteError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(rundir, "atomic_write_json", refuse)
    with pytest.raises(WriteError):
        run_augment(AugmentConfig(method="jitter", data=str(learn_npz), image_size=16, iterations=0, ensemble=1,
                                  epochs=1, out=str(tmp_path / "run")), plugins=plugins)
    assert not (tmp_path / "run").exists()


# -- 2. options checked before the run exists; a run without work begins again ----------------------


@pytest.mark.parametrize("box", ["4,4,0,0", "-1,0,4,4", "0,0,100,100", "0,0,0,0"])
def test_a_bad_region_is_refused_before_the_run_exists(plugins, learn_npz, tmp_path, box):
    out = tmp_path / "run"
    r = invoke("augment", "--method", "vqvae2", "--data", learn_npz, "--image-size", "16", "--set", f"region={box}",
               "--out", out, "--quiet", plugins=plugins)
    one_line_error(r, f"--set region={box}: outside the 16x16 bottom map or empty")
    assert not out.exists()
    r = invoke("fit", "--method", "vqvae2", "--data", learn_npz, "--image-size", "16", "--set", f"region={box}",
               "--out", tmp_path / "gen", "--quiet", plugins=plugins)
    one_line_error(r, "outside the 16x16 bottom map or empty")
    assert not (tmp_path / "gen").exists()


def test_unknown_partner_classes_are_refused_before_the_run_exists(plugins, learn_npz, tmp_path):
    out = tmp_path / "run"
    r = invoke("augment", "--method", "aae-mixup", "--data", learn_npz, "--image-size", "16",
               "--set", "partner_classes=nosuch", "--out", out, "--quiet", plugins=plugins)
    one_line_error(r, "aae-mixup: partner_classes 'nosuch' is not a class; classes are: ")
    assert not out.exists()


def test_a_run_that_stopped_before_its_first_stage_begins_again_with_other_options(plugins, learn_npz, tmp_path):
    out = tmp_path / "run"
    (out).mkdir()
    (out / "config.json").write_text(json.dumps({"method": "jitter", "set": {"sigma": "9"}, "identity": {}}))
    (out / "data.json").write_text("{}")
    cfg = dict(method="jitter", data=str(learn_npz), image_size=16, iterations=0, ensemble=1, epochs=1, out=str(out))
    for resume in (True, False):
        result = run_augment(AugmentConfig(**cfg, set={"sigma": "0.1"}), resume=resume, plugins=plugins)
        assert [r["iteration"] for r in result.rows] == [0]
        assert json.loads((out / "config.json").read_text())["set"] == {"sigma": "0.1"}
        assert json.loads((out / "data.json").read_text())["classes"]
        if resume:  # once work exists, other options are another run
            with pytest.raises(ConfigError, match="was started with set="):
                run_augment(AugmentConfig(**cfg, set={"sigma": "0.2"}), resume=True, plugins=plugins)
            for p in out.iterdir():
                if p.name not in ("config.json", "data.json"):
                    p.unlink() if p.is_file() else __import__("shutil").rmtree(p)


# -- 3. the safetensors writer's own temporaries ----------------------------------------------------


def test_resume_and_fit_remove_the_safetensors_writers_temporaries(example_plugin, plugins, learn_npz, tmp_path):
    out = tmp_path / "run"
    assert invoke(*run_args(learn_npz, out, "--iterations", "0"), plugins=plugins).returncode == 0
    (out / "generator" / "work").mkdir(parents=True)
    stray = [out / "generator" / "work" / ".tmpAb3dE9", out / "iterations" / ".tmpZZ12ab"]
    for p in stray:
        p.write_bytes(b"half")
        p.chmod(0o600)
    keep = out / "iterations" / ".tmpnotours.txt"  # not the writer's pattern
    keep.write_text("x")
    assert invoke(*run_args(learn_npz, out, "--iterations", "0"), "--resume", plugins=plugins).returncode == 0
    assert not any(p.exists() for p in stray) and keep.exists()
    gen = tmp_path / "gen"
    (gen / "work").mkdir(parents=True)
    (gen / "work" / ".tmpQw3rty").write_bytes(b"half")  # a killed fit's leftover: --out is still its own
    r = invoke("fit", "--method", "jitter", "--data", learn_npz, "--image-size", "16", "--out", gen, "--quiet",
               plugins=plugins)
    assert r.returncode == 0, r.stderr
    assert not (gen / "work" / ".tmpQw3rty").exists() and (gen / "generator.json").exists()


# -- 4. values outside the dtype's range -------------------------------------------------------------


def npz(path, x):
    y = np.arange(len(x)) % 2
    np.savez(path, x_train=x, y_train=y, x_test=x[:6, ::-1], y_test=y[:6])
    return path


def test_wide_integer_values_outside_their_range_are_one_line(tmp_path):
    from lagaug.core.data.sources import load_data

    rng = np.random.default_rng(0)
    x = (rng.random((20, 16, 16)) * 255000).astype(np.int64)
    with pytest.raises(DataError, match=r"x_train holds int64 values up to \d+; integer images are read as 8 to 16 "
                                        r"bits \(0\.\.65535, in any integer type\) or as 32 bits in a 32-bit type"):
        load_data(npz(tmp_path / "i64.npz", x), image_size=16)
    with pytest.raises(DataError, match=r"x_train: its largest value, \d+, is less than one grey level of the full "
                                        r"scale 4294967295 \(uint32.*every image would be black"):
        load_data(npz(tmp_path / "u32.npz", x.astype(np.uint32)), image_size=16)
    ok = load_data(npz(tmp_path / "ok.npz", (x // 64).astype(np.int64)), image_size=16)  # 12-bit data in int64
    assert ok.extra["full_scale"] == 4095.0 and float(ok.train.images.float().mean()) > 60


# -- 5. locks: reused PIDs, a folder holding only a lock ----------------------------------------------


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times come from /proc")
def test_a_lock_naming_a_reused_pid_is_taken_over(example_plugin, plugins, learn_npz, sleeper, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lagaug.lock").write_text(f"{sleeper.pid} 1\n")  # its PID, but another process's start time
    assert invoke(*run_args(learn_npz, out, "--iterations", "0"), plugins=plugins).returncode == 0
    (out / ".lagaug.lock").write_text(f"{sleeper.pid}\n")  # an older lagaug's lock: the PID runs python, not lagaug
    assert invoke(*run_args(learn_npz, out, "--iterations", "0"), "--resume", plugins=plugins).returncode == 0
    from lagaug.core.store.rundir import lock_line

    (out / ".lagaug.lock").write_text(lock_line(sleeper.pid))  # the holder itself: refused
    one_line_error(invoke(*run_args(learn_npz, out, "--iterations", "0"), "--resume", plugins=plugins),
                   f"another lagaug process (PID {sleeper.pid}) is using this run")


def test_a_folder_holding_only_a_stale_lock_is_an_empty_folder(example_plugin, plugins, learn_npz, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lagaug.lock").write_text("999999999 1\n")
    assert invoke(*run_args(learn_npz, out, "--iterations", "0"), plugins=plugins).returncode == 0
    assert (out / "config.json").exists() and not (out / ".lagaug.lock").exists()


# -- 6. an address that answers but is not Ray; ports --------------------------------------------------


class Garbage(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\nnot ray\n")


def test_an_address_that_answers_but_is_not_ray_is_one_line_within_seconds(learn_npz, tmp_path):
    pytest.importorskip("ray")
    with socketserver.TCPServer(("127.0.0.1", 0), Garbage) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        address = f"127.0.0.1:{server.server_address[1]}"
        start = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "lagaug", "augment", "--method", "vae", "--data", str(learn_npz),
                            "--image-size", "16", "--executor", "ray", "--ray-address", address,
                            "--out", str(tmp_path / "run"), "--quiet"], capture_output=True, text=True)
        took = time.perf_counter() - start
        server.shutdown()
    assert r.stderr.strip().splitlines() == [
        f"Error: --ray-address {address}: something answers at 127.0.0.1:{address.split(':')[1]}, but not a Ray "
        "cluster (it does not speak gRPC); check the port — a Ray head listens on 6379 by default (ray://HOST:10001 "
        "for its client server)"]
    assert r.returncode == 1 and took < 20 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("address,message", [
    ("127.0.0.1:70000", "--ray-address 127.0.0.1:70000: 70000 is not a port number (1 to 65535)"),
    ("127.0.0.1:0", "--ray-address 127.0.0.1:0: 0 is not a port number (1 to 65535)"),
    ("head:abc", "--ray-address head:abc: port 'abc' is not a number"),
])
def test_invalid_ports_are_called_invalid(address, message):
    pytest.importorskip("ray")
    from lagaug.core.executor.ray_backend import probe

    with pytest.raises(ConfigError) as err:
        probe(address, 1.0)
    assert str(err.value).startswith(message) and "refused" not in str(err.value)


# -- 7. a damaged manifest line in the report ------------------------------------------------------------


def test_the_report_skips_a_manifest_file_that_is_not_a_path(tmp_path):
    from lagaug.report.demo import write_augment_run

    run = write_augment_run(tmp_path / "run", images=4)
    manifest = run / "synthetic" / "it001" / "manifest.jsonl"
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    lines[0]["file"] = 5
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    r = invoke("report", run)
    assert r.returncode == 0, r.stderr
    assert (run / "report.html").exists() and lines[1]["file"] in (run / "report.html").read_text()


# -- 9. non-finite options and outputs -----------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e999"])
def test_non_finite_option_values_are_refused(plugins, learn_npz, tmp_path, value):
    r = invoke("augment", "--method", "stylegan2", "--data", learn_npz, "--image-size", "16",
               "--set", f"magnitude={value}", "--out", tmp_path / "run", "--quiet", plugins=plugins)
    one_line_error(r, f"--set magnitude: expected a finite number, got '{value}'")
    assert not (tmp_path / "run").exists()


class Broken:
    """Decodes NaN pixels for the first call, a NaN metric for the second."""

    calls = 0

    @hookimpl(wrapper=True)
    def lagaug_decode(self, method, latents, context):
        import torch

        synthesis = yield
        Broken.calls += 1
        if Broken.calls == 1:
            synthesis.images[0, 0, 0, 0] = float("nan")
        synthesis.metrics["spread"] = torch.full((len(synthesis),), float("inf"))
        return synthesis


def test_non_finite_pixels_stop_the_batch_and_non_finite_metrics_are_null(example_plugin, learn_npz, tmp_path):
    from lagaug.core.contract.plugins import make_plugin_manager

    pm = make_plugin_manager(extra_plugins=[("broken", Broken())])
    cfg = AugmentConfig(method="jitter", data=str(learn_npz), image_size=16, iterations=1, ensemble=1, epochs=1,
                        out=str(tmp_path / "run"))
    with pytest.raises(PluginError, match=r"method 'jitter' decoded 1 of 2 image\(s\) with pixels that are not finite "
                                          r"numbers \(NaN or infinity\); nothing was written"):
        run_augment(cfg, plugins=pm)
    assert not (tmp_path / "run" / "synthetic" / "it001").exists()
    run_augment(cfg, resume=True, plugins=pm)
    text = (tmp_path / "run" / "synthetic" / "it001" / "manifest.jsonl").read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert [json.loads(line)["spread"] for line in text.splitlines()] == [None, None]


# -- 10. wording -----------------------------------------------------------------------------------------


def test_gate_distance_without_the_gate_is_refused(example_plugin, plugins, learn_npz, tmp_path):
    r = invoke(*run_args(learn_npz, tmp_path / "run", "--gate-distance", "0.05"), plugins=plugins)
    one_line_error(r, "--gate-distance 0.05: sets the quality gate's threshold, but the gate is off; add "
                      "--quality-gate or drop --gate-distance")
    assert not (tmp_path / "run").exists()


def test_an_interrupted_fit_is_not_told_to_resume(plugins, learn_npz, tmp_path, monkeypatch):
    import lagaug.core.run.generators as generators

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(generators, "fit_generator", stop)
    r = invoke("fit", "--method", "jitter", "--data", learn_npz, "--image-size", "16", "--out", tmp_path / "gen",
               "--quiet", plugins=plugins)
    assert r.returncode == 130
    assert r.stderr.strip() == "interrupted; finished work is saved — run the same command again to continue"
