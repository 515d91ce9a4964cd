"""Defect survival per method: does a synthetic defect image still show its defect, and what changed
around it? On data with masks (KolektorSDD patches, the embedded set).

    python benchmarks/bench_defects.py --data ../shared/data/kolektor_64.npz --pool-key x_pool --image-size 64
    python benchmarks/bench_defects.py --data default --image-size 32
    python benchmarks/bench_defects.py --data default --methods cut-paste "vqvae2:keep=none" "vqvae2:transplant=pool"

A METHOD may carry ``--set`` options after a colon (``vqvae2:transplant=pool,seam=1``). For the data:

1. a **reference classifier** (``--members`` x test_resnet, the cpu recipe, ``--epochs``) learns the
   real training images (validation for early stopping); its defect probability of the real *test*
   defect images, and the share of them it calls defect, are the yardstick — with the same figures
   for the training defects themselves (the sources, which it learnt: what a perfect copy scores);
2. per method: the generator is fitted on the training images and the pool, then ``--variants``
   images are made from every training defect image through the same hooks as ``augment``, with the
   image's mask as its region (``--region-source mask``). Figures over those images:

   * ``p(defect)`` and ``wins`` — the reference classifier's defect probability and the share called
     defect (against the real test defects' own);
   * ``inside`` — mean absolute difference between the synthetic image and its source on the defect
     (its mask; where cut-paste moved it, at the new place): small = the defect was kept;
   * ``outside`` — the same away from the defect (more than 3 pixels from it): large = varied;
   * ``diversity`` — mean absolute difference between the variants of one source;

   and the seconds of the fit and of the synthesis. A grid per method (source | variants) is saved
   in ``--out`` to be looked at.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def parse_method(spec: str) -> tuple[str, dict[str, str]]:
    name, _, rest = spec.partition(":")
    options = dict(part.split("=", 1) for part in rest.split(",") if part)
    return name, options


def aligned_source(src: torch.Tensor, note: dict) -> torch.Tensor:
    """The source as cut-paste placed it (mirrored, shifted), so inside-errors compare like with like."""
    from lagaug.plugins.cut_paste.method import move

    if note.get("flipped"):
        src = src.flip(-1)
    dy, dx = note.get("shift", [0, 0])
    return move(src, int(dy), int(dx))


def main() -> None:
    from lagaug.core.classifier.config import resolve_ensemble_config
    from lagaug.core.classifier.ensemble import train_ensemble
    from lagaug.core.config import resolve_options
    from lagaug.core.contract.method import StageContext
    from lagaug.core.contract.plugins import make_plugin_manager
    from lagaug.core.data.pools import ArrayPool
    from lagaug.core.data.sources import load_data
    from lagaug.core.defaults.quality import ensemble_classifier
    from lagaug.core.plots import save_pair_grid
    from lagaug.core.regions.masks import dilate
    from lagaug.core.run.generators import fit_generator
    from lagaug.core.run.pipeline import synthesize

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="default")
    parser.add_argument("--pool-key", default=None, help="the .npz key of the unlabelled pool (default: the data's own)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--normal", default="ok")
    parser.add_argument("--methods", nargs="+", default=["cut-paste", "vqvae2", "vqvae2:transplant=pool",
                                                          "vqvae2:keep=none", "aae-mixup", "vae"])
    parser.add_argument("--variants", type=int, default=2)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench-defects")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pm = make_plugin_manager()

    splits = load_data(args.data, image_size=args.image_size, seed=args.seed)
    if args.pool_key:
        arrays = np.load(args.data)
        splits.unlabeled = ArrayPool(arrays[args.pool_key], args.image_size, splits.train.channels)
    train, test = splits.train, splits.test
    normal = splits.class_names.index(args.normal)
    defect_rows = torch.nonzero((train.labels != normal) & train.mask_rows().flatten(1).any(1)).flatten()
    print(f"{args.data} at {args.image_size} px: train {len(train)} ({len(defect_rows)} defects with masks), "
          f"pool {0 if splits.unlabeled is None else len(splits.unlabeled)}")

    start = time.perf_counter()
    cfg = resolve_ensemble_config("cpu", {"members": args.members, "epochs": args.epochs})
    reference = ensemble_classifier(train_ensemble(train, splits.val, cfg, torch.Generator().manual_seed(args.seed),
                                                   orientation_invariant=splits.extra.get("orientation_invariant")))
    real = test.float_images(torch.nonzero(test.labels != normal).flatten())
    real_p = reference(real)
    real_defect = 1 - real_p[:, normal]
    rows = [{"method": "real test defects", "p_defect": float(real_defect.mean()),
             "wins": float((real_p.argmax(1) != normal).float().mean()), "seconds": time.perf_counter() - start}]
    seen = reference(train.float_images(defect_rows))  # the sources themselves, which the classifier learnt
    rows.append({"method": "real training defects", "p_defect": float((1 - seen[:, normal]).mean()),
                 "wins": float((seen.argmax(1) != normal).float().mean())})
    print(f"reference classifier: {rows[0]['seconds']:.0f} s; real test defects p(defect) {rows[0]['p_defect']:.3f}, "
          f"called defect {100 * rows[0]['wins']:.0f}%", flush=True)

    fits: dict[tuple, object] = {}  # variants that differ only in sampling options share one fit
    for spec in args.methods:
        name, options = parse_method(spec)
        stage = pm.get_method(name).stage_options or frozenset()
        key = (name, tuple(sorted((k, v) for k, v in options.items() if k not in stage)))
        start = time.perf_counter()
        if key not in fits:
            fits[key] = fit_generator(name, splits, overrides=options, seed=args.seed, plugins=pm)
        gen = fits[key]
        fit_s = time.perf_counter() - start
        _, typed = resolve_options(gen.config, options)
        ctx = StageContext(generator=torch.Generator().manual_seed(args.seed), variants=args.variants, options=typed,
                           pool=train, batch_index=defect_rows, region_source="mask", normal_classes=[normal],
                           unlabeled=splits.unlabeled)
        start = time.perf_counter()
        synth = synthesize(pm, gen, train.float_images(defect_rows), train.targets()[defect_rows], ctx)
        syn_s = time.perf_counter() - start
        p = reference(synth.images)
        src = train.float_images(synth.primary)
        masks = train.mask_rows(synth.primary)
        inside, outside = [], []
        for j in range(len(synth)):
            note = (synth.notes or [{}] * len(synth))[j]
            s_img, m = aligned_source(src[j], note), synth.masks[j] if synth.masks is not None and synth.masks[j].any() else masks[j]
            if note.get("pasted") is not None:
                m = synth.masks[j]
            diff = (synth.images[j] - s_img).abs()[0]
            inside.append(float(diff[m].mean()) if m.any() else float("nan"))
            away = ~dilate(m[None], 3)[0]
            outside.append(float((synth.images[j] - src[j]).abs()[0][away].mean()))
        v = args.variants
        pairs = [float((synth.images[i * v + a] - synth.images[i * v + b]).abs().mean())
                 for i in range(len(synth) // v) for a in range(v) for b in range(a + 1, v)]
        row = {"method": spec, "p_defect": float((1 - p[:, normal]).mean()), "wins": float((p.argmax(1) != normal).float().mean()),
               "inside": float(np.nanmean(inside)), "outside": float(np.mean(outside)),
               "diversity": float(np.mean(pairs)) if pairs else float("nan"), "fit_s": fit_s, "synth_s": syn_s,
               "images": len(synth)}
        rows.append(row)
        shown = defect_rows[:8]
        pick = [j for j in range(len(synth)) if int(synth.primary[j]) in set(shown.tolist())]
        index = torch.tensor([shown.tolist().index(int(synth.primary[j])) for j in pick])
        save_pair_grid(out / f"{spec.replace(':', '_').replace(',', '_').replace('=', '-')}.png",
                       train.float_images(shown), synth.images[pick], index)
        print(f"{spec}: fit {fit_s:.0f} s, synthesis {syn_s:.0f} s; p(defect) {row['p_defect']:.3f}, "
              f"wins {100 * row['wins']:.0f}%, inside {row['inside']:.4f}, outside {row['outside']:.4f}, "
              f"diversity {row['diversity']:.4f}", flush=True)
    print(f"\n{'method':<28} {'p(defect)':>9} {'wins':>6} {'inside':>8} {'outside':>8} {'diversity':>9} {'fit s':>6}")
    for r in rows:
        print(f"{r['method']:<28} {r['p_defect']:>9.3f} {100 * r['wins']:>5.0f}% "
              f"{r.get('inside', float('nan')):>8.4f} {r.get('outside', float('nan')):>8.4f} "
              f"{r.get('diversity', float('nan')):>9.4f} {r.get('fit_s', r.get('seconds', 0)):>6.0f}")
    (out / "defects.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
