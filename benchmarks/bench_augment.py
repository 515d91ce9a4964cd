"""Time ``lagaug augment`` stage by stage (by default the README's main command, vqvae2).

    python benchmarks/bench_augment.py                      # lagaug augment --method vqvae2 --hard-k 2
    python benchmarks/bench_augment.py --method vae --threads 2

Every long stage reports through lagaug's Progress; this script records how long each task took
and prints a table plus the total wall time (data loading included). Run it by hand: the figures
depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import contextmanager

import torch

from lagaug.core.loop import AugmentConfig, run_augment
from lagaug.core.progress import Progress


class TimingProgress(Progress):
    """A quiet Progress that records the wall time of every task."""

    def __init__(self):
        super().__init__(quiet=True)
        self.records: list[tuple[str, float]] = []

    @contextmanager
    def task(self, description, total):
        start = time.perf_counter()
        with super().task(description, total) as handle:
            yield handle
        self.records.append((description, time.perf_counter() - start))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="vqvae2")
    parser.add_argument("--hard-k", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    progress = TimingProgress()
    with tempfile.TemporaryDirectory() as out:
        cfg = AugmentConfig(method=args.method, hard_k=args.hard_k, iterations=args.iterations,
                            device=args.device, out=out)
        start = time.perf_counter()
        result = run_augment(cfg, progress)
        total = time.perf_counter() - start
    print(f"lagaug augment --method {args.method} --hard-k {args.hard_k} --iterations {args.iterations} "
          f"(torch threads: {torch.get_num_threads()})")
    print(f"{'stage':<58} {'seconds':>8}")
    for name, secs in progress.records:
        print(f"{name:<58} {secs:8.1f}")
    timed = sum(s for _, s in progress.records)
    print(f"{'other (data, scoring, writing)':<58} {total - timed:8.1f}")
    print(f"{'total':<58} {total:8.1f}")
    print("AUC per iteration: " + ", ".join(f"{r['auc_mean']:.3f}±{r['auc_ci']:.3f}" for r in result.rows))


if __name__ == "__main__":
    main()
