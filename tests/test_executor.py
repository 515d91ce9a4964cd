"""The executor options: one-line errors before any work, the local executor's behaviour, and
Ray addresses parsed the way Ray spells them (the cluster itself: tests/test_ray.py)."""

from __future__ import annotations

import importlib.util

import pytest
from helpers import invoke

from lagaug.core.errors import ConfigError
from lagaug.core.executor import LocalExecutor, check_executor_options, job_resources, make_executor

HAS_RAY = importlib.util.find_spec("ray") is not None


@pytest.mark.parametrize("args, message", [
    (["--ray-address", "auto"], "Error: --ray-address is only used with --executor ray; add --executor ray or drop "
                                "--ray-address"),
    (["--ray-gpus", "0.5"], "Error: --ray-gpus is only used with --executor ray"),
    (["--executor", "ray", "--ray-gpus", "1.5"], "Error: --ray-gpus must be a share of one GPU (0 to 1) or a whole "
                                                 "number, got 1.5"),
    (["--executor", "dask"], "Invalid value for '--executor'"),
])
@pytest.mark.parametrize("command", ["augment", "compare"])
def test_bad_executor_options_are_one_line_and_write_nothing(command, args, message, learn_npz, tmp_path):
    out = tmp_path / "run"
    result = invoke(command, "--method", "vae", "--data", str(learn_npz), "--image-size", "16", *args,
                    "--out", str(out), "--quiet")
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.skipif(not HAS_RAY, reason='needs the extra: pip install "lagaug[ray]"')
def test_an_address_where_no_cluster_answers_is_one_line_before_any_write(learn_npz, tmp_path):
    out = tmp_path / "run"
    result = invoke("augment", "--method", "vae", "--data", str(learn_npz), "--image-size", "16",
                    "--executor", "ray", "--ray-address", "127.0.0.1:9", "--out", str(out), "--quiet")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        "Error: --ray-address 127.0.0.1:9: no Ray cluster answers there")
    assert not out.exists()


def test_ray_missing_is_named_with_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(ConfigError, match=r'--executor ray: Ray is not installed; install it with pip install '
                                          r'"lagaug\[ray\]"'):
        check_executor_options("ray", None, None)


def test_local_executor_runs_each_job_at_once_with_its_in_process_arguments():
    seen = []
    with make_executor("local") as ex:
        assert isinstance(ex, LocalExecutor) and ex.in_process and ex.put(seen) is seen
        ex.submit(lambda a, b, scale=1: (a + b) * scale, 2, 3, name="j", inproc={"scale": 10},
                  on_done=lambda result, node: seen.append((result, sorted(node))))
        assert seen == [(50, ["node"])]  # before submit returned


def test_job_resources_follow_threads_and_device():
    assert job_resources(None, "cpu", None) == job_resources(1, "cpu", 0.5)
    r = job_resources(2, "cuda", 0.25)
    assert (r.cpus, r.gpus, r.threads) == (2.0, 0.25, 2)
    assert job_resources(1, "cuda", None).gpus == 1.0


@pytest.mark.skipif(not HAS_RAY, reason='needs the extra: pip install "lagaug[ray]"')
@pytest.mark.parametrize("address, expected", [
    ("10.0.0.5:6380", ("10.0.0.5", 6380)), ("10.0.0.5", ("10.0.0.5", 6379)),
    ("ray://head:10002", ("head", 10002)), ("ray://head", ("head", 10001)), ("[::1]:7000", ("::1", 7000)),
])
def test_ray_addresses_use_rays_default_ports(address, expected):
    from lagaug.core.executor.ray_backend import host_port

    assert host_port(address) == expected


def test_a_runs_threads_hold_for_the_run_and_are_restored_after(monkeypatch):
    import os

    import torch

    from lagaug.core.threads import threads_for_run

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threads_for_run(1):
            assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
        assert torch.get_num_threads() == 2 and os.environ["OMP_NUM_THREADS"] == "2"
        with threads_for_run(None):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not HAS_RAY, reason='needs the extra: pip install "lagaug[ray]"')
def test_the_ray_instance_lagaug_starts_runs_tasks_at_normal_priority(monkeypatch):
    """Ray's default worker niceness (15) starves tasks beside any busy process; lagaug's own
    instance runs them at the driver's priority, and then lets go of it."""
    import os

    import ray

    monkeypatch.delenv("RAY_worker_niceness", raising=False)
    assert not ray.is_initialized()
    seen = []
    with make_executor("ray", resources=job_resources(1, "cpu", None)) as ex:
        ex.submit(os.nice, 0, name="nice", on_done=lambda result, node: seen.append((result, node)))
        ex.wait()
    assert seen[0][0] == os.nice(0) and "node_id" in seen[0][1]
    assert not ray.is_initialized() and "RAY_worker_niceness" not in os.environ
