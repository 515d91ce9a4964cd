"""Time the README's main job (``lagaug augment --method vqvae2 --hard-k 2``) side by side with an
older checkout, cold (no cache) and warm (the cache of the first run), idle and beside a busy process.

    python benchmarks/bench_augment.py --baseline /tmp/base          # a worktree of the commit to beat
    python benchmarks/bench_augment.py --baseline /tmp/base --busy   # also beside one busy process
    python benchmarks/bench_augment.py -- --method vae --iterations 1
    python benchmarks/bench_augment.py --also="--executor processes"  # this tree with other options too

Each run is a fresh process (``python -c`` importing lagaug from the tree named), in a fresh run
folder, with ``LAGAUG_CACHE`` pointing to a fresh folder per tree (cold) or to the one the cold run
filled (warm). Wall time and peak memory are measured from the outside: the child's own maximum
resident set, and the peak of the resident sets of the child and every process under it summed
(sampled ten times a second: worker processes count); the stage seconds come from the run's ``metrics.jsonl`` where the tree writes them.
The runs alternate between the trees, so both see the same machine. Run it by hand; it prints a
table and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
CHILD = "import sys; sys.path.insert(0, sys.argv[1]); from lagaug.cli.main import main; main(sys.argv[2:])"


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and every process under it, summed (Linux ``/proc``)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(stat[1]), []).append(int(entry))
        rss[int(entry)] = int(stat[21])
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_once(tree: Path, args: list[str], out: Path, cache: Path | None, env_extra: dict) -> dict:
    env = {**os.environ, "LAGAUG_CACHE": str(cache) if cache else "off", **env_extra}
    env.pop("OMP_NUM_THREADS", None)
    cmd = [sys.executable, "-c", CHILD, str(tree), "augment", *args, "--out", str(out), "--quiet", "--no-report"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=out.parent)
    peak, running = [0.0], threading.Event()
    running.set()

    def sample() -> None:
        while running.is_set():
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    running.clear()
    sampler.join()
    wall = time.perf_counter() - start
    stdout, stderr = proc.stdout.read().decode(), proc.stderr.read().decode()
    if status != 0:
        raise SystemExit(f"{tree}: lagaug augment failed ({status}):\n{stderr[-2000:]}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    quality = [line for line in stdout.splitlines() if line.startswith("round ")]
    return {"wall": wall, "rss_mb": usage.ru_maxrss / 1024, "tree_mb": peak[0], "rows": rows, "quality": quality}


def busy_process() -> subprocess.Popen:
    """One other process keeping one core busy (a pure-Python loop)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def stages(rows: list[dict]) -> str:
    parts = []
    for r in rows:
        sec = r.get("seconds") or {}
        fit = sec.get("generator_fit")
        if fit is not None:
            parts.append(f"fit {fit:.0f}s{' (cache)' if sec.get('generator_reused') else ''}")
        if "ensemble" in sec:
            parts.append(f"ens{r['iteration']} {sec['ensemble']:.0f}s")
    return ", ".join(parts) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another checkout of lagaug to time beside this one")
    parser.add_argument("--busy", action="store_true", help="also time beside one busy process")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--also", action="append", default=[], metavar="ARGS",
                        help="time this tree with these augment options added too (repeatable)")
    parser.add_argument("augment_args", nargs="*", help="after --: lagaug augment options")
    args = parser.parse_args()
    job = args.augment_args or ["--method", "vqvae2", "--hard-k", "2"]
    trees = [("this", HERE, [])] + [(f"this {extra}", HERE, extra.split()) for extra in args.also]
    trees += [("baseline", args.baseline.resolve(), [])] if args.baseline else []
    results: dict[tuple, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for rep in range(args.repeats):
            for condition in (["idle", "busy"] if args.busy else ["idle"]):
                for t, (name, tree, extra) in enumerate(trees):
                    cache = tmp / f"cache-{t}-{rep}-{condition}"
                    hog = busy_process() if condition == "busy" else None
                    try:
                        cold = run_once(tree, job + extra, tmp / f"{t}-{rep}-{condition}-cold", cache, {})
                        warm = run_once(tree, job + extra, tmp / f"{t}-{rep}-{condition}-warm", cache, {})
                    finally:
                        if hog is not None:
                            hog.kill()
                    results.setdefault((name, condition, "cold"), []).append(cold)
                    results.setdefault((name, condition, "warm"), []).append(warm)
                    print(f"{name:>8} {condition:>4} cold {cold['wall']:6.1f}s {cold['rss_mb']:6.0f} MB "
                          f"(all processes {cold['tree_mb']:6.0f} MB)  [{stages(cold['rows'])}]"
                          f" | warm {warm['wall']:6.1f}s  [{stages(warm['rows'])}]", flush=True)
    print(f"\nlagaug augment {' '.join(job)}")
    print(f"{'tree':>8} {'load':>4} {'run':>4} {'wall s (mean)':>14} {'peak MB':>8} {'all procs MB':>13}")
    for (name, condition, kind), runs in results.items():
        wall = sum(r["wall"] for r in runs) / len(runs)
        rss = max(r["rss_mb"] for r in runs)
        tree_mb = max(r["tree_mb"] for r in runs)
        print(f"{name:>8} {condition:>4} {kind:>4} {wall:14.1f} {rss:8.0f} {tree_mb:13.0f}")
    for condition in (["idle", "busy"] if args.busy else ["idle"]):
        if args.baseline:
            a = sum(r["wall"] for r in results[("this", condition, "cold")])
            b = sum(r["wall"] for r in results[("baseline", condition, "cold")])
            print(f"{condition}: this / baseline (cold) = {a / b:.2f}")
        for name, _, extra in trees[1:]:
            if extra:
                a = sum(r["wall"] for r in results[(name, condition, "cold")])
                b = sum(r["wall"] for r in results[("this", condition, "cold")])
                print(f"{condition}: {name} / this (cold) = {a / b:.2f}")
    if args.busy:
        for name, _, _ in trees[:-1] if args.baseline else trees:
            a = sum(r["wall"] for r in results[(name, "busy", "cold")])
            b = sum(r["wall"] for r in results[(name, "idle", "cold")])
            print(f"{name}: busy / idle (cold) = {a / b:.2f}")
    last = results[("this", "idle", "cold")][-1]
    for line in last["quality"]:
        print("this, idle:", line)


if __name__ == "__main__":
    main()
