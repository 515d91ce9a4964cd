"""Made-up run directories in the exact layout ``augment`` and ``compare`` write, for the report's
tests and ``benchmarks/bench_report.py``: any size, mixing methods (several weighted sources per
image), per-image metrics, a quality gate's verdicts, and records a newer lagaug may add.

numpy and Pillow only; the figures are invented and mean nothing."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from lagaug.core.store.atomic import atomic_write_bytes, atomic_write_json, atomic_write_lines

CLASSES = ["ok", "defect"]


def _png(rng: np.random.Generator, side: int, bright: bool) -> bytes:
    from PIL import Image

    yy, xx = np.mgrid[0:side, 0:side]
    base = 90 + 40 * np.sin(xx / max(side / 6, 1)) + rng.normal(0, 18, (side, side))
    if bright:
        r, c = rng.integers(0, max(side - side // 4, 1), size=2)
        base[r : r + side // 4, c : c + side // 4] += 110
    buf = io.BytesIO()
    Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _data(counts_train: tuple[int, int], side: int) -> dict:
    return {"description": f"made-up inspection data, {side}px gray", "source": "lagaug.report.demo",
            "classes": CLASSES, "channels": 1, "image_size": [side, side],
            "counts": {"train": dict(zip(CLASSES, counts_train)), "val": {"ok": 20, "defect": 5},
                       "test": {"ok": 90, "defect": 30}},
            "carved": ["val from train (20%)"], "split_seed": 0, "unlabeled": None}


def _members(rng: np.random.Generator, level: float, k: int = 3) -> list[dict]:
    return [{"auc": float(np.clip(level + rng.normal(0, 0.04), 0, 1)),
             "f1": float(np.clip(level - 0.1 + rng.normal(0, 0.05), 0, 1)),
             "accuracy": float(np.clip(level + rng.normal(0, 0.03), 0, 1))} for _ in range(k)]


def _summary(members: list[dict]) -> dict:
    out = {}
    for key in ("auc", "f1", "accuracy"):
        v = np.array([m[key] for m in members])
        out[f"{key}_mean"] = float(v.mean())
        out[f"{key}_ci"] = float(4.30 * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return out


def write_augment_run(root: str | Path, images: int = 12, side: int = 32, iterations: int = 2,
                      sources: int = 2, seed: int = 0, finished: bool = True) -> Path:
    """An augment run with ``images`` synthetic images per round, each mixed from ``sources``
    weighted sources; every fourth image dropped by a quality gate. ``finished=False`` leaves the
    last iteration's metrics out (a killed run)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    hard_k = max(1, min(images // 3, 50))
    pool = max(100, 4 * hard_k)
    atomic_write_json(root / "config.json", {
        "method": "mix", "hard_k": hard_k, "iterations": iterations, "variants": -(-images // hard_k), "data": None,
        "classes": None, "ensemble": 3, "epochs": 2, "preset": "cpu", "seed": seed, "split_seed": 0,
        "set": {"alpha": 0.5}, "out": str(root)})
    atomic_write_json(root / "data.json", _data((80, 20), side))
    atomic_write_json(root / "generator" / "generator.json", {
        "method": "mix", "method_version": 1, "lagaug_version": "0.1.0", "config": {"alpha": 0.5},
        "image_shape": [1, side, side], "class_names": CLASSES,
        "extra": {"fit": {"train_loss": {"ok": 0.12, "defect": 0.2}, "epochs_run": 250, "seconds": 3.5,
                          "val_history": [{"epoch": e, "val_recon": round(0.02 + 0.3 / e, 6)} for e in range(1, 251)]}}})
    atomic_write_json(root / "timings.json", {"fit_generator": 3.5, "ensembles": 12.25, "synthesis": 0.4})
    train_ids = [f"train/{CLASSES[i % 5 == 0]}/{i:04d}" for i in range(pool)]
    for it in range(iterations + 1):
        if it == iterations and not finished:
            break
        members = _members(rng, 0.7 + 0.02 * it)
        metrics = {"iteration": it, "train_size": pool + it * images, "synthetic_total": it * images,
                   "added": images if it else 0, **_summary(members), "per_member": members,
                   "stage_seconds": {"train": 4.0 + it, "score": 0.3}}
        if it:
            for key in ("auc", "f1", "accuracy"):
                metrics[f"{key}_delta"], metrics[f"{key}_delta_ci"] = float(rng.normal(0, 0.02)), 0.05
        if it == 1:
            metrics["ensemble_warning"] = "member 2 scored at chance level (AUC 0.50)"
        atomic_write_json(root / "iterations" / f"it{it:03d}" / "metrics.json", metrics)
        if it == iterations:
            break
        batch = f"synthetic/it{it + 1:03d}"
        chosen = rng.choice(pool, size=hard_k, replace=False)
        saved = sorted(set(chosen.tolist()) | set(rng.choice(pool, size=hard_k, replace=False).tolist()))
        source_lines = []
        for r in saved:
            atomic_write_bytes(root / batch / "sources" / f"{r:05d}.png", _png(rng, side, "defect" in train_ids[r]))
            source_lines.append({"id": train_ids[r], "file": f"{r:05d}.png", "label": train_ids[r].split("/")[1],
                                 "score": float(rng.uniform(0.05, 0.4)), "chosen": bool(r in chosen)})
        atomic_write_lines(root / batch / "sources" / "sources.jsonl", (json.dumps(x) for x in source_lines))
        lines = []
        for j in range(images):
            rows = [int(chosen[j % hard_k])] + [int(x) for x in rng.choice(saved, size=sources - 1)]
            w = rng.dirichlet(np.ones(sources)).tolist() if sources > 1 else [1.0]
            w = sorted(w, reverse=True)
            labels = [train_ids[r].split("/")[1] for r in rows]
            soft = [sum(wi for wi, lab in zip(w, labels) if lab == c) for c in CLASSES]
            line = {"id": f"{batch}/{j:05d}", "file": f"{batch}/{j:05d}.png", "method": "mix", "seed": 7,
                    "iteration": it + 1, "source": [train_ids[r] for r in rows], "source_label": labels,
                    "source_weight": w, "label": CLASSES[int(np.argmax(soft))], "label_index": int(np.argmax(soft)),
                    "soft": soft, "structure_error": float(rng.uniform(0, 0.2)), "codes_changed": int(rng.integers(0, 64)),
                    "label_fidelity": float(rng.uniform(0.4, 1.0)), "source_score": [0.1] * len(rows),
                    "dropped": j % 4 == 3}
            if line["dropped"]:
                line["reason"] = f"label fidelity {line['label_fidelity']:.2f} below 0.5"
            atomic_write_bytes(root / line["file"], _png(rng, side, line["label"] == "defect"))
            lines.append(line)
        atomic_write_lines(root / batch / "manifest.jsonl", (json.dumps(x) for x in lines))
        by_class = {}
        for c in CLASSES:
            mine = [x for x in lines if x["label"] == c]
            if mine:
                val_n = _data((80, 20), side)["counts"]["val"][c]
                by_class[c] = {"made": len(mine), "passed": sum(not x["dropped"] for x in mine),
                               "class_wins_mean": float(np.mean([x["label_fidelity"] > 0.5 for x in mine])),
                               "label_fidelity_mean": float(np.mean([x["label_fidelity"] for x in mine])),
                               "val_images": val_n, "val_too_few": val_n < 10, "val_class_wins_mean": 0.9,
                               "val_label_fidelity_mean": 0.8}
        atomic_write_json(root / batch / "quality.json", {
            "classifier": f"iteration {it} ensemble", "made": len(lines), "kept": sum(not x["dropped"] for x in lines),
            "dropped": sum(x["dropped"] for x in lines), "gate": True, "by_class": by_class})
    return root


def write_compare_run(root: str | Path, images: int = 30, side: int = 16, repeats: int = 2, seed: int = 0) -> Path:
    """A compare run (method ``mix``, all five arms) with ``images`` synthetic images per repeat."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    arms = ["real", "classic", "mix", "classic+mix", "duplicate"]
    atomic_write_json(root / "config.json", {"method": "mix", "arms": None, "repeats": repeats, "preset": "cpu",
                                             "ensemble": {"members": 1}, "synthetic_per_image": 1.0, "alpha": 0.05,
                                             "test_size": None, "seed": seed, "out": str(root)})
    atomic_write_json(root / "data.json", _data((30, 30), side))
    cells = []
    for r in range(repeats):
        folder = root / "repeats" / f"r{r:03d}"
        lines = []
        for j in range(images):
            label = CLASSES[j % 2]
            line = {"id": f"synthetic/r{r:03d}/{j:05d}", "file": f"synthetic/{j:05d}.png", "method": "mix", "seed": 3,
                    "repeat": r, "source": [f"npz:train/{j}"], "source_label": [label], "source_weight": [1.0],
                    "label": label, "label_index": j % 2, "soft": [1.0 - j % 2, float(j % 2)],
                    "latent_distance": float(rng.uniform(0, 3))}
            atomic_write_bytes(folder / line["file"], _png(rng, side, label == "defect"))
            lines.append(line)
        atomic_write_lines(folder / "synthetic" / "manifest.jsonl", (json.dumps(x) for x in lines))
        atomic_write_json(folder / "synthesis.json", {"planned": images, "made": images, "seconds": 0.01})
        atomic_write_json(folder / "generator" / "generator.json", {"method": "mix", "lagaug_version": "0.1.0",
                                                                     "extra": {"fit": {"seconds": 1.0}}})
        atomic_write_bytes(folder / "grid.png", _png(rng, 4 * side, False))
        for arm in arms:
            m = _members(rng, 0.7 + (0.05 if "mix" in arm else 0), 1)[0]
            cells.append({"repeat": r, "arm": arm, "train_size": 60 + (images if arm not in ("real", "classic") else 0),
                          "real": 60, "added": images if arm not in ("real", "classic") else 0, "val_size": 10,
                          "test_size": 120, "epochs": 2, **m, "per_member": [m], "seconds": 0.5})
    atomic_write_lines(root / "cells.jsonl", (json.dumps(c) for c in cells))
    rows = []
    for arm in arms:
        got = [c for c in cells if c["arm"] == arm]
        row = {"arm": arm, "repeats": len(got), "train_size": float(np.mean([c["train_size"] for c in got])),
               "added": float(np.mean([c["added"] for c in got])), **_summary(got),
               "f1_delta_vs_real": float("nan") if arm == "real" else 0.03,
               "f1_p_vs_real": float("nan") if arm == "real" else 0.5,
               "f1_significant_vs_real": None if arm == "real" else False}
        rows.append(row)
    comparisons = [{"arm": a, "baseline": b, "metric": m, "family": "primary" if m == "f1" and a == "mix" else "secondary",
                    "n": repeats, "delta": 0.03, "delta_ci": 0.2, "p": 0.5, "p_holm": 1.0, "min_p": 0.5,
                    "test": "exact Wilcoxon signed-rank", "significant": False}
                   for a, b in (("classic", "real"), ("mix", "real"), ("mix", "duplicate")) for m in ("f1", "auc")]
    atomic_write_json(root / "results.json", {"rows": rows, "comparisons": comparisons})
    return root
