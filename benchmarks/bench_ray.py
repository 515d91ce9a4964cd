"""The same ensemble trained by the local executor and on a local two-worker Ray cluster, in one run.

    python benchmarks/bench_ray.py                         # embedded data, 4 members x 10 epochs
    python benchmarks/bench_ray.py --members 6 --epochs 15 --workers 2 --threads 1

The local executor trains the members one after another in this process (``--threads`` torch
threads); the Ray executor starts a cluster of ``--workers`` nodes (one CPU each, on this machine,
``ray.cluster_utils.Cluster``) and sends one task per member. Both use the same seed, so the
script also checks that the members' weights agree bit for bit. It prints both wall times, the
ratio, and Ray's start-up time separately (paid once per run, not per member).
"""

from __future__ import annotations

import argparse
import signal
import time

import torch

from lagaug.core.data import load_data
from lagaug.core.ensemble import preset, train_ensemble
from lagaug.core.executor import Resources, make_executor
from lagaug.core.runtime import stage_generator
from lagaug.core.threads import apply_threads


def timed_ensemble(splits, cfg, executor) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    ens = train_ensemble(splits.train, splits.val, cfg, stage_generator(0, "ensemble"), executor=executor,
                         orientation_invariant=splits.extra.get("orientation_invariant"))
    return time.perf_counter() - start, [m.state_dict() for m in ens.members]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="image folder or .npz [the embedded set]")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2, help="Ray nodes of one CPU each")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per member, local and on Ray")
    ap.add_argument("--niceness", type=int, default=0, help="Ray workers' niceness (Ray's own default: 15)")
    args = ap.parse_args()

    import os

    import ray
    from ray.cluster_utils import Cluster

    # Ray's workers run at nice 15 by default: beside any other busy process they get a fraction
    # of a core. --niceness 0 (the default here, and what lagaug's own local instance uses)
    # compares the executors at equal priority; --niceness 15 shows Ray's default.
    os.environ["RAY_worker_niceness"] = str(args.niceness)

    apply_threads(args.threads)
    splits = load_data(args.data, image_size=args.image_size)
    cfg = preset("cpu", members=args.members, epochs=args.epochs)
    local_s, local_w = timed_ensemble(splits, cfg, make_executor("local"))

    previous = signal.getsignal(signal.SIGTERM)
    start = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=1, include_dashboard=False))
    for _ in range(args.workers - 1):
        cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, logging_level="WARNING")
    startup = time.perf_counter() - start
    try:
        executor = make_executor("ray", resources=Resources(cpus=1, threads=args.threads))
        ray_s, ray_w = timed_ensemble(splits, cfg, executor)
    finally:
        ray.shutdown()
        cluster.shutdown()
        signal.signal(signal.SIGTERM, previous)
    same = all(torch.equal(a[k], b[k]) for a, b in zip(local_w, ray_w) for k in a)
    print(f"{args.members} members x {args.epochs} epochs of {cfg.classifier}, {len(splits.train)} training images "
          f"at {args.image_size} px, {args.threads} torch thread(s) per member, Ray workers at nice {args.niceness}")
    print(f"local executor (one after another):       {local_s:8.1f} s")
    print(f"Ray, {args.workers} one-CPU nodes on this machine:    {ray_s:8.1f} s   (cluster start-up {startup:.1f} s, "
          "not included)")
    print(f"ratio local / Ray:                        {local_s / ray_s:8.2f}x")
    print(f"weights identical member by member:       {same}")


if __name__ == "__main__":
    main()
