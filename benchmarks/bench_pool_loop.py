"""The iterative hard-sample loop in the pool regime: few labelled KolektorSDD patches, the
4,000-patch unlabelled pool, the crack kept (``vqvae2 keep=region``), several rounds.

    python benchmarks/bench_pool_loop.py --draws 6 --threads 1
    python benchmarks/bench_pool_loop.py --draws 2 --iterations 1 --members 1 --epochs 3   # smoke test

``bench_pool.py`` measures one-shot synthesis (one synthetic image per training image, once);
this script measures what ``lagaug augment`` does instead: train an ensemble, pick the ``--hard-k``
images it finds hardest, make ``--variants`` images from each (the generator fitted on the
labelled images plus the pool), add them, retrain, for ``--iterations`` rounds. Each draw is a
class-balanced set of ``--labelled`` patches per class from ``kolektor_64.npz``'s training split
(seeded by its index, written to ``OUT/data/``), with the file's pool, masks and test split; one
``lagaug augment`` run per draw. The table: macro-F1 and AUC of each round (mean ± 95% interval
over draws) and the change against round 0 (the baseline ensemble of the same run), with the exact
paired Wilcoxon test over draws. The generator cache is off (every draw fits its own).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def draw_file(source: Path, out: Path, labelled: int, draw: int) -> Path:
    """``labelled`` training patches per class (draw ``draw``), the pool, the masks, the test split."""
    import numpy as np

    path = out / "data" / f"kolektor-l{labelled}-d{draw}.npz"
    if path.exists():
        return path
    with np.load(source, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    rng = np.random.default_rng(1000 + draw)
    y = arrays["y_train"]
    keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), labelled, replace=False) for c in np.unique(y)]))
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part.npz")
    np.savez_compressed(part, x_train=arrays["x_train"][keep], y_train=y[keep], m_train=arrays["m_train"][keep],
                        x_test=arrays["x_test"], y_test=arrays["y_test"], m_test=arrays["m_test"],
                        x_pool=arrays["x_pool"], class_names=arrays["class_names"])
    part.replace(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE.parent / "shared" / "data" / "kolektor_64.npz")
    parser.add_argument("--draws", type=int, default=6)
    parser.add_argument("--labelled", type=int, default=12, help="labelled patches per class")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--hard-k", type=int, default=4)
    parser.add_argument("--variants", type=int, default=2)
    parser.add_argument("--members", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from lagaug.core.stats import mean_ci, paired_test

    out = args.out or Path(tempfile.gettempdir()) / f"bench-pool-loop-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LAGAUG_CACHE": "off"}
    rows: list[list[dict]] = []
    for d in range(args.draws):
        data = draw_file(args.data, out, args.labelled, d)
        run = out / f"draw{d}"
        cmd = [sys.executable, "-m", "lagaug", "augment", "--method", "vqvae2", "--data", str(data),
               "--unlabeled", f"{data}:x_pool", "--image-size", "64", "--region-source", "mask", "--normal-class", "ok",
               "--iterations", str(args.iterations), "--hard-k", str(args.hard_k), "--variants", str(args.variants),
               "--ensemble", str(args.members), "--epochs", str(args.epochs), "--seed", str(d),
               "--threads", str(args.threads), "--quiet", "--no-report", "--out", str(run)]
        if (run / "config.json").exists():
            cmd.append("--resume")
        start = time.perf_counter()
        with open(out / f"draw{d}.log", "a") as log:
            status = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=HERE).returncode
        if status != 0:
            raise SystemExit(f"draw {d}: lagaug augment failed (exit {status}); see {out / f'draw{d}.log'}")
        rows.append([json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()])
        print(f"draw {d}: {time.perf_counter() - start:.0f} s; F1 by round "
              + " ".join(f"{r['f1_mean']:.3f}" for r in rows[-1]), flush=True)
    print(f"\nlagaug augment --method vqvae2 (keep=region) on {args.labelled}+{args.labelled} labelled patches + pool; "
          f"{args.draws} draws, {args.members} members x {args.epochs} epochs, hard-k {args.hard_k} x {args.variants}")
    print(f"{'round':>5} {'added':>6} {'macro-F1 %':>13} {'AUC %':>13} {'Δ F1 vs 0':>10} {'p':>7} {'Δ AUC':>7} {'p':>7}")
    for it in range(args.iterations + 1):
        f1 = [r[it]["f1_mean"] for r in rows]
        auc = [r[it]["auc_mean"] for r in rows]
        added = sum(r[it]["synthetic_total"] for r in rows) / len(rows)
        fm, fh = mean_ci(f1)
        am, ah = mean_ci(auc)
        line = f"{it:>5} {added:>6.1f} {100 * fm:>6.1f} ± {100 * fh:<4.1f} {100 * am:>6.1f} ± {100 * ah:<4.1f}"
        if it:
            tf = paired_test(f1, [r[0]["f1_mean"] for r in rows])
            ta = paired_test(auc, [r[0]["auc_mean"] for r in rows])
            line += f" {100 * tf['delta']:>+10.1f} {tf['p']:>7.3g} {100 * ta['delta']:>+7.1f} {ta['p']:>7.3g}"
        print(line)
    print(f"runs in {out}")


if __name__ == "__main__":
    main()
