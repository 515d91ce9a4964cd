"""aae-mixup: the uniform-vs-gaussian interpolant test (Liu et al. 2018), run by hand.

    python benchmarks/bench_aae_mixup.py                      # embedded data, 3 seeds
    python benchmarks/bench_aae_mixup.py --data ../shared/data/mnist.npz --image-size 28 \\
        --train-size 500 --seeds 3

(The loop's time by stage: ``python benchmarks/bench_augment.py --method aae-mixup``.)

It fits one AAE per prior (``uniform``, the paper's, and ``gaussian``, the ablation) with
the same data, seed and settings, then mixes pairs of training images of **different classes**
(and, for reference, of the same class) at λ = 0.5 and measures how far each interpolant lies from
the data, two ways:

* ``recon`` — the mean squared error of re-encoding the decoded interpolant (decode it, encode and
  decode again), divided by the same error of the training images' own reconstructions: 1 means
  the autoencoder treats the interpolant like a training image; larger means off the data;
* ``hole`` — the distance from the interpolated code to the nearest code of a training image,
  divided by the median nearest-neighbour distance among training codes: large means the
  interpolant sits in a hole of the encoded data.

Liu et al. (2018) claim the uniform prior leaves fewer holes. The script reports both priors'
figures (mean and 95% interval over seeds) and their difference; it does not decide.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from lagaug.core.config import parse_overrides
from lagaug.core.progress import Progress
from lagaug.core.run.generators import fit_generator


def pairs(labels: torch.Tensor, n: int, same: bool, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` index pairs ``(a, b)``, ``a != b``, of different (or the same) class."""
    a = torch.randint(0, len(labels), (4 * n,), generator=generator)
    b = torch.randint(0, len(labels), (4 * n,), generator=generator)
    keep = (labels[a] == labels[b]) if same else (labels[a] != labels[b])
    keep &= a != b
    return a[keep][:n], b[keep][:n]


def measure(method, train, n_pairs: int, generator: torch.Generator) -> dict[str, float]:
    from lagaug.plugins.aae_mixup.training import decode_all, encode_all, recon_errors

    dev = torch.device("cpu")
    x = train.float_images()
    z = encode_all(method.aae, x, dev)
    base = float(recon_errors(method.aae, decode_all(method.aae, z, dev), dev).mean())
    nn_train = torch.cdist(z, z).fill_diagonal_(float("inf")).min(1).values.median()
    out = {"recon_real": float(recon_errors(method.aae, x, dev).mean())}
    for kind, same in (("cross", False), ("same", True)):
        a, b = pairs(train.labels, n_pairs, same, generator)
        mid = 0.5 * z[a] + 0.5 * z[b]
        out[f"recon_{kind}"] = float(recon_errors(method.aae, decode_all(method.aae, mid, dev), dev).mean()) / base
        out[f"hole_{kind}"] = float(torch.cdist(mid, z).min(1).values.median() / nn_train)
    return out


def interval(values: list[float]) -> str:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.3f}"
    from scipy import stats

    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:.3f} ± {half:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="data source (default: the embedded data)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="method options")
    parser.add_argument("--seeds", type=int, default=3, help="seeds (fits per prior)")
    parser.add_argument("--train-size", type=int, default=None, help="class-balanced draw of this many training images")
    parser.add_argument("--pairs", type=int, default=400, help="pairs per kind")
    run_priors(parser.parse_args())


def run_priors(args) -> None:
    from lagaug.core.data.dataset import DataSplits
    from lagaug.core.data.sources import load_data

    splits = load_data(args.data, image_size=args.image_size, seed=0, unlabeled=None, progress=Progress(quiet=True))
    train = splits.train
    if args.train_size:
        g = torch.Generator().manual_seed(0)
        per = args.train_size // train.num_classes
        rows = torch.cat([torch.nonzero(train.labels == c).flatten()[torch.randperm(int((train.labels == c).sum()),
                                                                                    generator=g)[:per]]
                          for c in range(train.num_classes)])
        train = train.subset(rows)
    splits = DataSplits(train, train.subset([]), train.subset([]), None)  # no pool: both priors see the same images
    overrides = parse_overrides(args.set)
    results: dict[str, list[dict[str, float]]] = {"uniform": [], "gaussian": []}
    start = time.perf_counter()
    for seed in range(args.seeds):
        for prior in results:
            method = fit_generator("aae-mixup", splits, overrides={**overrides, "prior": prior}, seed=seed)
            row = measure(method, train, args.pairs, torch.Generator().manual_seed(100 + seed))
            row.update({k: method.fit_metrics[k] for k in ("disc_accuracy", "spread_mean")})
            results[prior].append(row)
            print(f"seed {seed} {prior}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()), flush=True)
    print(f"\n{len(train)} training images ({args.data or 'embedded'}, {args.image_size}px), {args.seeds} seeds, "
          f"{args.pairs} pairs per kind, options {overrides or 'default'}; {time.perf_counter() - start:.0f} s")
    keys = ["recon_real", "recon_cross", "recon_same", "hole_cross", "hole_same", "disc_accuracy", "spread_mean"]
    print("| figure | uniform | gaussian | uniform − gaussian |\n|---|---:|---:|---:|")
    for key in keys:
        u = [r[key] for r in results["uniform"]]
        g = [r[key] for r in results["gaussian"]]
        print(f"| {key} | {interval(u)} | {interval(g)} | {interval([a - b for a, b in zip(u, g)])} |")


if __name__ == "__main__":
    main()
