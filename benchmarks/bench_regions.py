"""How well the region finders find real defects: the anomaly map and the ensemble's occlusion
saliency against the masks of a data set that has them (KolektorSDD patches: kolektor_64.npz).

    python benchmarks/bench_regions.py ../shared/data/kolektor_64.npz
    python benchmarks/bench_regions.py ../shared/data/kolektor_64.npz --pool-key x_pool --members 3 --epochs 20

The anomaly model learns the defect-free training images and the unlabelled pool (``x_pool``);
the ensemble trains on the labelled training images. Both are scored on the test defects (and, for
the anomaly map, the training defects, which it never saw as defects): pixel AUROC of the map,
mean IoU of the region, and the share of defects the region touches (``hit``). Prints a table
and the wall time of each part.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    from lagaug.core.classifier.config import resolve_ensemble_config
    from lagaug.core.classifier.ensemble import train_ensemble
    from lagaug.core.data.pools import ArrayPool
    from lagaug.core.data.sources import load_data
    from lagaug.core.defaults.quality import ensemble_classifier
    from lagaug.core.regions.anomaly import AnomalyConfig, AnomalyModel
    from lagaug.core.regions.measure import region_figures
    from lagaug.core.regions.saliency import occlusion_map, saliency_region

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="an .npz with masks (m_train, m_test)")
    parser.add_argument("--pool-key", default="x_pool")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--normal", default="ok", help="the defect-free class")
    parser.add_argument("--steps", type=int, default=600, help="anomaly model steps")
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    splits = load_data(args.data, image_size=args.image_size, seed=args.seed)
    arrays = np.load(args.data)
    pool = ArrayPool(arrays[args.pool_key], args.image_size, splits.train.channels) if args.pool_key in arrays else None
    normal = splits.class_names.index(args.normal)
    train, test = splits.train, splits.test
    print(f"{args.data}: train {len(train)} ({int(train.mask_rows().flatten(1).any(1).sum())} with masks), "
          f"test {len(test)} ({int(test.mask_rows().flatten(1).any(1).sum())} with masks), "
          f"pool {0 if pool is None else len(pool)}")

    start = time.perf_counter()
    ok = train.labels == normal
    held = splits.val.float_images(torch.nonzero(splits.val.labels == normal).flatten())
    model = AnomalyModel((train.channels, *train.image_size), AnomalyConfig(steps=args.steps))
    report = model.fit(train.float_images(torch.nonzero(ok).flatten()), pool, held,
                       generator=torch.Generator().manual_seed(args.seed))
    fit_s = time.perf_counter() - start
    rows = []
    for name, part in (("test", test), ("train", train)):
        defects = torch.nonzero(part.labels != normal).flatten()
        images = part.float_images(defects)
        rows.append((f"anomaly map, {name} defects", region_figures(model.score(images), model.region(images),
                                                                     part.mask_rows(defects))))
    clean = test.float_images(torch.nonzero(test.labels == normal).flatten())
    false_share = float(model.region(clean).flatten(1).float().mean()) if len(clean) else float("nan")
    print(f"anomaly model: {fit_s:.0f} s, loss {report['first_loss']} -> {report['last_loss']}, "
          f"threshold {report['threshold']}; on clean test images {100 * false_share:.2f}% of pixels flagged")

    start = time.perf_counter()
    cfg = resolve_ensemble_config("cpu", {"members": args.members, "epochs": args.epochs})
    ensemble = train_ensemble(train, splits.val, cfg, torch.Generator().manual_seed(args.seed))
    figures = ensemble.evaluate(test)
    ens_s = time.perf_counter() - start
    start = time.perf_counter()
    defects = torch.nonzero(test.labels != normal).flatten()
    sal = occlusion_map(ensemble_classifier(ensemble), test.float_images(defects), test.labels[defects])
    rows.append(("occlusion saliency, test defects", region_figures(sal, saliency_region(sal), test.mask_rows(defects))))
    sal_s = time.perf_counter() - start
    print(f"ensemble: {ens_s:.0f} s ({args.members} x {cfg.classifier}, {args.epochs} epochs; test AUC "
          f"{figures['auc_mean']:.3f}), saliency {sal_s:.0f} s")
    print(f"\n{'finder':<36} {'images':>6} {'pixel AUROC':>11} {'IoU':>6} {'hit':>6}")
    for name, f in rows:
        print(f"{name:<36} {f['images']:>6} {f['pixel_auroc']:>11.3f} {f['iou']:>6.3f} {f['hit']:>6.2f}")


if __name__ == "__main__":
    main()
