"""``--executor processes``: ensemble members and compare cells in worker processes of one thread
each give the same bits as in this process with one thread; a job's error comes back as itself; a
worker that dies is one line naming the job, and the workers are stopped."""

from __future__ import annotations

import os

import pytest
import torch

from lagaug.core.classifier import resolve_ensemble_config, train_ensemble
from lagaug.core.compare import CompareConfig, run_compare
from lagaug.core.errors import ConfigError
from lagaug.core.executor import LocalExecutor, Resources, make_executor
from lagaug.core.executor.processes import ProcessExecutor, WorkerDied
from lagaug.core.threads import threads_for_run
from lagaug.testing import TEST_ENSEMBLE, learnable_set

SMALL = dict(TEST_ENSEMBLE, members=3, epochs=3)
VOLATILE = ("seconds", "node", "node_id", "executor")


def boom(x: int) -> int:
    raise ValueError(f"job {x} went wrong")


def die() -> None:
    os._exit(3)


def ensemble(executor):
    train, val = learnable_set(seed=1), learnable_set((10, 4, 4), seed=2, split="val")
    with threads_for_run(1):
        return train_ensemble(train, val, resolve_ensemble_config("cpu", dict(SMALL)), torch.Generator().manual_seed(5),
                              executor=executor)


def test_members_in_worker_processes_match_one_thread_here_bit_for_bit():
    here = ensemble(LocalExecutor())
    pool = ProcessExecutor(Resources(threads=1), workers=2)
    try:
        there = ensemble(pool)
    finally:
        pool.close()
    assert len(there.members) == 3
    for a, b in zip(here.members, there.members):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    strip = lambda h: {k: v for k, v in h.items() if k not in VOLATILE}  # noqa: E731
    assert [strip(h) for h in there.history] == [strip(h) for h in here.history]
    assert all(h["node"] for h in there.history)  # where each ran is recorded
    assert pool._pool is None  # closed: the workers are gone


def test_compare_cells_in_processes_match_the_local_run(tmp_path, plugins):
    from lagaug.testing import learnable_npz

    data = learnable_npz(tmp_path / "learn.npz")

    def run(executor, threads):
        cfg = CompareConfig(method="jitter", arms=["real", "classic", "jitter"], data=str(data), image_size=16,
                            repeats=1, ensemble=dict(TEST_ENSEMBLE, epochs=3), executor=executor,
                            out=str(tmp_path / executor), threads=threads)
        return run_compare(cfg, plugins=plugins)

    local, workers = run("local", 1), run("processes", 2)  # two workers of one thread each
    strip = lambda c: {k: v for k, v in c.items() if k not in VOLATILE}  # noqa: E731
    assert [strip(c) for c in workers.cells] == [strip(c) for c in local.cells]
    assert all(c["executor"] == "processes" for c in workers.cells)


def test_a_jobs_error_comes_back_as_itself_and_the_rest_is_cancelled():
    pool = make_executor("processes", resources=Resources(threads=1), workers=1)
    done = []
    for i in range(3):
        pool.submit(boom, i, name=f"job {i}", on_done=lambda result, node: done.append(result))
    with pytest.raises(ValueError, match="job 0 went wrong"):
        pool.wait()
    assert done == [] and pool._pending == {} and pool._pool is None
    pool.close()


def test_a_worker_that_dies_is_one_line_naming_the_job():
    pool = ProcessExecutor(Resources(threads=1), workers=1)
    pool.submit(die, name="lagaug ensemble member 2", on_done=lambda result, node: None)
    with pytest.raises(WorkerDied, match=r"^lagaug ensemble member 2: its worker process ended .*--resume"):
        pool.wait()
    assert pool._pool is None


def test_the_executor_option_names_every_choice():
    with pytest.raises(ConfigError, match="--executor must be one of local, processes, ray, got 'thread'"):
        make_executor("thread")
