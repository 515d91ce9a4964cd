"""The Ray executor on a real two-node Ray cluster on this machine (one CPU each, a small object
store), shared by the whole module: members and cells give the same bits as in-process training,
a task whose worker is killed is retried with the same result, Ctrl-C cancels what is out and
leaves a run that resumes under either executor."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from contextlib import contextmanager

import pytest

ray = pytest.importorskip("ray", reason='the Ray executor needs the extra: pip install "lagaug[ray]"')

import torch  # noqa: E402
from helpers import expose_example_plugin, invoke  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from lagaug import hookimpl  # noqa: E402
from lagaug.core.compare import CompareConfig, run_compare  # noqa: E402
from lagaug.core.contract.plugins import make_plugin_manager  # noqa: E402
from lagaug.core.progress import Progress  # noqa: E402
from lagaug.core.run.loop import AugmentConfig, Loop, run_augment  # noqa: E402
from lagaug.testing import TEST_ENSEMBLE, learnable_npz  # noqa: E402

SMALL = dict(TEST_ENSEMBLE, epochs=4)  # members of about half a second


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes of one CPU each; this process joins them once (the executor reuses that)."""
    from ray.cluster_utils import Cluster

    store = 200 * 1024**2
    previous = signal.getsignal(signal.SIGTERM)
    c = Cluster(initialize_head=True,
                head_node_args=dict(num_cpus=1, object_store_memory=store, include_dashboard=False))
    try:
        c.add_node(num_cpus=1, object_store_memory=store)
        ray.init(address=c.address, logging_level="WARNING")
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return learnable_npz(tmp_path_factory.mktemp("data") / "learn.npz")


def config(data, out, **kw) -> AugmentConfig:
    base = dict(method="jitter", hard_k=2, iterations=1, variants=1, data=str(data), image_size=16,
                classifier_set=dict(SMALL), out=str(out), seed=3, threads=1)
    return AugmentConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data):
    """The same run trained in this process: what every Ray run must reproduce."""
    with pytest.MonkeyPatch.context() as mp:
        site = tmp_path_factory.mktemp("site")
        expose_example_plugin(site)
        mp.syspath_prepend(str(site))
        mp.delenv("LAGAUG_LOAD_PLUGINS", raising=False)
        out = tmp_path_factory.mktemp("ref") / "run"
        run_augment(config(data, out), plugins=make_plugin_manager())
    return out


def weights(run, it: int) -> list[dict]:
    folder = run / "iterations" / f"it{it:03d}" / "ensemble"
    return [load_file(str(p)) for p in sorted(folder.glob("member_*.safetensors"))]


def same_weights(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
                                    for x, y in zip(a, b))


def metrics(run, it: int) -> dict:
    return json.loads((run / "iterations" / f"it{it:03d}" / "metrics.json").read_text())


def task_processes(cluster, name: bytes = b"ray::lagaug") -> list[int]:
    """Worker processes of *this* cluster that are running a lagaug task now."""
    raylets = {n.all_processes["raylet"][0].process.pid for n in cluster.list_all_nodes()}
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
            ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if cmd.startswith(name) and ppid in raylets:
            found.append(int(pid))
    return found


def test_members_on_ray_match_local_bit_for_bit_and_record_their_node(cluster, reference, data, plugins, tmp_path):
    out = tmp_path / "ray"
    result = invoke("augment", "--method", "jitter", "--hard-k", 2, "--iterations", 1, "--data", data,
                    "--image-size", 16, "--seed", 3, "--threads", 1, "--out", out, "--quiet", "--no-report",
                    "--executor", "ray", "--ray-address", cluster.address,
                    *[x for k, v in SMALL.items() for x in ("--classifier-set", f"{k}={v}")], plugins=plugins)
    assert result.returncode == 0, result.stderr
    nodes = {n.node_id for n in cluster.list_all_nodes()}
    for it in (0, 1):
        assert same_weights(weights(out, it), weights(reference, it))
        ours, theirs = metrics(out, it), metrics(reference, it)
        assert ours["per_member"] == theirs["per_member"] and ours["auc_mean"] == theirs["auc_mean"]
        assert ours["executor"] == "ray" and theirs["executor"] == "local"
        # each member records where it ran: two members at once, one CPU per node, so both nodes
        assert {m["node_id"] for m in ours["members"]} == nodes
    assert (out / "iterations/it000/scores.csv").read_bytes() == (reference / "iterations/it000/scores.csv").read_bytes()
    assert (out / "synthetic/it001/00000.png").read_bytes() == (reference / "synthetic/it001/00000.png").read_bytes()
    assert task_processes(cluster) == []  # nothing left running


def test_cells_on_ray_match_local_and_keep_their_weights(cluster, data, plugins, tmp_path):
    def run(executor, out):
        cfg = CompareConfig(method="jitter", arms=["real", "classic", "jitter"], data=str(data), image_size=16,
                            repeats=1, ensemble=dict(SMALL), executor=executor, out=str(tmp_path / out),
                            keep_checkpoints=True, threads=1)
        return run_compare(cfg, plugins=plugins)

    local, remote = run("local", "local"), run("ray", "ray")
    strip = lambda c: {k: v for k, v in c.items() if k not in ("seconds", "node", "node_id", "executor")}  # noqa: E731
    assert [strip(c) for c in remote.cells] == [strip(c) for c in local.cells]
    assert {c["node_id"] for c in remote.cells} <= {n.node_id for n in cluster.list_all_nodes()}
    assert all(c["executor"] == "ray" for c in remote.cells)
    for arm in ("real", "classic", "jitter"):
        folder = f"repeats/r000/arms/{arm}/ensemble"
        mine = [load_file(str(p)) for p in sorted((remote.run_dir / folder).glob("*.safetensors"))]
        assert same_weights(mine, [load_file(str(p)) for p in sorted((local.run_dir / folder).glob("*.safetensors"))])
        assert len(mine) == 2
    assert json.dumps(remote.rows) == json.dumps(local.rows)  # (NaN intervals: one repeat)


class Killer(threading.Thread):
    """SIGKILLs the first worker of the cluster seen running a member task (once)."""

    def __init__(self, cluster):
        super().__init__(daemon=True)
        self.cluster, self.killed, self.done = cluster, None, threading.Event()

    def run(self):
        while not self.done.is_set():
            busy = task_processes(self.cluster)
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                self.killed = busy[0]
                return
            time.sleep(0.02)


def test_a_killed_workers_task_is_retried_with_the_same_result(cluster, reference, data, plugins, tmp_path):
    killer = Killer(cluster)
    killer.start()
    try:
        run_augment(config(data, tmp_path / "run", iterations=0, executor="ray"), plugins=plugins)
    finally:
        killer.done.set()
        killer.join()
    assert killer.killed is not None  # a worker really died mid-task
    assert same_weights(weights(tmp_path / "run", 0), weights(reference, 0))
    assert metrics(tmp_path / "run", 0)["per_member"] == metrics(reference, 0)["per_member"]


class InterruptAt(Progress):
    """Quiet progress that raises KeyboardInterrupt (as Ctrl-C would) when a bar's status says ``when``."""

    def __init__(self, when: str):
        super().__init__(quiet=True)
        self.when = when

    @contextmanager
    def task(self, description, total):
        when = self.when

        class Bar:
            def advance(self, n=1, status=None):
                self.set_status(status or "")

            def set_status(self, status):
                if when in status:
                    raise KeyboardInterrupt

        yield Bar()


def test_ctrl_c_cancels_outstanding_tasks_and_the_run_resumes_locally(cluster, data, plugins, tmp_path):
    three = dict(SMALL, members=3)  # two run at once on the two nodes, the third waits
    part, whole = tmp_path / "part", tmp_path / "whole"
    loop = Loop(config(data, part, iterations=0, executor="ray", classifier_set=three),
                progress=InterruptAt("done on"), plugins=plugins)
    with pytest.raises(KeyboardInterrupt):
        loop.execute()
    saved = sorted((part / "iterations/it000/ensemble").glob("member_*.safetensors"))
    assert 1 <= len(saved) < 3 and not (part / "iterations/it000/metrics.json").exists()
    assert len(loop.executor.cancelled) == 3 - len(saved)  # what was still out was cancelled, by Ray
    for ref in loop.executor.cancelled:  # cancelled, or (a race) finished between the last poll and
        try:                             # the cancel: then its result is dropped and resume retrains it
            ray.get(ref, timeout=30)
        except (ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError):
            pass
    deadline = time.time() + 30
    while task_processes(cluster) and time.time() < deadline:
        time.sleep(0.5)
    assert task_processes(cluster) == []  # nothing left running on the cluster
    before = {p: p.stat().st_mtime_ns for p in saved}

    run_augment(config(data, part, iterations=0, classifier_set=three), resume=True, plugins=plugins)
    run_augment(config(data, whole, iterations=0, classifier_set=three), plugins=plugins)
    assert same_weights(weights(part, 0), weights(whole, 0))
    assert metrics(part, 0)["per_member"] == metrics(whole, 0)["per_member"]
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())  # finished members were not redone


class StopAfter:
    @hookimpl
    def lagaug_iteration_end(self, iteration, metrics, added, run_dir):
        raise KeyboardInterrupt


def test_a_local_run_resumes_on_ray_with_the_same_figures(cluster, reference, data, example_plugin, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        Loop(config(data, out), plugins=make_plugin_manager(extra_plugins=[("stop", StopAfter())])).execute()
    assert metrics(out, 0)["executor"] == "local" and not (out / "iterations/it001").exists()
    run_augment(config(data, out, executor="ray"), resume=True, plugins=make_plugin_manager())
    assert metrics(out, 1)["executor"] == "ray"
    assert same_weights(weights(out, 1), weights(reference, 1))
    assert metrics(out, 1)["per_member"] == metrics(reference, 1)["per_member"]
    assert json.loads((out / "config.json").read_text())["executor"] == "local"  # the run's record is unchanged
