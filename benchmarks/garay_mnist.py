"""Reproduce Table 2 of Garay-Maestre et al. (2019), "Data Augmentation via Variational
Auto-Encoders", on MNIST with ``lagaug compare``.

Arms (the paper's names → lagaug's): CNN → ``real``, VAE → ``vae``, AUG → ``classic``,
AUG+VAE → ``classic+vae`` (plus the ``duplicate`` control with ``--duplicate``). For every training
size, each repeat draws its own class-balanced training subset from MNIST's training split, fits one
VAE per class on it, and trains the classifier of every arm with the same seed. Test images come
from MNIST's test split: a fixed class-balanced subset of ``--test-per-class`` images per digit (the
paper: 700). The test set never chooses anything (the paper's released code early-stopped and chose
checkpoints on it).

The default protocol controls what the paper's did not:

* every arm gets the same number of optimisation steps (``--budget steps``): the paper's AUG arm
  ran ``len(X_train)`` batches per epoch and its VAE arm trained on 100 more images per epoch, so
  their gains mix "better data" with "longer training";
* no model selection: every classifier keeps its last epoch and every VAE its last weights (with
  5 images per class a validation split is one image per class, too noisy to choose by — measured:
  it picked epoch 2 of 150 in some repeats). ``--select-best --val-fraction 0.15`` restores it;
* the VAE's KL weight is 1/latent size, the weight the authors' code gave it (it averaged the KL
  over latent dimensions); with the full weight a VAE fitted on 4-5 images collapses to the class
  mean image (all samples alike), see docs/benchmarks.md.

    python benchmarks/garay_mnist.py /path/to/mnist.npz                  # latent size 3; 50, 100, 250
    python benchmarks/garay_mnist.py mnist.npz --all-latents --sizes 50 100 250 500 1000

Prints our macro-F1 beside the paper's and writes ``OUT/garay_mnist.md``; every (latent, size) is a
resumable ``lagaug compare`` run directory under ``OUT``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# Table 2 of the paper: macro-F1 (%) for CNN, VAE, AUG, AUG+VAE by latent size and training size
PAPER = {
    2: {50: (76.30, 84.89, 86.10, 89.05), 100: (84.38, 90.90, 94.85, 94.50), 250: (93.03, 94.84, 97.12, 98.00),
        500: (94.28, 95.65, 98.11, 98.22), 1000: (96.54, 97.24, 98.36, 98.87)},
    3: {50: (76.30, 85.40, 86.10, 90.86), 100: (84.38, 91.98, 94.85, 95.15), 250: (93.03, 95.93, 97.12, 97.97),
        500: (94.28, 96.38, 98.11, 98.26), 1000: (96.54, 97.74, 98.36, 98.87)},
    4: {50: (76.30, 83.77, 86.10, 89.67), 100: (84.38, 91.75, 94.85, 94.73), 250: (93.03, 95.16, 97.12, 97.86),
        500: (94.28, 96.28, 98.11, 98.30), 1000: (96.54, 97.38, 98.36, 98.90)},
    8: {50: (76.30, 84.46, 86.10, 89.32), 100: (84.38, 91.28, 94.85, 94.56), 250: (93.03, 95.24, 97.12, 97.86),
        500: (94.28, 95.95, 98.11, 98.41), 1000: (96.54, 97.50, 98.36, 98.79)},
}
ARMS = [("CNN", "real"), ("VAE", "vae"), ("AUG", "classic"), ("AUG+VAE", "classic+vae")]


def load_mnist(path: str):
    """MNIST as lagaug DataSplits: all 60,000 training images as the pool, the 10,000 test images."""
    import numpy as np
    import torch

    from lagaug.core.data.dataset import DataSplits, ImageSet

    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        names = [str(n) for n in f["class_names"]] if "class_names" in f else [str(i) for i in range(10)]

    def image_set(split: str) -> ImageSet:
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        return ImageSet(torch.from_numpy(x)[:, None], torch.from_numpy(y.astype("int64")), names,
                        [f"mnist:{split}/{i}" for i in range(len(y))])

    train, test = image_set("train"), image_set("test")
    return DataSplits(train, train.subset([]), test, description=f"MNIST from {path}")


def plugins_with_vae():
    """A plugin manager that knows the built-in ``vae`` method, also when lagaug runs from a
    source tree that was never installed (no entry points)."""
    import importlib

    from lagaug.core.contract.plugins import make_plugin_manager

    pm = make_plugin_manager()
    if "vae" not in pm.methods:
        pm.add_plugin(importlib.import_module("lagaug.plugins.vae"), "vae", builtin=True)
    return pm


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mnist", help="path to mnist.npz (x_train, y_train, x_test, y_test)")
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 250], help="training sizes (images in all)")
    p.add_argument("--latent", type=int, nargs="+", default=[3], help="VAE latent sizes")
    p.add_argument("--all-latents", action="store_true", help="latent sizes 2, 3, 4 and 8, as in Table 2")
    p.add_argument("--repeats", type=int, default=5, help="repeats per size, each with its own training subset")
    p.add_argument("--test-per-class", type=int, default=700, help="test images per digit (the paper: 700)")
    p.add_argument("--classifier", default="garay_cnn", help="garay_cnn (Table 1) or garay_cnn_small (quarter width)")
    p.add_argument("--epochs", type=int, default=40,
                   help="classifier epochs (with --budget steps: passes over the largest arm's training set)")
    p.add_argument("--lr", type=float, default=1e-3, help="classifier Adam learning rate")
    p.add_argument("--budget", choices=["epochs", "steps"], default="steps",
                   help="steps: every arm gets the optimisation steps of --epochs passes over the largest arm")
    p.add_argument("--val-fraction", type=float, default=0.0,
                   help="share of each class held out for validation (needed by --select-best and --vae-val)")
    p.add_argument("--select-best", action="store_true",
                   help="keep every classifier's best validation-loss epoch instead of its last")
    p.add_argument("--synthetic-per-image", type=float, nargs="+", default=None,
                   help="VAE images added per real training image: one value, or one per size "
                        "[500 / size: about 500 synthetic images at every size]")
    p.add_argument("--sampling", choices=["prior", "posterior"], default="prior", help="where the VAE draws from")
    p.add_argument("--vae-steps", type=int, default=700, help="optimisation steps per class VAE (batch 32)")
    p.add_argument("--vae-beta", type=float, default=None,
                   help="KL weight; default 1/latent size, the weight the authors' code gave it")
    p.add_argument("--vae-channels", type=int, default=64, help="VAE conv filters (the paper: 64)")
    p.add_argument("--vae-val", action="store_true",
                   help="let each class VAE keep its best validation epoch (default: train it for --vae-steps, "
                        "as the paper did)")
    p.add_argument("--vae-set", nargs="*", default=[], metavar="KEY=VALUE", help="other vae method settings")
    p.add_argument("--duplicate", action="store_true", help="also run the duplicate control arm")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="lagaug-runs/garay_mnist", help="folder of the run directories and the report")
    p.add_argument("--resume", action="store_true", help="continue finished and half-finished runs in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if (args.select_best or args.vae_val) and args.val_fraction <= 0:
        p.error("--select-best and --vae-val need validation images: give --val-fraction, e.g. 0.15")
    if args.all_latents:
        args.latent = [2, 3, 4, 8]
    spi = args.synthetic_per_image
    if spi is None:
        spi = [round(500 / size, 3) for size in args.sizes]
    elif len(spi) == 1:
        spi = spi * len(args.sizes)
    elif len(spi) != len(args.sizes):
        p.error(f"--synthetic-per-image takes one value or one per size ({len(args.sizes)})")
    args.spi = dict(zip(args.sizes, spi))
    return args


def run(args: argparse.Namespace) -> list[dict]:
    """One ``lagaug compare`` run per (latent size, training size); returns one row per pair."""
    from lagaug.core.compare import CompareConfig, run_compare
    from lagaug.core.config import parse_overrides
    from lagaug.core.progress import Progress

    pm = plugins_with_vae()
    splits = load_mnist(args.mnist)
    progress = Progress(quiet=args.quiet)
    arms = [a for _, a in ARMS] + (["duplicate"] if args.duplicate else [])
    results = []
    for latent in args.latent:
        for size in args.sizes:
            beta = args.vae_beta if args.vae_beta is not None else round(1 / latent, 4)
            vae = {"latent_dim": latent, "epochs": 1, "min_steps": args.vae_steps, "channels": args.vae_channels,
                   "beta": beta, "sampling": args.sampling, "patience": 0, "batch_size": 32,
                   **parse_overrides(args.vae_set)}
            cfg = CompareConfig(
                method="vae", arms=arms, data=str(args.mnist), image_size=28, repeats=args.repeats,
                train_size=size, val_fraction=args.val_fraction, budget=args.budget, test_size=10 * args.test_per_class,
                synthetic_per_image=args.spi[size],
                ensemble={"classifier": args.classifier, "members": 1, "epochs": args.epochs, "batch_size": 32,
                          "optimizer": "adamw", "lr": args.lr, "weight_decay": 0.0, "select_best": args.select_best,
                          # the paper's protocol, not lagaug's cpu recipe: plain passes, no schedule,
                          # no balancing or classifier augmentation, the best validation loss
                          "aug": "none", "min_epoch_size": 0, "warmup_epochs": 0, "schedule": "constant",
                          "balance": "none", "select": "loss"},
                set=vae, generator_val=args.vae_val, seed=args.seed, device=args.device, out=str(Path(args.out) / f"ls{latent}-n{size}"),
            )
            start = time.perf_counter()
            resume = args.resume and Path(cfg.out, "config.json").exists()
            result = run_compare(cfg, progress, resume=resume, splits=splits, plugins=pm)
            seconds = time.perf_counter() - start
            rows = {r["arm"]: r for r in result.rows}
            comp = {(c["arm"], c["baseline"], c["metric"]): c for c in result.comparisons}
            results.append({"latent": latent, "size": size, "rows": rows, "comparisons": comp,
                            "seconds": seconds, "run_dir": str(result.run_dir)})
    return results


def report(args: argparse.Namespace, results: list[dict], wall: float) -> str:
    """The markdown report: ours beside the paper, the targets, and the settings."""
    lines = [
        "| LS | images | arm | paper F1 | ours F1 (95% CI) | ours − paper | ours vs CNN (p) |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    checks = []
    for res in results:
        paper = PAPER.get(res["latent"], {}).get(res["size"])
        for i, (label, arm) in enumerate(ARMS + ([("duplicate", "duplicate")] if args.duplicate else [])):
            row = res["rows"][arm]
            ours = 100 * row["f1_mean"]
            ref = paper[i] if paper and i < 4 else None
            vs = res["comparisons"].get((arm, "real", "f1"))
            vs_text = "—" if vs is None else f"{100 * vs['delta']:+.2f} ({vs['p']:.3g})"
            lines.append(
                f"| {res['latent']} | {res['size']} | {label} | {'—' if ref is None else f'{ref:.2f}'} | "
                f"{ours:.2f} ± {100 * row['f1_ci']:.2f} | {'—' if ref is None else f'{ours - ref:+.2f}'} | "
                f"{vs_text} |"
            )
        r = res["rows"]
        gain = 100 * (r["vae"]["f1_mean"] - r["real"]["f1_mean"])
        both = res["comparisons"][("classic+vae", "classic", "f1")]
        checks.append(f"- LS {res['latent']}, {res['size']} images: VAE − CNN = {gain:+.2f} points"
                      f"{' (target ≥ 8)' if res['size'] == 50 else ''}; AUG+VAE − AUG = {100 * both['delta']:+.2f} "
                      f"points (p = {both['p']:.3g}); wall time {res['seconds'] / 60:.1f} min")
        dup = res["comparisons"].get(("vae", "duplicate", "f1"))
        if dup is not None:
            checks[-1] += f"; VAE − duplicate = {100 * dup['delta']:+.2f} points (p = {dup['p']:.3g})"
    n = args.repeats
    settings = (
        f"{n} repeats (each its own class-balanced training subset; {args.val_fraction:.0%} of it held out for "
        f"validation), "
        f"test: {args.test_per_class} MNIST test images per digit, classifier `{args.classifier}` "
        f"(Adam lr {args.lr}, batch 32, "
        f"{args.epochs} epochs{' of the largest arm for every arm (equal steps)' if args.budget == 'steps' else ''}, "
        f"{'best validation-loss epoch' if args.select_best else 'last epoch'} kept), VAE: {args.vae_channels} filters, "
        f"{args.vae_steps} steps, KL weight {'1/LS' if args.vae_beta is None else args.vae_beta}, "
        f"{'best validation epoch' if args.vae_val else 'last weights'}, sampling `{args.sampling}`, "
        f"synthetic images per training image: {', '.join(f'{v:g} at {k}' for k, v in args.spi.items())}; device {args.device}; "
        f"total wall time {wall / 60:.1f} min. p: paired Wilcoxon signed-rank over repeats "
        f"(smallest possible with {n} repeats: {2 / 2 ** n:.3g})."
    )
    command = "python benchmarks/garay_mnist.py " + " ".join(sys.argv[1:])
    return "\n".join(["# Garay-Maestre et al. (2019), Table 2, with lagaug", "", f"`{command}`", "", settings, "",
                      *lines, "", *checks, ""])


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    results = run(args)
    text = report(args, results, time.perf_counter() - start)
    out = Path(args.out) / "garay_mnist.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"wrote {out}")
    json.dump([{k: v for k, v in r.items() if k != "comparisons"} for r in results],
              open(Path(args.out) / "garay_mnist.json", "w"), indent=1, default=str)


if __name__ == "__main__":
    main()
