"""What ``augment``'s :class:`~lagaug.core.run.loop.Loop` and ``compare``'s
:class:`~lagaug.core.compare.run.Compare` share: a run in a run directory that is prepared, then
carried out, with its torch thread count held for the run, and its lock released and its executor
closed whatever happens."""

from __future__ import annotations

import dataclasses
from typing import Any


class RunJob:
    """Subclasses set ``cfg`` (with ``threads``), ``run`` (a :class:`~lagaug.core.store.rundir.RunDir`)
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

    def open_run(self, may_grow: frozenset[str] = frozenset()) -> None:
        """The end of every :meth:`prepare`, once every check has passed: the fingerprints of data,
        pool and generator (how a resumed run is recognised), the executor (an unreachable cluster
        fails here, before any write), then the run directory created or reopened
        (``may_grow``: counts a resume may raise) and ``data.json`` written. Needs ``splits``,
        ``device`` and ``resume`` set."""
        from lagaug.core.data.identity import generator_fingerprint, pool_fingerprint, splits_fingerprint
        from lagaug.core.executor import job_resources, make_executor

        cfg = self.cfg
        self.identity = {"data": splits_fingerprint(self.splits), "unlabeled": pool_fingerprint(self.splits.unlabeled),
                         "generator": generator_fingerprint(cfg.generator)}
        self.executor = make_executor(cfg.executor, cfg.ray_address,
                                      job_resources(cfg.threads, self.device.type, cfg.ray_gpus))
        self.run.start(dataclasses.asdict(cfg), self.resume, self.identity, may_grow=may_grow)
        self.run.write_data_summary(self.splits.summary())

    def _run(self) -> Any:
        raise NotImplementedError
