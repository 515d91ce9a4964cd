"""The one place synthetic images are written to and read back from a run: PNGs + manifest lines.

The loop (``RUN/synthetic/itNNN/``), ``compare`` (``RUN/repeats/rNNN/synthetic/``) and ``lagaug
sample`` (``--out``) all write through :func:`write_synthetic` and read through
:func:`read_synthetic`. A manifest line records, per image: ``id``, ``file`` (relative to the
root the caller names), ``method``, ``seed``, its provenance — ``source`` (ids, primary first),
``source_label`` and ``source_weight`` (one entry per source) — ``label``, ``label_index``,
``soft``, the method's per-image metrics, and whatever the caller adds (iteration, repeat, scores).
An image whose kept region is known (its defect: ``Synthesis.masks``) gets its mask written beside it
(``NNNNN_mask.png``, white on the region) and named in ``mask``; the method's per-image notes
(``Synthesis.notes``: e.g. ``region_source``, a transplant's background) join its line.
Lines are strict JSON: a metric that is not a finite number is written as ``null``.
When a ``lagaug_filter_synthesized`` filter judged the batch (e.g. the quality gate), every line
also says ``dropped`` (true / false) and a dropped one its ``reason``; dropped images are still
written as PNGs, so the record and the report show them, but never join a training set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from lagaug.core.contract.method import Synthesis
from lagaug.core.data.dataset import ImageSet
from lagaug.core.store.atomic import atomic_write_lines, save_png, strict_json

MASK_SUFFIX = "_mask.png"  # beside a synthetic image: where its kept region (its defect) lies


def provenance(synth: Synthesis, j: int, ids: Sequence[str], labels: Sequence[str]) -> dict[str, list]:
    """``source``, ``source_label`` and ``source_weight`` of image ``j`` (padding dropped)."""
    rows = [(int(r), float(w)) for r, w in zip(synth.source[j].tolist(), synth.weight[j].tolist()) if r >= 0]
    return {
        "source": [ids[r] for r, _ in rows],
        "source_label": [labels[r] for r, _ in rows],
        "source_weight": [w for _, w in rows],
    }


def write_synthetic(root: Path, folder: str, synth: Synthesis, pool: ImageSet, *, method: str, seed: int,
                    id_prefix: str, extra: dict[str, Any] | None = None,
                    per_image: Callable[[int], dict[str, Any]] | None = None,
                    file_name: Callable[[int], str] | None = None) -> list[dict]:
    """Write every image of ``synth`` as ``root/folder/NAME.png`` and ``root/folder/manifest.jsonl``.

    ``pool`` is the image set ``synth.source`` indexes (ids and class names). ``extra`` goes into
    every line, ``per_image(j)`` into line ``j``. The manifest is written last: its presence marks
    the batch complete. Returns the lines.
    """
    root = Path(root)
    names = file_name or (lambda j: f"{j:05d}.png")
    labels = [pool.class_names[int(c)] for c in pool.labels]
    lines = []
    for j in range(len(synth)):
        name = names(j)
        save_png(root / folder / name, synth.images[j])
        soft = synth.soft[j].float()
        line = {
            "id": f"{id_prefix}/{Path(name).stem}", "file": f"{folder}/{name}" if folder else name,
            "method": method, "seed": seed, **(extra or {}),
            **provenance(synth, j, pool.ids, labels),
            "label": pool.class_names[int(soft.argmax())], "label_index": int(soft.argmax()),
            "soft": [float(v) for v in soft],
            **{k: float(v[j]) for k, v in synth.metrics.items()},
            **(synth.notes[j] if synth.notes is not None else {}),
        }
        if synth.masks is not None and bool(synth.masks[j].any()):  # where its kept region (defect) lies
            mask_name = f"{Path(name).stem}{MASK_SUFFIX}"
            save_png(root / folder / mask_name, synth.masks[j][None].to(torch.uint8) * 255)
            line["mask"] = f"{folder}/{mask_name}" if folder else mask_name
        if synth.dropped is not None:  # a filter judged the batch: its verdict, and why
            line["dropped"] = bool(synth.dropped[j])
            if line["dropped"]:
                line["reason"] = (synth.reasons or [None] * len(synth))[j] or "dropped by a filter"
        if per_image is not None:
            line.update(per_image(j))
        lines.append(line)
    atomic_write_lines(root / folder / "manifest.jsonl", (strict_json(line) for line in lines))
    return lines


def read_manifest(path: Path) -> list[dict] | None:
    """The lines of a manifest file, or ``None`` when it does not exist (the batch is not done)."""
    path = Path(path)
    if not path.exists():
        return None
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_png(path: Path, channels: int) -> torch.Tensor:
    """A PNG written by a run, as uint8 ``(C, H, W)``."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("L" if channels == 1 else "RGB"))
    t = torch.from_numpy(arr.copy())
    return t[None] if channels == 1 else t.permute(2, 0, 1)


def read_synthetic(root: Path, lines: list[dict], like: ImageSet) -> ImageSet | None:
    """The synthetic images of ``lines`` (files relative to ``root``) as an ``ImageSet`` with
    ``like``'s classes, leaving out lines a filter marked ``dropped`` (their PNGs are kept for the
    record, not for training); ``None`` when there are none."""
    lines = [line for line in lines if not line.get("dropped")]
    if not lines:
        return None
    images = torch.stack([load_png(Path(root) / line["file"], like.channels) for line in lines])
    masks = None
    if any(line.get("mask") for line in lines):
        masks = torch.zeros(len(lines), *images.shape[2:], dtype=torch.bool)
        for i, line in enumerate(lines):
            if line.get("mask"):
                masks[i] = load_png(Path(root) / line["mask"], 1)[0] > 127
    return ImageSet(
        images=images,
        labels=torch.tensor([line["label_index"] for line in lines]),
        class_names=like.class_names,
        ids=[line["id"] for line in lines],
        soft=torch.tensor([line["soft"] for line in lines], dtype=torch.float32),
        synthetic=torch.ones(len(lines), dtype=torch.bool),
        sources=[tuple(line["source"]) for line in lines],
        masks=masks,
    )


def write_sources(root: Path, folder: str, pool: ImageSet, synth: Synthesis, chosen: torch.Tensor,
                  scores: torch.Tensor | None = None) -> list[dict]:
    """Save the real images a batch was made from — the ``chosen`` rows of ``pool`` and every
    other source row ``synth`` names — as ``root/folder/NNNNN.png`` (``NNNNN``: the pool row) with
    ``root/folder/sources.jsonl`` (``id``, ``file`` relative to ``folder``, ``label``, ``score``,
    ``chosen``), so the run's report can show each hard image beside what was made from it."""
    root = Path(root)
    picked = {int(r) for r in chosen.tolist()}
    rows = sorted(picked | {int(r) for r in synth.source.flatten().tolist() if r >= 0})
    lines = []
    for r in rows:
        name = f"{r:05d}.png"
        save_png(root / folder / name, pool.images[r])
        lines.append({"id": pool.ids[r], "file": name, "label": pool.class_names[int(pool.labels[r])],
                      "score": None if scores is None or r >= len(scores) else float(scores[r]),
                      "chosen": r in picked})
    atomic_write_lines(root / folder / "sources.jsonl", (strict_json(line) for line in lines))
    return lines
