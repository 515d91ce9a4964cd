"""Where a run's independent jobs execute: in this process, or as Ray tasks on a cluster.

A run has jobs that need nothing from each other: the members of one ensemble (``augment``), the
cells of a comparison (``compare``). The run hands each one to an :class:`Executor` as a top-level
function and its arguments, with an ``on_done(result, node)`` callback; the executor calls the
callback on the driver's thread as each job finishes, so the driver stays the only writer of the
run directory (atomically, as always) and ``--resume`` works the same whichever executor ran the
jobs, or a mix of them.

* :class:`LocalExecutor` (``--executor local``, the default) runs each job at once, in this
  process, as lagaug always has; the job reports its own progress. It imports nothing.
* :class:`~lagaug.core.executor.ray_backend.RayExecutor` (``--executor ray``) sends each job to a
  Ray cluster as one task with its resources declared (:class:`Resources`); large arguments go
  to the object store once (:meth:`Executor.put`). Ray is imported only when it is chosen.

The interface, the local executor and the resources live in :mod:`.base`, Ray's in
:mod:`.ray_backend` (imported only when chosen); this package names them all.

Jobs are pure functions of their arguments (every seed is an argument), so a job returns the same
result wherever it runs; on CPU with the same thread count, bit for bit.
"""

from __future__ import annotations

from lagaug.core.executor.base import (  # noqa: F401
    EXECUTORS,
    INSTALL_HINT,
    Executor,
    LocalExecutor,
    OnDone,
    Resources,
    check_executor_options,
    job_resources,
    node_label,
    this_node,
)


def make_executor(kind: str, address: str | None = None, resources: Resources | None = None,
                  connect_timeout: float | None = None) -> Executor:
    """The executor ``kind`` (``local`` or ``ray``); ``ray`` starts a local Ray instance when
    ``address`` is ``None`` and joins a running cluster otherwise (``auto``, ``HOST:PORT``,
    ``ray://HOST:PORT``). A process that has already called ``ray.init()`` keeps its connection."""
    check_executor_options(kind, address if kind == "ray" else None, None)
    if kind == "local":
        return LocalExecutor(resources)
    from lagaug.core.executor.ray_backend import RayExecutor

    return RayExecutor(address, resources=resources, connect_timeout=connect_timeout)


__all__ = ["EXECUTORS", "INSTALL_HINT", "Executor", "LocalExecutor", "Resources", "check_executor_options",
           "job_resources", "make_executor", "node_label", "this_node"]
