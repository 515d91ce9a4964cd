"""How many CPU threads torch uses, set by lagaug itself and recorded with the run.

torch picks its intra-op thread count from the machine's cores, not from what the process may use,
and on a shared machine extra threads wait on cores that other jobs hold: on a 2-core machine with
one core busy, a run with 2 threads took 19:55 and the same run with 1 thread 1:49. So the CLI
sets the count (``--threads``, default :func:`default_threads`: the usable cores less those that
other processes keep busy when the run starts) with :func:`apply_threads` and saves it in the
run's config.

Results are bit-identical only for the same thread count: a parallel reduction adds its terms in
an order that depends on how the work is split, so 1 and 2 threads give slightly different sums.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lagaug.core.errors import ConfigError

_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def _cgroup_limit() -> int | None:
    """Whole cores allowed by a cgroup v2 CPU quota (containers), or None when unlimited/unknown."""
    try:
        quota, period = _CGROUP_CPU_MAX.read_text().split()[:2]
        if quota == "max":
            return None
        return max(1, math.floor(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (``os.sched_getaffinity``), capped by a
    cgroup CPU quota when there is one; ``os.cpu_count()`` where affinity is not available."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    limit = _cgroup_limit()
    return max(1, min(cores, limit) if limit else cores)


_PROC_STAT = Path("/proc/stat")


def _cpu_times() -> tuple[int, int] | None:
    """``(busy, total)`` jiffies of the whole machine from ``/proc/stat`` (None where there is none)."""
    try:
        fields = [int(v) for v in _PROC_STAT.read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(window: float = 0.25) -> int:
    """How many of the machine's cores other processes keep busy, measured over ``window`` seconds
    (0 where it cannot be measured)."""
    import time

    first = _cpu_times()
    if first is None:
        return 0
    time.sleep(window)
    second = _cpu_times()
    if second is None or second[1] <= first[1]:
        return 0
    share = (second[0] - first[0]) / (second[1] - first[1])
    return int(round(share * (os.cpu_count() or 1)))


def default_threads() -> int:
    """The usable cores (:func:`usable_cores`) less those other processes keep busy right now
    (:func:`busy_cores`; at least 1): beside one busy process on 2 cores, 1 thread. Threads that
    wait for a core another job holds make torch many times slower, not a little (see above).
    The count is saved with the run; give ``--threads`` for bit-identical reruns."""
    cores = usable_cores()
    if cores == 1:
        return 1
    return max(1, cores - busy_cores())


def check_threads(n) -> int:
    """``n`` as a thread count of at least 1; a ConfigError names ``--threads`` otherwise."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"--threads must be a whole number of at least 1, got {n!r}")
    return n


def apply_threads(n: int) -> int:
    """Make torch use ``n`` threads; returns the intra-op count that was in force before.

    Sets torch's intra-op threads (the pool that convolutions and matrix products split over, which
    also sets OpenMP's and MKL's counts) and, when torch still allows it (only before any parallel
    work has run in the process), the inter-op threads too. ``OMP_NUM_THREADS`` is set as well, so
    that child processes (data workers, subprocesses) start with the same count.
    """
    import torch

    check_threads(n)
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # already fixed once work has run; the intra-op count is what matters
        pass
    os.environ["OMP_NUM_THREADS"] = str(n)
    return before


@contextmanager
def threads_for_run(n: int | None) -> Iterator[None]:
    """Run the body with torch at ``n`` threads (``None``: leave the count as it is) and restore
    the previous count after — what ``AugmentConfig.threads`` / ``CompareConfig.threads`` mean
    when lagaug is used from Python, where the CLI's ``--threads`` handling does not run."""
    if n is None:
        yield
        return
    import torch

    env = os.environ.get("OMP_NUM_THREADS")
    before = apply_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = env
