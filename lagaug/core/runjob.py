"""What ``augment``'s :class:`~lagaug.core.loop.Loop` and ``compare``'s
:class:`~lagaug.core.compare.run.Compare` share: a run in a run directory that is prepared, then
carried out, with its torch thread count held for the run, and its lock released and its executor
closed whatever happens."""

from __future__ import annotations

from typing import Any


class RunJob:
    """Subclasses set ``cfg`` (with ``threads``), ``run`` (a :class:`~lagaug.core.rundir.RunDir`)
    and ``executor`` (``None`` until :meth:`prepare` made one) and implement :meth:`prepare`
    (check everything, then create or reopen the run directory) and :meth:`_run`."""

    def execute(self) -> Any:
        from lagaug.core.threads import threads_for_run

        try:
            with threads_for_run(self.cfg.threads):
                self.prepare()
                return self._run()
        finally:
            self.run.release_lock()
            if self.executor is not None:
                self.executor.close()

    def prepare(self) -> None:
        raise NotImplementedError

    def _run(self) -> Any:
        raise NotImplementedError
