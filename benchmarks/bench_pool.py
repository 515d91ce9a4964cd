"""Every augmentation method against the non-generative alternatives in the pool regime: few labelled
images and a large unlabelled pool, one ``lagaug compare`` run per data set, summed up in one table.

    python benchmarks/bench_pool.py                                   # kolektor, 8 repeats, every arm
    python benchmarks/bench_pool.py --dataset kolektor,neu,mnist --repeats 12 --members 3
    python benchmarks/bench_pool.py --dataset kolektor --quick --methods cut-paste,vqvae2   # smoke test
    python benchmarks/bench_pool.py --dataset neu --dry-run           # print the compare command lines
    python benchmarks/bench_pool.py --set vqvae2:preset=sharp64 -- --budget steps

Arms: ``real``, ``classic``, ``duplicate``, ``pseudo-label`` (the pool labelled by the repeat's own
ensemble) and one arm per generative method — ``vqvae2`` (the defect's codes kept, the rest
resampled), ``vae``, ``aae-mixup``, ``stylegan2``, ``vae-overlay`` — and, on data with masks, the
``cut-paste`` baseline and two ``vqvae2`` variants given as their own ``--arm``: ``vq-pool``
(``transplant=pool``: the kept defect on a background from the pool) and ``vq-ok``
(``classes=ok``: only defect-free images resampled, the VQ-VAE-2 paper's best setting). The arms of
one method share one generator fit per repeat. ``--methods`` keeps only some generative arms (a
label, or a method name for all its arms); the four fixed arms always run.

The data sets (``--data-dir``, default ``../shared/data`` beside the repository; see its README files):

* ``kolektor`` — ``kolektor_64.npz`` as it is: its labelled training split (95 defect, 200 ok
  patches; a fifth of each class carved off for validation) and its own pool ``x_pool`` (4,000 ok
  patches) via ``--unlabeled FILE:x_pool``; regions from the crack masks (``--region-source mask``),
  ``ok`` the defect-free class.
* ``neu`` — ``neu_det_64.npz`` has no pool, so the script makes one. Its training split is divided
  once, with ``--seed``, class by class: ``--labelled`` images per class (default 10) become the
  labelled training images (``x_train``) and the rest the pool (``x_pool``, 1,380 images; labels
  dropped); the test split is kept whole. The file is written to ``OUT/data/`` and named by its
  settings, and ``compare`` reads it like any other (``--data FILE --unlabeled FILE:x_pool``).
* ``mnist`` — ``mnist.npz`` the same way: 10 per digit labelled, a pool of ``--pool-size`` (default
  20,000) other training digits, at 32 px (``vqvae2`` and ``stylegan2`` need a multiple of 8 and a
  power of two); the test set is a fixed class-balanced 2,000 of the 10,000 (``--test-size``; 0: all).

Pool images pixel-identical to a test image are dropped from a made pool (``compare`` refuses a pool
holding a test image). With ``--reservoir R`` (R > ``--labelled``) the labelled part holds R images
per class and ``compare --train-size`` draws ``--labelled`` per class from it afresh in every repeat
(its own generator fit per repeat); by default every repeat uses the same labelled images, like
``kolektor``, and differs in its seeds only (one generator fit in all). Neither NEU nor MNIST has a
defect-free class or masks, so their runs find no regions (``--region-source none``: every method
varies the whole image) and leave out ``cut-paste``, ``vq-pool`` and ``vq-ok``.

The classifiers are ``compare``'s cpu preset with ``--members`` x ``--epochs`` (2 x 20 by default,
small for a CPU). The generators run at their own defaults (``--set METHOD:key=value`` changes
them); on a CPU ``vae-overlay`` costs the most by far: its default ``mode=faithful`` trains one small
VAE per source image in every repeat (160 steps each), so a full ``kolektor`` run with it takes days
on one core — ``--set vae-overlay:mode=shared`` (the class VAEs of the fit, no training per image)
or ``--methods`` without it keeps the run to hours. ``--quick`` makes a smoke test of it: 2 repeats,
1 member, 3 epochs, and every generator trained for a few steps (through ``--arm
LABEL=METHOD:key=value``, see ``QUICK``). The generator cache is off (``LAGAUG_CACHE=off`` unless
it is set already), so every run fits its own and the wall time is honest.

Per data set the script prints the command line, its wall time and a table from the run's
``results.json``: macro-F1 and AUC (mean ± 95% interval over repeats), the change against ``real``
with its Holm-corrected p, and the same against the best alternative that makes no image of its own
(``duplicate``, ``pseudo-label``) or only pastes a real one (``cut-paste``) — the best by macro-F1
among those the run compared the arm with. Then the size of the primary family (the comparisons a
method under test must win, Holm-corrected together) and the smallest corrected p the repeats can
give. With every arm that family is large — 28 comparisons on ``kolektor``, 15 on ``neu`` and
``mnist`` — and the exact paired test over n repeats gives at least 2 / 2^n, so 8 repeats cannot
make any comparison significant: ``kolektor`` needs 12 repeats, the others 11 (or fewer arms). The
run folders (results, ``report.html``, the log of each run) stay in ``--out``; ``--resume`` with the
same ``--out`` and options continues them, and a larger ``--repeats`` adds repeats to finished runs
(repeat r's draws and seeds do not depend on how many there are). The wall time printed is then
that of the added work only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
FIXED_ARMS = ["real", "classic", "duplicate", "pseudo-label"]
# label -> (method, options); in this order (the duplicate arm copies the sources of the first)
GENERATIVE = {
    "vqvae2": ("vqvae2", {}),
    "vq-pool": ("vqvae2", {"transplant": "pool"}),
    "vq-ok": ("vqvae2", {"classes": "ok"}),
    "cut-paste": ("cut-paste", {}),
    "vae": ("vae", {}),
    "aae-mixup": ("aae-mixup", {}),
    "stylegan2": ("stylegan2", {}),
    "vae-overlay": ("vae-overlay", {}),
}
NEEDS_MASKS = {"cut-paste", "vq-pool", "vq-ok"}  # need a defect region and a defect-free class
# --quick: generators trained for a few steps (the same fit-time options for every arm of a method,
# so that they still share one fit)
QUICK = {
    "vqvae2": {"epochs": 1, "prior_epochs": 1, "pool_images": 256, "grid_images": 0},
    "vae": {"epochs": 1, "min_steps": 20},
    "aae-mixup": {"epochs": 1, "min_steps": 20, "pretrain_epochs": 0, "restarts": 0},
    "stylegan2": {"steps": 20, "proj_steps": 5, "class_proj_steps": 5, "checkpoint_every": 0},
    "vae-overlay": {"epochs": 1, "copies": 64, "class_steps": 20},
    "cut-paste": {},
}
DATASETS = {
    "kolektor": {"file": "kolektor_64.npz", "image_size": 64, "masks": True},
    "neu": {"file": "neu_det_64.npz", "image_size": 64, "masks": False, "pool": None, "test_size": None},
    "mnist": {"file": "mnist.npz", "image_size": 32, "masks": False, "pool": 20000, "test_size": 2000},
}
NON_GENERATIVE = ("duplicate", "pseudo-label", "cut-paste")


def arm_text(label: str, method: str, options: dict) -> str:
    """``--arm`` value: ``vq-ok=vqvae2:classes=ok,epochs=1`` (``classes`` first: its value may hold commas)."""
    keys = sorted(options, key=lambda k: (k != "classes", k))
    return f"{label}={method}:" + ",".join(f"{k}={options[k]}" for k in keys)


def generative_arms(args, masks: bool) -> list[tuple[str, str, dict]]:
    """The generative arms of one data set: ``(label, method, options)``."""
    wanted = None if args.methods is None else {m.strip() for m in args.methods.split(",") if m.strip()}
    extra: dict[str, dict] = {}
    for spec in args.set:
        method, _, pair = spec.partition(":")
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise SystemExit(f"--set {spec!r}: expected METHOD:key=value")
        extra.setdefault(method, {})[key] = value
    arms = []
    for label, (method, options) in GENERATIVE.items():
        if label in NEEDS_MASKS and not masks:
            continue
        if wanted is not None and label not in wanted and method not in wanted:
            continue
        arms.append((label, method, {**options, **(QUICK[method] if args.quick else {}), **extra.get(method, {})}))
    if wanted is not None:
        known = set(GENERATIVE) | {m for m, _ in GENERATIVE.values()} | {"none"}
        unknown = wanted - known
        if unknown:
            raise SystemExit(f"--methods: unknown {', '.join(sorted(unknown))}; choose from {', '.join(GENERATIVE)}")
    return arms


def split_file(args, name: str, spec: dict, data_dir: Path, out: Path) -> tuple[Path, dict]:
    """The path of the labelled / pool / test ``.npz`` made from ``spec['file']`` (written unless
    ``--dry-run`` or already there) and what it holds."""
    labelled = args.reservoir or args.labelled
    pool = args.pool_size if args.pool_size is not None else spec["pool"]
    path = out / "data" / f"{name}-l{labelled}-p{pool or 'all'}-s{args.seed}.npz"
    if args.dry_run or path.exists():
        return path, {"labelled per class": labelled, "pool": pool or "the rest"}
    import numpy as np

    with np.load(data_dir / spec["file"], allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    x, y = arrays["x_train"], arrays["y_train"].astype(np.int64)
    rng = np.random.default_rng(args.seed)
    keep = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        if len(rows) < labelled:
            raise SystemExit(f"{name}: class {c} has only {len(rows)} training images, {labelled} needed")
        keep.append(rng.choice(rows, labelled, replace=False))
    keep = np.sort(np.concatenate(keep))
    rest = np.setdiff1d(np.arange(len(y)), keep)
    test_digests = {hashlib.sha256(img.tobytes()).digest() for img in arrays["x_test"]}
    rest = np.array([i for i in rest if hashlib.sha256(x[i].tobytes()).digest() not in test_digests], dtype=np.int64)
    if pool:
        rest = np.sort(rng.choice(rest, min(pool, len(rest)), replace=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part.npz")
    np.savez_compressed(partial, x_train=x[keep], y_train=y[keep], x_pool=x[rest], x_test=arrays["x_test"],
                        y_test=arrays["y_test"].astype(np.int64), class_names=arrays["class_names"])
    partial.replace(path)
    return path, {"labelled": len(keep), "pool": len(rest)}


def build_command(args, name: str, data_dir: Path, out: Path) -> tuple[list[str], str]:
    """The ``lagaug compare`` options for data set ``name`` and a line on its data."""
    spec = DATASETS[name]
    if spec["masks"]:
        data = data_dir / spec["file"]
        about = f"{data}: its own training split and pool"
        region = ["--region-source", "mask", "--normal-class", "ok"]
        size = []
        test_size = args.test_size
    else:
        data, held = split_file(args, name, spec, data_dir, out)
        about = f"{data} (from {data_dir / spec['file']}): " + ", ".join(f"{k} {v}" for k, v in held.items())
        region = ["--region-source", "none"]
        size = (["--train-size", str(args.labelled * (6 if name == "neu" else 10))]
                if args.reservoir and args.reservoir > args.labelled else [])
        test_size = spec["test_size"] if args.test_size is None else args.test_size
    arms = generative_arms(args, spec["masks"])
    cmd = ["compare", "--data", str(data), "--unlabeled", f"{data}:x_pool", "--image-size", str(spec["image_size"]),
           "--arms", ",".join(FIXED_ARMS + [label for label, _, _ in arms])]
    for label, method, options in arms:
        if options:
            cmd += ["--arm", arm_text(label, method, options)]
    cmd += [*size, *(["--test-size", str(test_size)] if test_size else []), *region,
            "--repeats", str(args.repeats), "--members", str(args.members), "--epochs", str(args.epochs),
            "--pseudo-threshold", str(args.pseudo_threshold), "--synthetic-per-image", str(args.synthetic_per_image),
            "--seed", str(args.seed), *(["--threads", str(args.threads)] if args.threads else []),
            "--quiet", "--out", str(out / name), *args.compare_args]
    return cmd, about


def run_compare(cmd: list[str], log: Path, append: bool = False) -> tuple[int, float]:
    """Run ``lagaug compare`` as a child process (stdout and stderr to ``log``); its exit status and
    wall seconds."""
    env = dict(os.environ)
    env.setdefault("LAGAUG_CACHE", "off")
    start = time.perf_counter()
    with open(log, "a" if append else "w") as fh:
        status = subprocess.run([sys.executable, "-m", "lagaug", *cmd], stdout=fh, stderr=subprocess.STDOUT,
                                env=env, cwd=HERE).returncode
    return status, time.perf_counter() - start


def pct(mean: float, half: float | None = None) -> str:
    if mean != mean:
        return "n/a"
    return f"{100 * mean:.1f}" + ("" if half is None else f" ± {'n/a' if half != half else f'{100 * half:.1f}'}")


def p_text(p: float | None, alpha: float) -> str:
    return "—" if p is None or p != p else f"{p:.3g}{'*' if p < alpha else ''}"


def summary(run: Path, alpha: float) -> list[str]:
    """The table of one finished run (from results.json and cells.jsonl)."""
    results = json.loads((run / "results.json").read_text())
    rows, comparisons = results["rows"], results["comparisons"]
    cells = [json.loads(line) for line in (run / "cells.jsonl").read_text().splitlines() if line.strip()]
    pairs = {(c["arm"], c["baseline"]): c for c in comparisons if c["metric"] == "f1"}
    f1 = {r["arm"]: r["f1_mean"] for r in rows}
    lines = [f"{'arm':<13} {'n':>2} {'added':>6} {'macro-F1 %':>12} {'AUC %':>12} {'Δ vs real':>9} "
             f"{'p real':>8} {'best alternative':>16} {'Δ':>6} {'p':>8} {'fam':>4} {'clf s':>6}"]
    for r in rows:
        arm = r["arm"]
        alternatives = [b for b in NON_GENERATIVE if (arm, b) in pairs and b in f1]
        best = max(alternatives, key=lambda b: f1[b]) if alternatives else None
        vs = pairs.get((arm, best)) if best else None
        seconds = sum(c.get("seconds", 0.0) for c in cells if c["arm"] == arm)
        real = arm == "real"
        delta = "—" if real else f"{100 * r['f1_delta_vs_real']:+.1f}"
        p_real = "—" if real else p_text(r["f1_p_vs_real"], alpha)
        alt_delta = "—" if vs is None else f"{100 * vs['delta']:+.1f}"
        alt_p = "—" if vs is None else p_text(vs["p_holm"], alpha)
        family = "—" if vs is None else vs["family"][:4]
        lines.append(
            f"{arm:<13} {r['repeats']:>2} {r['added']:>6.0f} {pct(r['f1_mean'], r['f1_ci']):>12} "
            f"{pct(r['auc_mean'], r['auc_ci']):>12} {delta:>9} {p_real:>8} {best or '—':>16} {alt_delta:>6} "
            f"{alt_p:>8} {family:>4} {seconds:>6.0f}")
    primary = [c for c in comparisons if c["family"] == "primary"]
    if primary:
        min_p = min(c["min_p"] for c in primary)
        floor = min(1.0, len(primary) * min_p)
        n = max(r["repeats"] for r in rows)
        need = n
        while len(primary) * 2.0 ** (1 - need) >= alpha:
            need += 1
        lines.append(f"primary family: {len(primary)} comparisons (macro-F1), Holm-corrected together; smallest "
                     f"raw p with {n} repeats {min_p:.3g}, so the smallest corrected p is {floor:.3g}"
                     + ("" if floor < alpha else f" — nothing can be significant; {need} repeats could be")
                     + f" (* = corrected p < {alpha})")
    lines.append("Δ in macro-F1 points; p: Holm-corrected paired test over repeats; fam: the comparison's "
                 "family; clf s: classifier seconds of the arm over all repeats")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", help="kolektor, neu, mnist (repeatable or a comma list) "
                        "[kolektor]")
    parser.add_argument("--data-dir", type=Path, default=HERE.parent / "shared" / "data")
    parser.add_argument("--methods", default=None, help="generative arms to keep, by label or method "
                        f"(comma list; 'none' for none) [all: {', '.join(GENERATIVE)}]")
    parser.add_argument("--set", action="append", default=[], metavar="METHOD:KEY=VALUE",
                        help="an option of every arm of METHOD (repeatable), e.g. vqvae2:preset=sharp64")
    parser.add_argument("--repeats", type=int, default=None, help="[8; --quick: 2]")
    parser.add_argument("--members", type=int, default=None, help="classifiers per arm and repeat [2; --quick: 1]")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per classifier [20; --quick: 3]")
    parser.add_argument("--labelled", type=int, default=10, help="neu, mnist: labelled images per class")
    parser.add_argument("--reservoir", type=int, default=None,
                        help="neu, mnist: labelled images per class set apart; each repeat draws --labelled of them")
    parser.add_argument("--pool-size", type=int, default=None, help="neu, mnist: pool images [neu: all the rest; "
                        "mnist: 20000]")
    parser.add_argument("--test-size", type=int, default=None, help="a fixed class-balanced test subset "
                        "(0: the whole test split) [mnist: 2000, else all]")
    parser.add_argument("--pseudo-threshold", type=float, default=0.9)
    parser.add_argument("--synthetic-per-image", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads of each run [compare's own]")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--quick", action="store_true", help="a smoke test: tiny classifiers and generators")
    parser.add_argument("--out", type=Path, default=None, help="a folder for the runs [a new one under the temp dir]")
    parser.add_argument("--dry-run", action="store_true", help="print the compare command lines only")
    parser.add_argument("--resume", action="store_true", help="continue the runs already in --out (the same "
                        "options; a larger --repeats adds repeats, the finished ones are kept)")
    parser.add_argument("compare_args", nargs="*", help="after --: more lagaug compare options")
    args = parser.parse_args()
    defaults = (2, 1, 3) if args.quick else (8, 2, 20)
    for key, value in zip(("repeats", "members", "epochs"), defaults):
        if getattr(args, key) is None:
            setattr(args, key, value)
    names = [n.strip() for spec in (args.dataset or ["kolektor"]) for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise SystemExit(f"--dataset {unknown[0]!r}: choose from {', '.join(DATASETS)}")
    out = args.out or Path(tempfile.gettempdir()) / f"bench-pool-{time.strftime('%Y%m%d-%H%M%S')}"
    if not args.dry_run:
        out.mkdir(parents=True, exist_ok=True)
    data_dir = args.data_dir.resolve()
    print(f"runs in {out}{' (dry run: nothing is written)' if args.dry_run else ''}", flush=True)
    done = []
    for name in dict.fromkeys(names):
        cmd, about = build_command(args, name, data_dir, out)
        print(f"\n== {name}: {about}\nlagaug {shlex.join(cmd)}", flush=True)
        slow = [a for a in generative_arms(args, DATASETS[name]["masks"])
                if a[1] == "vae-overlay" and a[2].get("mode", "faithful") == "faithful" and not args.quick]
        if slow:
            print("note: vae-overlay in mode=faithful trains a VAE per source image in every repeat, the bulk "
                  "of the run on a CPU; --set vae-overlay:mode=shared avoids that", flush=True)
        if args.dry_run:
            continue
        resuming = (out / name).exists() and any((out / name).iterdir())
        if resuming and not args.resume:
            print(f"{out / name} is not empty; give another --out, or --resume to continue it (more "
                  "--repeats add repeats)")
            continue
        log = out / f"{name}.log"
        status, wall = run_compare(cmd + (["--resume"] if resuming else []), log, append=resuming)
        if status != 0:
            tail = log.read_text().splitlines()[-15:]
            print(f"FAILED after {wall:.0f} s (exit {status}); the end of {log}:\n" + "\n".join(tail), flush=True)
            continue
        print(f"wall {wall:.0f} s ({wall / 60:.1f} min); log {log}", flush=True)
        print("\n".join(summary(out / name, args.alpha)))
        report = out / name / "report.html"
        print(f"report: {report if report.exists() else 'none written'}", flush=True)
        done.append((name, wall))
    if len(done) > 1:
        print("\n" + ", ".join(f"{n} {w / 60:.1f} min" for n, w in done))


if __name__ == "__main__":
    main()
