"""Does lagaug's classifier ensemble learn small, imbalanced real sets?

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_classifiers.py                # everything
    python benchmarks/bench_classifiers.py --only embedded neu_imb --members 3         # a few rows
    python benchmarks/bench_classifiers.py --only curves --json /tmp/curves.json

For each setting it trains, in one run, (a) a reference written the plain way — a short timm loop:
the same model, AdamW at torch's defaults, shuffled batches of 32, plain cross-entropy, the same
number of epochs, the last epoch kept, on every drawn training image (validation ones included,
as a user without lagaug would) — and (b) lagaug's ensemble with the ``cpu`` preset (or
``--preset``). Both use the same member count and are scored on the same test images: mean AUC and
macro-F1 over members with 95% intervals, the lowest member's macro-F1, the majority-class
macro-F1 (always predicting the most common test class) and wall and CPU seconds per member (CPU
time is what other jobs on a shared machine do not inflate).

Settings (``--data`` points at the shared data folder):

* ``embedded``: lagaug's embedded inspection set at 32 px (``load_data(None, image_size=32)``);
* ``mnist5`` / ``mnist20``: 5 / 20 MNIST training images per class (28 px), tested on 200 per class;
* ``neu5`` / ``neu20``: 5 / 20 NEU steel-defect images per class (64 px), tested on all 360;
* ``neu_imb``: NEU with 5 images of crazing and inclusion and 60 of the four other classes;
* ``curves``: lagaug's ensemble against images per class on NEU (5, 10, 20, 40) and MNIST (5, 10, 20, 50);
* ``paper``: the ``paper`` preset (ConvNeXt-tiny) on ``--paper-on`` settings (neu20 and the
  embedded set), with ``--paper-members`` members and ``--paper-epochs`` epochs (scaled down from
  20 x 150 to fit a CPU; ConvNeXt-tiny cannot take MNIST's 28 px).

Validation images are carved from the drawn training images class by class (20%, at least one per
class); the draw and the carve are seeded (``--seed``). Run it by hand; wall times depend on the
machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lagaug.core.classifier import resolve_ensemble_config, train_ensemble
from lagaug.core.classifier.chance import majority_scores
from lagaug.core.data import ImageSet, load_data
from lagaug.core.metrics import classification_metrics, mean_ci

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NEU_RARE = ("crazing", "inclusion")


# -- data -------------------------------------------------------------------------------------------


def _image_set(x: np.ndarray, y: np.ndarray, names: list[str], tag: str) -> ImageSet:
    return ImageSet(images=torch.from_numpy(np.ascontiguousarray(x[:, None])), labels=torch.from_numpy(y.astype(np.int64)),
                    class_names=names, ids=[f"{tag}/{i}" for i in range(len(y))])


def draw(npz: Path, per_class: dict[int, int] | int, seed: int, test_per_class: int | None = None):
    """Train / validation / test sets: ``per_class`` training images of each class drawn with
    ``seed``, 20% of each class (at least one) carved for validation; the test split whole or
    ``test_per_class`` images of each class (the first ones, fixed)."""
    with np.load(npz, allow_pickle=False) as f:
        x, y, xt, yt = f["x_train"], f["y_train"].astype(np.int64), f["x_test"], f["y_test"].astype(np.int64)
        names = [str(n) for n in f["class_names"]]
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for c in range(len(names)):
        k = per_class if isinstance(per_class, int) else per_class[c]
        picked = rng.choice(np.flatnonzero(y == c), size=k, replace=False)
        n_val = max(1, round(0.2 * k)) if k > 1 else 0
        val_idx += picked[:n_val].tolist()
        train_idx += picked[n_val:].tolist()
    if test_per_class is not None:
        keep = np.concatenate([np.flatnonzero(yt == c)[:test_per_class] for c in range(len(names))])
        xt, yt = xt[keep], yt[keep]
    train = _image_set(x[sorted(train_idx)], y[sorted(train_idx)], names, "train")
    val = _image_set(x[sorted(val_idx)], y[sorted(val_idx)], names, "val")
    return train, val, _image_set(xt, yt, names, "test")


def settings(data: Path, seed: int) -> dict:
    """name -> callable returning ``(train, val, test, orientation_invariant)``."""
    mnist, neu = data / "mnist.npz", data / "neu_det_64.npz"

    def embedded():
        s = load_data(None, image_size=32, seed=seed)
        return s.train, s.val, s.test, True

    def mnist_k(k):
        return lambda: (*draw(mnist, k, seed, test_per_class=200), False)

    def neu_k(k):
        return lambda: (*draw(neu, k, seed), True)

    def neu_imb():
        with np.load(neu, allow_pickle=False) as f:
            names = [str(n) for n in f["class_names"]]
        return (*draw(neu, {c: 5 if n in NEU_RARE else 60 for c, n in enumerate(names)}, seed), True)

    return {"embedded": embedded, "mnist5": mnist_k(5), "mnist20": mnist_k(20), "neu5": neu_k(5),
            "neu20": neu_k(20), "neu_imb": neu_imb, **{f"mnist{k}": mnist_k(k) for k in (10, 50)},
            **{f"neu{k}": neu_k(k) for k in (10, 40)}}


# -- the plain reference ----------------------------------------------------------------------------


def reference_member(train: ImageSet, model_name: str, epochs: int, seed: int) -> torch.nn.Module:
    """A timm classifier trained the plain way (see the module docstring)."""
    import timm

    torch.manual_seed(seed)
    model = timm.create_model(model_name, pretrained=False, num_classes=train.num_classes, in_chans=train.channels)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = train.float_images(), train.labels
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(y))
        for i in range(0, len(y), 32):
            idx = order[i : i + 32]
            if len(idx) < 2:  # BatchNorm cannot train on one image
                continue
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def member_metrics(model: torch.nn.Module, test: ImageSet) -> dict:
    probs = torch.cat([F.softmax(model(test.float_images(range(i, min(i + 256, len(test))))), 1)
                       for i in range(0, len(test), 256)])
    return classification_metrics(probs.numpy(), test.labels.numpy())


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    """Wall and CPU seconds since ``start`` (CPU time is what other jobs on the machine do not inflate)."""
    now = clock()
    return now[0] - start[0], now[1] - start[1]


# -- one row ----------------------------------------------------------------------------------------


def summary(per_member: list[dict], seconds: tuple[float, float], test: ImageSet) -> dict:
    """Means, intervals and the majority-class score; ``seconds``: (wall, CPU) for all members."""
    auc, auc_ci = mean_ci([m["auc"] for m in per_member])
    f1, f1_ci = mean_ci([m["f1"] for m in per_member])
    return {"auc": auc, "auc_ci": auc_ci, "f1": f1, "f1_ci": f1_ci, "f1_min": min(m["f1"] for m in per_member),
            "majority_f1": majority_scores(test.labels.numpy())[1], "s_per_member": seconds[0] / len(per_member),
            "cpu_s_per_member": seconds[1] / len(per_member),
            "per_member": per_member}


def run_reference(train, val, test, model_name, epochs, members, seed):
    start = clock()
    both = train.concat(val)
    per = [member_metrics(reference_member(both, model_name, epochs, seed + i), test) for i in range(members)]
    return summary(per, since(start), test)


def run_lagaug(train, val, test, invariant, preset, overrides, seed):
    cfg = resolve_ensemble_config(preset, overrides, source="--set")
    start = clock()
    ens = train_ensemble(train, val, cfg, torch.Generator().manual_seed(seed), orientation_invariant=invariant)
    per = [member_metrics(m, test) for m in ens.members]
    row = summary(per, since(start), test)
    row["kept_epochs"] = [h["kept_epoch"] for h in ens.history]
    row["recipe"] = {k: ens.history[0][k] for k in ("balance", "aug", "bn_recal", "steps_per_epoch")}
    row["config"] = asdict(cfg)
    return row


def fmt(name: str, what: str, n: str, row: dict) -> str:
    return (f"{name:<10} {what:<22} {n:>12} {row['auc']:.3f} ± {row['auc_ci']:.3f}  {row['f1']:.3f} ± {row['f1_ci']:.3f}"
            f"  {row['f1_min']:.3f}  {row['majority_f1']:.3f}  {row['s_per_member']:6.1f} {row['cpu_s_per_member']:6.1f}"
            + (f"  kept {row['kept_epochs']}" if "kept_epochs" in row else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None,
                        help="settings: embedded mnist5 mnist20 neu5 neu20 neu_imb curves paper (default: all)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--set", nargs="*", default=[], help="ensemble overrides key=value for lagaug's rows")
    parser.add_argument("--members", type=int, default=None, help="members for both (default: the preset's)")
    parser.add_argument("--paper-members", type=int, default=2)
    parser.add_argument("--paper-epochs", type=int, default=20)
    parser.add_argument("--paper-on", nargs="*", default=["neu20", "embedded"], help="settings for the paper rows")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write every row here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = dict(kv.split("=", 1) for kv in args.set)
    if args.members:
        overrides["members"] = args.members
    cfg = resolve_ensemble_config(args.preset, overrides)
    table = settings(args.data, args.seed)
    main_rows = ["embedded", "mnist5", "mnist20", "neu5", "neu20", "neu_imb"]
    wanted = args.only or [*main_rows, "curves", "paper"]
    rows, start = [], clock()
    print(f"torch threads {torch.get_num_threads()}; lagaug: preset {args.preset} {overrides or ''}; "
          f"{cfg.members} members x {cfg.epochs} epochs of {cfg.classifier}")
    print(f"{'setting':<10} {'trainer':<22} {'train/val/test':>12} {'AUC':<13}  {'macro-F1':<13}  {'minF1':<5}  "
          f"{'major':<5}  {'wall/m':>6} {'cpu/m':>6}")

    def one(name, preset=args.preset, extra=None, reference=not args.no_reference, label=None):
        train, val, test, invariant = table[name]()
        n = f"{len(train)}/{len(val)}/{len(test)}"
        if reference:
            ref = run_reference(train, val, test, cfg.classifier, cfg.epochs, cfg.members, args.seed)
            rows.append({"setting": name, "trainer": "plain timm", **ref})
            print(fmt(name, "plain timm loop", n, ref), flush=True)
        row = run_lagaug(train, val, test, invariant, preset, {**overrides, **(extra or {})}, args.seed)
        rows.append({"setting": name, "trainer": label or f"lagaug {preset}", **row})
        print(fmt(name, label or f"lagaug {preset}", n, row), flush=True)

    for name in wanted:
        if name in table:
            one(name)
        elif name == "curves":
            for name in ("neu10", "neu40", "mnist10", "mnist50"):
                one(name, reference=False)
        elif name == "paper":
            for name in args.paper_on:
                one(name, "paper", {"members": args.paper_members, "epochs": args.paper_epochs}, reference=False,
                    label=f"paper {args.paper_members}x{args.paper_epochs}ep")
        else:
            sys.exit(f"--only: unknown setting {name!r}")
    wall, cpu = since(start)
    print(f"total: wall {wall:.0f} s, CPU {cpu:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=lambda v: None if isinstance(v, float) and math.isnan(v) else v))


if __name__ == "__main__":
    main()
