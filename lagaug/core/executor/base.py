"""The executors' shared parts: what a job asks of a node (:class:`Resources`), the
:class:`Executor` interface, the in-process :class:`LocalExecutor`, and the option checks. Ray's
executor (:mod:`.ray_backend`) builds on these; :func:`lagaug.core.executor.make_executor` picks one."""


from __future__ import annotations

import importlib.util
import socket
import sys
from dataclasses import dataclass
from typing import Any, Callable

from lagaug.core.errors import ConfigError

EXECUTORS = ("local", "ray")
INSTALL_HINT = 'pip install "lagaug[ray]"'

OnDone = Callable[[Any, dict], None]


@dataclass(frozen=True)
class Resources:
    """What one job asks of a Ray node: CPU cores, a GPU or a share of one, and the torch thread
    count it runs with (``None``: leave torch's own choice)."""

    cpus: float = 1.0
    gpus: float = 0.0
    threads: int | None = None


def job_resources(threads: int | None, device_type: str, gpus: float | None) -> Resources:
    """A job's resources from the run's options: one CPU per torch thread (at least one), and on a
    CUDA device ``gpus`` of a GPU (default a whole one)."""
    n = threads or 1
    share = 0.0 if device_type != "cuda" else (1.0 if gpus is None else float(gpus))
    return Resources(cpus=float(n), gpus=share, threads=n)


def this_node() -> dict:
    """Where this code runs: ``{"node": host name}``, plus ``"node_id"`` (Ray's) inside Ray."""
    node = {"node": socket.gethostname()}
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        try:
            node["node_id"] = ray.get_runtime_context().get_node_id()
        except Exception:  # a Ray Client driver has no node of its own
            pass
    return node


def run_job(fn: Callable, threads: int | None, *args: Any) -> tuple[Any, dict]:
    """The body of every job that runs outside the driver (a Ray task): set torch's thread count,
    run the job, say where it ran."""
    if threads:
        from lagaug.core.threads import apply_threads

        apply_threads(threads)
    return fn(*args), this_node()


def node_label(node: dict) -> str:
    """``host`` or ``host/1a2b3c4d`` (the start of Ray's node id: nodes may share a host name)."""
    return node["node"] + (f"/{node['node_id'][:8]}" if node.get("node_id") else "")


def check_executor_options(executor: str, ray_address: str | None, ray_gpus: float | None) -> None:
    """One-line errors for the executor options, before any work (imports nothing heavy)."""
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if executor != "ray":
        for option, value in (("--ray-address", ray_address), ("--ray-gpus", ray_gpus)):
            if value is not None:
                raise ConfigError(f"{option} is only used with --executor ray; add --executor ray or drop {option}")
        return
    if ray_gpus is not None and not (ray_gpus >= 0 and (ray_gpus <= 1 or float(ray_gpus).is_integer())):
        raise ConfigError(f"--ray-gpus must be a share of one GPU (0 to 1) or a whole number, got {ray_gpus!r}")
    if importlib.util.find_spec("ray") is None:
        raise ConfigError(f"--executor ray: Ray is not installed; install it with {INSTALL_HINT}")


class Executor:
    """Runs jobs and hands their results to the driver; see the module docstring.

    ``in_process``: jobs run in this process, receive the ``inproc`` keyword arguments of
    :meth:`submit` (progress bars, a checkpoint folder the driver itself writes) and report their
    own progress; otherwise they run elsewhere and the caller advances its bars in ``on_done``.
    """

    name = "local"
    in_process = True

    def __init__(self, resources: Resources | None = None):
        self.resources = resources or Resources()

    def put(self, value: Any) -> Any:
        """A handle on ``value`` that jobs take as an argument (Ray: stored once in the object store)."""
        return value

    def job_device(self, device) -> str:
        """The device jobs run on, as they should name it (Ray shows each task only its own GPUs)."""
        return str(device)

    def submit(self, fn: Callable, *args: Any, name: str, on_done: OnDone, inproc: dict | None = None) -> None:
        """Run ``fn(*args)`` (``+ inproc`` keywords when in this process) and call
        ``on_done(result, node)`` on this thread when it finishes (:func:`this_node`)."""
        raise NotImplementedError

    def wait(self) -> None:
        """Block until every submitted job has finished and its ``on_done`` has run. On any
        exception (Ctrl-C too) the jobs still out are cancelled and the exception goes on."""

    def poll(self) -> None:
        """Call ``on_done`` for the jobs that have finished by now, without waiting."""

    def close(self) -> None:
        """Let go of what the executor holds (a Ray instance it started or joined)."""

    def describe(self) -> str:
        return self.name

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalExecutor(Executor):
    """Every job runs at once, here, in submission order (lagaug's behaviour before executors)."""

    def submit(self, fn: Callable, *args: Any, name: str, on_done: OnDone, inproc: dict | None = None) -> None:
        result = fn(*args, **(inproc or {}))
        on_done(result, this_node())
