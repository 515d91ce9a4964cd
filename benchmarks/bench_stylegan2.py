"""Time the ``stylegan2`` method: generator training (with a sample grid to look at) and
projection per image.

    python benchmarks/bench_stylegan2.py fit --out /tmp/sg2gen             # embedded data, 32 px
    python benchmarks/bench_stylegan2.py fit --data ../shared/data/mnist.npz --out /tmp/sg2mnist
    python benchmarks/bench_stylegan2.py project --generator /tmp/sg2gen --batches 1,8,32

``fit`` trains with the method's defaults (``--set key=value`` overrides them), saves the generator
and ``samples.png`` (8 rows of 8 samples from g_ema, then a row of training images) into ``--out``,
and prints the time per training step, the fit's stages and the sample statistics against the
data's. ``project`` projects training images of the same data in batches of each size and prints
seconds per image, steps run (early stop) and the mean projection error. ``--threads`` sets torch's
CPU threads (default 1: the shared 2-core machine). Figures depend on what else runs on the machine.
The whole README command is timed stage by stage by ``bench_augment.py --method stylegan2``.

Measured (2026-12-02, this repository's 2-core CPU machine shared with other jobs at load 7-9, so
wall times are 2.5-4x the CPU times; one torch thread; defaults: 32 px, generator 0.27M and
discriminator 0.29M parameters, 1000 steps of batch 16):

* ``fit`` on the embedded data (2000-image pool + 240 training images): GAN training 173 ms CPU
  per step (173 s CPU, 698 s wall), projecting 104 training images for the class directions
  (50 steps) 22.6 s CPU; samples match the data's pixel statistics (mean 0.491 vs 0.490, std 0.091
  vs 0.101, neighbour contrast 0.023 vs 0.022; untrained: 0.110 / 0.204 / 0.022) and look like
  the gray, mottled surfaces, without the data's fine streaks, light bands or defects.
* Same networks on MNIST (training images only, 800 steps, about 0.2 s CPU per step): clear
  digit strokes, but few modes (mostly 9, 5, 0): partial mode collapse at this length.
* ``project`` (150 steps, the default; W, noise maps optimised): 0.86 s CPU per image alone,
  0.83 in batches of 4, 0.81 in batches of 16 (compute-bound on a CPU: batching saves little
  here; it is what makes a GPU worth it); mean projection error 0.023 (mean absolute pixel error,
  [0, 1] units); the early stop did not fire within 150 steps (the loss still fell).
* The README command ``lagaug augment --method stylegan2 --hard-k 2``: 12 min 59 s wall, 296 s
  CPU (user) for the whole run, of which GAN training 9 min 55 s wall.
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from lagaug.core.config import parse_overrides
from lagaug.core.contract.method import StageContext
from lagaug.core.data import load_data
from lagaug.core.progress import Progress
from lagaug.core.run.generators import fit_generator, load_generator


class TimingProgress(Progress):
    """A quiet Progress that records each task's wall time and step count."""

    def __init__(self):
        super().__init__(quiet=True)
        self.records: list[tuple[str, float, float, float | None]] = []

    @contextmanager
    def task(self, description, total):
        start, cpu = time.perf_counter(), time.process_time()
        with super().task(description, total) as handle:
            yield handle
        self.records.append((description, time.perf_counter() - start, time.process_time() - cpu, total))


def sample_grid(method, real: torch.Tensor, path: Path, seed: int) -> None:
    from lagaug.core.store.atomic import save_png

    images = method.generate(64, torch.Generator().manual_seed(seed))
    c, h, w = method.image_shape
    rows = [images[i * 8 : (i + 1) * 8] for i in range(8)] + [real[:8]]
    grid = torch.cat([torch.cat(list(r), 2) for r in rows], 1)
    save_png(path, grid.repeat_interleave(3, 1).repeat_interleave(3, 2))


def cmd_fit(args) -> None:
    splits = load_data(args.data, image_size=args.image_size, seed=args.seed)
    overrides = parse_overrides(args.set)
    progress = TimingProgress()
    start, cpu = time.perf_counter(), time.process_time()
    method = fit_generator("stylegan2", splits, overrides=overrides, seed=args.seed, progress=progress,
                           out=args.out, **plugins_kw())
    total, total_cpu = time.perf_counter() - start, time.process_time() - cpu
    m = method.fit_metrics
    out = Path(args.out)
    sample_grid(method, splits.train.float_images(torch.arange(0, len(splits.train), max(1, len(splits.train) // 8))),
                out / "samples.png", args.seed)
    print(f"data: {splits.description}")
    print(f"generator {m['generator_parameters'] / 1e6:.2f}M params, discriminator "
          f"{m['discriminator_parameters'] / 1e6:.2f}M; trained on {m['trained_on']}")
    print("stage                                      wall s    CPU s   (CPU ms per step)")
    for name, seconds, cpu_s, steps in progress.records:
        per = f"  ({cpu_s / steps * 1000:.0f} ms/step)" if steps else ""
        print(f"  {name:40s} {seconds:7.1f}  {cpu_s:7.1f}{per}")
    print(f"fit total: wall {total:.1f} s, CPU {total_cpu:.1f} s (CPU time is what a free core would take)")
    rec = m["training"]
    print("d_loss per window:", [round(v, 3) for v in rec["d_loss"]])
    print("g_loss per window:", [round(v, 3) for v in rec["g_loss"]])
    print("sample statistics (mean, std, edge, image_mean_std):")
    for key in ("data_stats", "sample_stats_untrained", "sample_stats"):
        print(f"  {key:24s}", json.dumps({k: round(v, 4) for k, v in m[key].items()}))
    if "class_directions" in m:
        print("class directions:", json.dumps(m["class_directions"]))
    print(f"wrote {out}/samples.png and the generator")


def plugins_kw() -> dict:
    """``plugins=`` for the core API where it takes a plugin manager (newer cores)."""
    from lagaug.core.contract import plugins

    make = getattr(plugins, "make_plugin_manager", None)
    return {"plugins": make()} if make is not None else {}


def cmd_project(args) -> None:
    method = load_generator(args.generator, **plugins_kw())
    splits = load_data(args.data, image_size=method.image_shape[1], seed=args.seed)
    images = splits.train.float_images(torch.arange(min(args.n, len(splits.train))))
    for batch in (int(b) for b in args.batches.split(",")):
        ctx = StageContext(generator=torch.Generator().manual_seed(args.seed),
                           options={"proj_batch": batch, **parse_overrides(args.set)})
        start, cpu = time.perf_counter(), time.process_time()
        latents = method.encode(images, torch.eye(method.num_classes)[splits.train.labels[: len(images)]], ctx)
        seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
        steps = latents.info["projection_steps"]
        print(f"batch {batch:3d}: {seconds / len(images):6.3f} s/image wall, {cpu_s / len(images):6.3f} s/image CPU "
              f"({len(images)} images, steps {min(steps)}-{max(steps)}), projection error "
              f"{float(latents.codes['projection_error'].mean()):.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("fit", "project"):
        p = sub.add_parser(name)
        p.add_argument("--data", default=None, help="data source (default: the embedded set)")
        p.add_argument("--image-size", type=int, default=32)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--set", action="append", default=[], help="method option key=value")
    sub.choices["fit"].add_argument("--out", required=True)
    sub.choices["project"].add_argument("--generator", required=True)
    sub.choices["project"].add_argument("--n", type=int, default=32, help="training images to project")
    sub.choices["project"].add_argument("--batches", default="1,8,32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    {"fit": cmd_fit, "project": cmd_project}[args.cmd](args)


if __name__ == "__main__":
    main()
