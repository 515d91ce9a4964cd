"""Generator fidelity, label fidelity and diversity, per method and data set.

    python benchmarks/bench_fidelity.py                                   # vqvae2 + vae, NEU 64 px + embedded 32 px
    python benchmarks/bench_fidelity.py --data neu --methods vqvae2 --set preset=sharp64
    python benchmarks/bench_fidelity.py --data neu --methods vqvae2 --generator runs/gen   # a saved generator

For each data set (``neu``: ../shared/data/neu_det_64.npz at 64 px, six steel-surface defect
classes; ``embedded``: lagaug's embedded inspection set at 32 px, ok / defect):

1. a **reference classifier** is trained on all real training images with
   ``lagaug.core.ensemble.train_ensemble`` at its current defaults (preset ``cpu``; early stopping
   on the validation images) — it never sees a test image;
2. on ``--n`` test images (class-balanced): the **real** images' own rate — the share whose class
   wins under the reference classifier, and their mean label fidelity (probability of their class);
3. per method, the generator is fitted on the training images (+ validation for its checkpoint
   choice; the embedded set's unlabelled pool too) or loaded (``--generator``), then, on the same
   test images:

   * **reconstruction** (encode -> decode, nothing resampled): L1 and PSNR against the source, and
     the reconstructions' label fidelity / class-wins rate;
   * **resampled** (``--variants`` per image, through the same hooks as ``augment``): label
     fidelity / class-wins rate, **diversity** — the mean pairwise L1 distance between variants of
     one source — and the mean L1 **distance to the source**.

Everything is printed as one table and written as JSON (``--json``); wall times per part included.
Randomness: seeds fixed (``--seed``); run with ``OMP_NUM_THREADS=1`` for repeatable timings.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from lagaug.core.contract.method import StageContext
from lagaug.core.contract.plugins import make_plugin_manager
from lagaug.core.data import load_data
from lagaug.core.defaults.quality import class_wins, ensemble_classifier, label_fidelity
from lagaug.core.ensemble import preset, train_ensemble
from lagaug.core.progress import Progress
from lagaug.core.run.generators import fit_generator, load_generator, sample_images
from lagaug.core.runtime import stage_generator

NEU = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "neu_det_64.npz"
DATA = {"neu": (str(NEU), 64, None), "embedded": (None, 32, "default")}


def balanced_rows(labels: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` rows, as even over the classes as the data allows, in a seeded order."""
    classes = labels.unique().tolist()
    per = [torch.nonzero(labels == c).flatten() for c in classes]
    per = [p[torch.randperm(len(p), generator=generator)] for p in per]
    picked, k = [], 0
    while len(picked) < min(n, len(labels)):
        for p in per:
            if k < len(p) and len(picked) < n:
                picked.append(int(p[k]))
        k += 1
    return torch.tensor(sorted(picked))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a - b).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(1 / mse)).mean())


def judged(classify, images: torch.Tensor, soft: torch.Tensor) -> dict:
    probs = classify(images)
    return {"label_fidelity": float(label_fidelity(probs, soft).mean()),
            "class_wins": float(class_wins(probs, soft).float().mean())}


def diversity(variants: torch.Tensor, v: int) -> float:
    """Mean pairwise L1 distance between the ``v`` variants of each source (rows consecutive)."""
    groups = variants.reshape(-1, v, *variants.shape[1:]).flatten(2)
    if v < 2:
        return float("nan")
    d = (groups[:, :, None] - groups[:, None]).abs().mean(-1)  # (S, v, v)
    return float(d.sum((1, 2)).mean() / (v * (v - 1)))


def bench_method(name: str, key: str, splits, rows, classify, args, pm, overrides: dict) -> dict:
    test = splits.test
    images, soft = test.float_images(rows), test.targets()[rows]
    out: dict = {"method": name}
    start = time.perf_counter()
    if args.generator:
        gen = load_generator(args.generator, expect_method=name, plugins=pm)
        out["fit"] = f"loaded {args.generator}"
    else:
        gen = fit_generator(name, splits, overrides=overrides, seed=args.seed, plugins=pm,
                            progress=Progress(quiet=args.quiet), out=Path(args.work) / key / name)
    out["fit_seconds"] = round(time.perf_counter() - start, 1)
    out["config"] = {k: v for k, v in overrides.items()}
    start = time.perf_counter()
    ctx = StageContext(generator=stage_generator(args.seed, "bench"), batch_index=torch.arange(len(rows)))
    try:
        recon = gen.decode(gen.encode(images, soft, ctx), ctx).images
        out["recon_l1"] = float((recon - images).abs().mean())
        out["recon_psnr"] = psnr(recon, images)
        out["recon"] = judged(classify, recon, soft)
    except Exception as exc:  # a method whose latents cannot be decoded unchanged
        out["recon"] = f"n/a ({type(exc).__name__}: {exc})"
    synth = sample_images(gen, images, soft, variants=args.variants, seed=args.seed, plugins=pm,
                          options=dict(kv.split("=", 1) for kv in args.sample_set))
    made = synth.images
    src = images.repeat_interleave(args.variants, 0)
    out["resampled"] = judged(classify, made, soft.repeat_interleave(args.variants, 0))
    out["diversity_l1"] = diversity(made, args.variants)
    out["distance_to_source_l1"] = float((made - src).abs().mean())
    out["sample_seconds"] = round(time.perf_counter() - start, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="neu,embedded", help="comma list of: neu, embedded")
    ap.add_argument("--methods", default="vqvae2,vae")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="generator option for the first method (repeatable)")
    ap.add_argument("--sample-set", action="append", default=[], metavar="KEY=VALUE",
                    help="sampling option (e.g. temperature=0.8)")
    ap.add_argument("--generator", default=None, help="use this saved generator (one method, one data set)")
    ap.add_argument("--n", type=int, default=120, help="test images judged")
    ap.add_argument("--variants", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="bench-fidelity", help="where fitted generators and classifiers go")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    pm = make_plugin_manager()
    results = []
    for key in args.data.split(","):
        path, size, pool = DATA[key]
        t0 = time.perf_counter()
        splits = load_data(path, image_size=size, unlabeled=pool)
        rows = balanced_rows(splits.test.labels, args.n, stage_generator(args.seed, "bench-rows"))
        start = time.perf_counter()
        cfg = preset("cpu")
        ensemble = train_ensemble(splits.train, splits.val, cfg, stage_generator(args.seed, "reference"),
                                  progress=Progress(quiet=args.quiet), label=f"{key}: reference classifier",
                                  checkpoint_dir=Path(args.work) / key / "reference")
        classify = ensemble_classifier(ensemble)
        test = splits.test
        real = judged(classify, test.float_images(rows), test.targets()[rows])
        head = {"data": key, "image_size": size, "train": len(splits.train), "judged": len(rows),
                "classifier": {"recipe": "lagaug.core.ensemble.train_ensemble, preset cpu", **asdict(cfg)},
                "classifier_seconds": round(time.perf_counter() - start, 1), "real": real}
        print(json.dumps(head), flush=True)
        for i, name in enumerate(args.methods.split(",")):
            overrides = dict(kv.split("=", 1) for kv in args.sets) if i == 0 else {}
            res = {**bench_method(name, key, splits, rows, classify, args, pm, overrides), "data": key}
            res["real"] = real
            res["seconds"] = round(time.perf_counter() - t0, 1)
            print(json.dumps(res), flush=True)
            results.append({**head, **res})
    print()
    print(f"{'data':<9} {'method':<7} {'PSNR':>6} {'L1':>6} | {'class wins: real':>16} {'recon':>6} {'resampled':>9} | "
          f"{'fidelity: real':>14} {'recon':>6} {'resampled':>9} | {'diversity':>9} {'to source':>9}")
    for r in results:
        rec = r["recon"] if isinstance(r["recon"], dict) else {"class_wins": float("nan"), "label_fidelity": float("nan")}
        print(f"{r['data']:<9} {r['method']:<7} {r.get('recon_psnr', float('nan')):6.2f} {r.get('recon_l1', float('nan')):6.3f} | "
              f"{r['real']['class_wins']:16.3f} {rec['class_wins']:6.3f} {r['resampled']['class_wins']:9.3f} | "
              f"{r['real']['label_fidelity']:14.3f} {rec['label_fidelity']:6.3f} {r['resampled']['label_fidelity']:9.3f} | "
              f"{r['diversity_l1']:9.4f} {r['distance_to_source_l1']:9.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
