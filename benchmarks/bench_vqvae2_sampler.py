"""Time the cached PixelSNAIL sampler against the naive full-recompute sampler.

Same network, same weights, same noise: a bottom prior over a 32x32 map conditioned on 16x16 top
codes, batch 8, channel 128, 2 residual blocks per PixelBlock; the other sizes are the reference
bottom prior's (512 codes, kernel 5, 4 blocks, res_channel 256, 3 condition res blocks).

The naive sampler re-runs the network over every row so far for every pixel; on a CPU it takes
most of an hour, so ``--rows R`` times it on R evenly spread rows only and extrapolates to the
whole map (``time * H / R``; the per-pixel cost grows linearly with the row index, so evenly
spread rows give the mean). The output says when it extrapolated. ``--rows 0`` times all rows.

    python benchmarks/bench_vqvae2_sampler.py                 # CPU, naive on 2 rows
    python benchmarks/bench_vqvae2_sampler.py --device cuda --rows 0
"""

from __future__ import annotations

import argparse
import time

import torch

from lagaug.plugins.vqvae2.pixelsnail import PixelSNAIL
from lagaug.plugins.vqvae2.sampler import naive_sample, sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rows", type=int, default=2, help="naive sampler rows to time (0 = all)")
    ap.add_argument("--size", type=int, default=32, help="bottom map side (top is half)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--channel", type=int, default=128)
    ap.add_argument("--n-res-block", type=int, default=2)
    ap.add_argument("--res-channel", type=int, default=256)
    ap.add_argument("--n-class", type=int, default=512)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = leave)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":  # exact fp32 for both samplers, so the comparison is like for like
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    gen = torch.Generator().manual_seed(args.seed)
    h = args.size
    model = PixelSNAIL([h, h], args.n_class, args.channel, 5, 4, args.n_res_block,
                       args.res_channel, attention=False, dropout=0.1, n_cond_res_block=3,
                       cond_res_channel=args.res_channel, generator=gen).to(device).eval()
    codes = torch.randint(0, args.n_class, (args.batch, h, h), generator=gen).to(device)
    top = torch.randint(0, args.n_class, (args.batch, h // 2, h // 2), generator=gen).to(device)
    n_param = sum(p.numel() for p in model.parameters())
    print(f"bottom prior: map {h}x{h} | top {h // 2}x{h // 2} | batch {args.batch} | channel "
          f"{args.channel} | res blocks {args.n_res_block} | res_channel {args.res_channel} | "
          f"codes {args.n_class} | {n_param / 1e6:.1f}M params | device {device} | "
          f"threads {torch.get_num_threads()}")

    def timed(fn):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return out, time.perf_counter() - t0

    mask = None
    rows = list(range(h))
    if 0 < args.rows < h:
        rows = [round((r + 0.5) * h / args.rows - 0.5) for r in range(args.rows)]
        mask = torch.zeros(h, h, dtype=torch.bool)
        mask[rows] = True

    sample(model, codes[:, :4].new_zeros(codes.shape), mask=torch.zeros(h, h, dtype=torch.bool),
           condition=top)  # warm-up
    cached, t_cached = timed(lambda: sample(model, codes, condition=top,
                                            generator=torch.Generator().manual_seed(1)))
    print(f"cached sampler : {t_cached:9.2f} s  ({h * h} pixels, {t_cached / (h * h) * 1e3:.2f} ms/pixel)")

    naive, t_naive = timed(lambda: naive_sample(model, codes, mask=mask, condition=top,
                                                generator=torch.Generator().manual_seed(1)))
    if mask is not None:
        est = t_naive * h / len(rows)
        print(f"naive sampler  : {est:9.2f} s  EXTRAPOLATED from {t_naive:.2f} s on rows {rows} "
              f"({len(rows)} of {h}) x {h / len(rows):g}")
        same = torch.equal(naive[:, rows], sample(model, codes, mask=mask, condition=top,
                                                  generator=torch.Generator().manual_seed(1))[:, rows])
    else:
        est = t_naive
        print(f"naive sampler  : {est:9.2f} s  (all {h} rows)")
        same = torch.equal(naive, cached)
    print(f"ratio          : {est / t_cached:9.1f}x  (aim 100x; under 30x the cache is not working)")
    print(f"same codes from both samplers with the same seed: {same}")


if __name__ == "__main__":
    main()
