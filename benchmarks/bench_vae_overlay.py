"""Time the ``vae-overlay`` method and draw its sources next to its overlays.

    python benchmarks/bench_vae_overlay.py --data ../shared/data/mnist.npz --per-class 10 --groups 6
    python benchmarks/bench_vae_overlay.py --set mode=shared --set sources=3
    python benchmarks/bench_vae_overlay.py --set batch_copies=5    # minibatch 10: 2000 steps a group

Fits the method on a small class-balanced draw of the training images (``--per-class`` per class;
the default data is the embedded inspection set), overlays ``--groups`` images chosen at random
(as the loop would its hard images) and prints: the fit time, the overlay time per group (the
faithful mode trains one small VAE per hard image), and per overlay where the combined latent
lands (norm against the training latents' norms) and how far it is in pixels from its sources and
from the nearest image of another class. It writes ``OUT/overlays.png``: one row per overlay —
the sources, the group (or class) VAE's reconstruction of each, then the decoded ``sum``,
``mean`` and ``rescaled`` combinations of the same latents, and the pixel mean of the sources.
Run it by hand: the figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from lagaug.core.config import parse_overrides
from lagaug.core.contract.method import StageContext
from lagaug.core.contract.plugins import make_plugin_manager
from lagaug.core.data.sources import load_data
from lagaug.core.run.generators import fit_generator
from lagaug.core.store.atomic import save_png
from lagaug.plugins.vae_overlay.overlay import combine


def class_balanced(splits, per_class: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    train = splits.train
    rows = [torch.nonzero(train.labels == c).flatten() for c in range(train.num_classes)]
    pick = torch.cat([r[torch.randperm(len(r), generator=g)[:per_class]] for r in rows])
    splits.train = train.subset(pick)
    return splits


def decode_row(method, latents, j: int, z: torch.Tensor) -> torch.Tensor:
    """Decode latents ``z`` ``(n, d)`` with the VAE that made overlay row ``j``."""
    g = int(latents.codes["group"][j])
    vae = latents.info["group_vaes"][g] if g >= 0 else method.vaes[int(latents.codes["vae_class"][j])]
    with torch.no_grad():
        return vae.decode(z)


def grid(rows: list[list[torch.Tensor]], path: Path, scale: int = 3) -> Path:
    c, h, w = rows[0][0].shape
    pad, n = 2, max(len(r) for r in rows)
    canvas = torch.ones(c, len(rows) * (h + pad), n * (w + pad))
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            canvas[:, i * (h + pad) : i * (h + pad) + h, j * (w + pad) : j * (w + pad) + w] = cell
    return save_png(path, canvas.repeat_interleave(scale, 1).repeat_interleave(scale, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help=".npz or image folder (default: the embedded set)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--per-class", type=int, default=10, help="training images per class")
    parser.add_argument("--groups", type=int, default=6, help="images to overlay (hard images)")
    parser.add_argument("--variants", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="lagaug-runs/bench-vae-overlay")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    overrides = parse_overrides(args.set)

    splits = class_balanced(load_data(args.data, image_size=args.image_size, seed=0), args.per_class, args.seed)
    train = splits.train
    pm = make_plugin_manager()
    start = time.perf_counter()
    method = fit_generator("vae-overlay", splits, overrides=overrides, seed=args.seed, plugins=pm)
    fit_s = time.perf_counter() - start
    cfg = method.config

    g = torch.Generator().manual_seed(args.seed + 1)
    chosen = torch.randperm(len(train), generator=g)[: args.groups]
    ctx = StageContext(generator=torch.Generator().manual_seed(args.seed), variants=args.variants,
                       options={}, pool=train, batch_index=chosen)
    call = pm.call_stage
    start = time.perf_counter()
    latents = call("lagaug_encode", method=method, images=train.float_images(chosen),
                   soft=train.targets()[chosen], context=ctx)
    latents = call("lagaug_resample", method=method, latents=latents, context=ctx)
    resample_s = time.perf_counter() - start
    synth = call("lagaug_decode", method=method, latents=latents, context=ctx)
    total_s = time.perf_counter() - start

    # pixel distance from every overlay to the nearest training image of another class
    flat = train.float_images().flatten(1)
    labels = train.labels
    rows_out, table = [], []
    for j in range(len(synth)):
        src = synth.source[j]
        cls = int(labels[src[0]])
        other = flat[labels != cls]
        d_other = float(((other - synth.images[j].flatten()) ** 2).mean(1).sqrt().min()) if len(other) else float("nan")
        d_src = [float(synth.metrics[f"source_{k}_rmse"][j]) for k in range(src.shape[0])]
        table.append((j, [train.ids[int(r)] for r in src], [float(w) for w in synth.weight[j]],
                      *(float(synth.metrics[k][j]) for k in ("sum_norm", "train_norm_ratio", "train_norm_rank",
                                                             "source_separation")), d_src, d_other))
        zs = latents.codes["source_latents"][j]
        recon = list(decode_row(method, latents, j, zs))
        alts = [combine(zs, rule)[0] for rule in ("sum", "mean", "rescaled")]
        decoded = list(decode_row(method, latents, j, torch.stack(alts)))
        srcs = list(train.float_images(src))
        rows_out.append(srcs + recon + decoded + [torch.stack(srcs).mean(0)])
    path = grid(rows_out, out / "overlays.png")
    grid([list(train.float_images(synth.source[j])) + [synth.images[j]] for j in range(len(synth))],
         out / "sources_and_overlays.png")

    steps = cfg.group_steps()
    print(f"data: {splits.description} · {len(train)} training images ({args.per_class} per class), "
          f"{args.image_size}px · torch threads {torch.get_num_threads()}")
    print(f"config: mode={cfg.mode} sources={cfg.sources} combine={cfg.combine} partner={cfg.partner} "
          f"copies={cfg.copies} epochs={cfg.epochs} batch_copies={cfg.batch_copies} latent_dim={cfg.latent_dim} "
          f"channels={cfg.channels} class_steps={cfg.class_steps}")
    print(f"fit ({train.num_classes} class VAEs x {cfg.class_steps} steps): {fit_s:.1f} s")
    per_group = resample_s / max(1, len(chosen))
    if cfg.mode == "faithful":
        print(f"overlay: {len(chosen)} group VAEs x {steps} steps (batch {cfg.sources}x{cfg.batch_copies}): "
              f"{resample_s:.1f} s = {per_group:.1f} s per group = {1000 * per_group / steps:.1f} ms per step")
    else:
        print(f"overlay: {len(chosen)} hard images: {resample_s:.2f} s")
    print(f"encode+resample+decode: {total_s:.1f} s")
    print(f"{'#':>3} {'sources':<34} {'weights':<14} {'|z|':>6} {'ratio':>6} {'rank':>5} {'sep':>6} "
          f"{'rmse->sources':<18} {'rmse->other class':>8}")
    for j, ids, w, norm, ratio, rank, sep, d_src, d_other in table:
        print(f"{j:>3} {' + '.join(ids):<34} {','.join(f'{v:.2f}' for v in w):<14} {norm:6.2f} {ratio:6.2f} "
              f"{rank:5.2f} {sep:6.2f} {' '.join(f'{d:.3f}' for d in d_src):<18} {d_other:8.3f}")
    closer = sum(max(r[7]) < r[8] for r in table)
    print(f"overlays closer to every source than to the nearest other-class image: {closer} of {len(table)}")
    print(f"grids: {path} (sources | VAE reconstructions | sum, mean, rescaled | pixel mean), "
          f"{out / 'sources_and_overlays.png'}")


if __name__ == "__main__":
    main()
