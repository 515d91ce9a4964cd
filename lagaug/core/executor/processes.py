"""Jobs in worker processes on this machine (``--executor processes``): the cores a run may use
split into workers of ``--threads`` threads each, every job in one of them.

Small networks on a CPU use a second thread poorly — a convolution on a 32-pixel batch is over
before the threads have split it — so two members trained side by side, one thread each, finish
sooner than the same two one after the other with two threads each. The workers are started
(``spawn``: a fresh interpreter, never a fork of a process that holds torch's thread pools) at the
first job and kept for the run; each imports torch once. A job runs :func:`~lagaug.core.executor.base.run_job`
with the run's thread count, so it gives the figures it gives in this process with that count.

Results come back to the driver, which writes them (``on_done`` on its own thread), as with Ray.
On an error or Ctrl-C the jobs not started are cancelled and the workers stopped; finished jobs
have been written, so ``--resume`` loses nothing.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable

from lagaug.core.errors import LagaugError
from lagaug.core.executor.base import Executor, OnDone, Resources, run_job


class WorkerDied(LagaugError):
    """A worker process ended while it ran a job (killed, or out of memory)."""


class ProcessExecutor(Executor):
    """``workers`` processes, each running one job at a time with ``resources.threads`` threads."""

    name = "processes"
    in_process = False

    def __init__(self, resources: Resources | None = None, workers: int = 2):
        super().__init__(resources)
        self.workers = max(1, int(workers))
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict[Future, tuple[str, OnDone]] = {}

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def submit(self, fn: Callable, *args: Any, name: str, on_done: OnDone, inproc: dict | None = None) -> None:
        future = self._started().submit(run_job, fn, self.resources.threads, *args)
        self._pending[future] = (name, on_done)

    def _finish(self, future: Future) -> None:
        name, on_done = self._pending.pop(future)
        try:
            result, node = future.result()
        except BrokenProcessPool:
            raise WorkerDied(f"{name}: its worker process ended while it ran (killed, or out of memory?); "
                             "run again with --resume (finished work is kept), or with --executor local") from None
        on_done(result, node)

    def poll(self) -> None:
        for future in [f for f in self._pending if f.done()]:
            self._finish(future)

    def wait(self) -> None:
        try:
            while self._pending:
                done, _ = wait(list(self._pending), return_when=FIRST_COMPLETED)
                for future in done:
                    self._finish(future)
        except BaseException:
            self._stop()
            raise

    def _stop(self) -> None:
        """Cancel what has not started and stop the workers (a job in progress is lost, not written)."""
        self._pending.clear()
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)

    def close(self) -> None:
        if self._pool is not None and not self._pending:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True)
        else:
            self._stop()

    def describe(self) -> str:
        threads = self.resources.threads or 1
        return f"{self.workers} worker processes × {threads} thread{'s' if threads > 1 else ''}"
