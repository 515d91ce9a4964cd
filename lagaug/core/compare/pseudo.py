"""The ``pseudo-label`` arm: what a practitioner with an unlabelled pool would try before any
generator — let the classifiers label the pool, and train on the confident part.

Per repeat: the repeat's reference ensemble (trained on its real training images, validation for
early stopping; the same one that judges images for the quality gate) labels every pool image,
streamed :data:`BATCH` at a time. A pool image whose confidence — the ensemble's largest mean class
probability — is at least ``pseudo_threshold`` is a candidate for its predicted class; each class
takes its ``pseudo_cap`` most confident candidates (ties: the lower pool index). With
``pseudo_rounds=2`` an ensemble trained on the real images plus round 1's images labels the pool
again, and the arm trains on round 2's. The arm's extra images are the pool images themselves,
with their predicted labels.

Files, in ``rNNN/pseudo-label/``: ``round1.jsonl`` (and ``round2.jsonl``) — one line per chosen pool
image: ``round``, ``index`` (in the pool), ``id`` (the pool's id), ``label``, ``label_index``,
``confidence`` —, written when the round is done (their presence marks it done),
``summary.json``: per round, the pool size, the candidates and the chosen images per class, the
threshold and the cap, and ``grid.png``: per class a real training image, then pool images given
that class, from the most to the least confident. ``round2-ensemble/`` holds the round-2 classifiers while they train (kept
with ``keep_checkpoints``).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import torch

from lagaug.core.classifier import train_ensemble
from lagaug.core.data.dataset import ImageSet, to_uint8
from lagaug.core.data.pools import indexed_batches
from lagaug.core.defaults.quality import ensemble_classifier
from lagaug.core.progress import Progress
from lagaug.core.runtime import stage_generator
from lagaug.core.store.atomic import atomic_write_json, atomic_write_lines

BATCH = 256  # pool images labelled at a time


def predict_pool(classify, pool, batch_size: int = BATCH, progress=None,
                 label: str = "pseudo-labels") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(indices, predicted class, confidence)`` of every readable pool image under ``classify``
    (images -> class probabilities), the pool streamed ``batch_size`` images at a time."""
    indices, classes, confidence = [], [], []
    with (progress or Progress(quiet=True)).task(f"{label}: {len(pool)} pool images", len(pool)) as task:
        for kept, images in indexed_batches(pool, batch_size):
            with torch.no_grad():
                probs = classify(images)
            conf, cls = probs.max(1)
            indices.append(torch.tensor(kept, dtype=torch.long))
            classes.append(cls.long().cpu())
            confidence.append(conf.float().cpu())
            task.advance(len(kept))
    if not indices:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.zeros(0)
    return torch.cat(indices), torch.cat(classes), torch.cat(confidence)


def choose(classes: torch.Tensor, confidence: torch.Tensor, threshold: float, cap: int,
           num_classes: int) -> list[int]:
    """Positions (into ``classes``) of the chosen images: per class, those with ``confidence >=
    threshold``, the ``cap`` most confident (ties: the earlier position), in class order."""
    chosen = []
    for c in range(num_classes):
        pos = torch.nonzero((classes == c) & (confidence >= threshold)).flatten().tolist()
        pos.sort(key=lambda p: (-float(confidence[p]), p))
        chosen += pos[:cap]
    return chosen


def default_cap(synthetic_per_image: float, n_train: int, num_classes: int) -> int:
    """Per-class cap that makes the arm add about as many images as a METHOD arm."""
    return max(1, math.ceil(synthetic_per_image * n_train / num_classes))


def pseudo_set(pool, lines: list[dict], class_names: list[str]) -> ImageSet:
    """The chosen pool images of ``lines`` with their predicted labels (read from the pool again)."""
    idx = [int(line["index"]) for line in lines]
    parts = [to_uint8(pool.images_at(idx[s : s + BATCH])) for s in range(0, len(idx), BATCH)]
    images = torch.cat(parts) if parts else torch.zeros(0, pool.channels, *pool.image_size, dtype=torch.uint8)
    return ImageSet(images, torch.tensor([int(line["label_index"]) for line in lines], dtype=torch.long),
                    list(class_names), [str(line["id"]) for line in lines])


def write_grid(path: Path, train: ImageSet, chosen: ImageSet, lines: list[dict], per_class: int = 12) -> None:
    """``grid.png``: per class, a real training image of it, then up to ``per_class`` pool images
    it was given, from the most to the least confident."""
    from lagaug.core.plots import save_pair_grid

    shown, picks, rows = [], [], []
    for c in range(train.num_classes):
        mine = sorted((j for j, line in enumerate(lines) if line["label_index"] == c),
                      key=lambda j: -lines[j]["confidence"])
        real = torch.nonzero(train.labels == c).flatten()
        if not mine or not len(real):
            continue
        step = max(1.0, len(mine) / per_class)
        picks += [mine[int(i * step)] for i in range(min(per_class, len(mine)))]
        rows += [len(shown)] * min(per_class, len(mine))
        shown.append(int(real[0]))
    if shown:
        save_pair_grid(path, train.float_images(shown), chosen.float_images(picks), torch.tensor(rows))


class PseudoLabelStage:
    """The reference ensemble and the pseudo-labels of :class:`lagaug.core.compare.run.Compare`
    (a mixin: it uses the run's ``cfg``, ``splits``, ``ens_cfg``, ``device``, ``progress``,
    ``executor``, ``_reference`` (a dict) and ``repeat_dir``)."""

    def reference_classifier(self, r: int, train: ImageSet, val: ImageSet):
        """The classifiers that judge the synthetic images' labels for the gate and label the pool
        for ``pseudo-label``: trained on the repeat's real training images (validation for early
        stopping), like the ``real`` arm; once per repeat (its members are kept in ``reference/``)."""
        cache = self._reference
        if r not in cache:
            cache.clear()
            ensemble = train_ensemble(train, val if len(val) else None, self.ens_cfg,
                                      stage_generator(self.cfg.seed, "reference", r), device=self.device,
                                      progress=self.progress, checkpoint_dir=self.repeat_dir(r) / "reference",
                                      label=f"repeat {r}: reference classifier",
                                      orientation_invariant=self.splits.extra.get("orientation_invariant"),
                                      executor=self.executor)
            cache[r] = ensemble_classifier(ensemble)
        return cache[r]

    def pseudo_labels(self, r: int, train: ImageSet, val: ImageSet) -> ImageSet | None:
        """The pool images the ``pseudo-label`` arm adds in repeat ``r`` (labelled once, then
        read back from the round files); ``None`` when no pool image reached the threshold."""
        cfg, pool = self.cfg, self.splits.unlabeled
        folder = self.repeat_dir(r) / "pseudo-label"
        cap = cfg.pseudo_cap or default_cap(cfg.synthetic_per_image, len(train), train.num_classes)
        summary_path = folder / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {"rounds": []}
        lines: list[dict] = []
        for k in range(1, cfg.pseudo_rounds + 1):
            path = folder / f"round{k}.jsonl"
            if path.exists():
                lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
                continue
            start = time.perf_counter()
            if k == 1:
                classify = self.reference_classifier(r, train, val)
            else:
                classify = self._retrained(r, train, val, pseudo_set(pool, lines, train.class_names), folder)
            indices, classes, confidence = predict_pool(classify, pool, BATCH, self.progress,
                                                        f"repeat {r}: pseudo-labels, round {k}")
            chosen = choose(classes, confidence, cfg.pseudo_threshold, cap, train.num_classes)
            names = train.class_names
            lines = [{"round": k, "index": int(indices[p]), "id": pool.id_of(int(indices[p])),
                      "label": names[int(classes[p])], "label_index": int(classes[p]),
                      "confidence": float(confidence[p])} for p in chosen]
            passed = confidence >= cfg.pseudo_threshold
            summary["rounds"] = [s for s in summary["rounds"] if s["round"] < k] + [{
                "round": k, "pool": len(pool), "labelled": len(indices), "threshold": cfg.pseudo_threshold,
                "cap": cap, "candidates": {n: int((passed & (classes == c)).sum()) for c, n in enumerate(names)},
                "chosen": {n: sum(line["label_index"] == c for line in lines) for c, n in enumerate(names)},
                "predicted": {n: int((classes == c).sum()) for c, n in enumerate(names)},
                "seconds": round(time.perf_counter() - start, 3)}]
            atomic_write_json(summary_path, summary)
            atomic_write_lines(path, (json.dumps(line) for line in lines))
            if k > 1 and not cfg.keep_checkpoints:
                shutil.rmtree(folder / f"round{k}-ensemble", ignore_errors=True)
        if not lines:  # an honest outcome, not an error: the arm is the real images alone
            self.progress.log(f"repeat {r}: no pool image reached --pseudo-threshold {cfg.pseudo_threshold}; the "
                              "pseudo-label arm adds nothing this repeat")
            return None
        chosen = pseudo_set(pool, lines, train.class_names)
        if not (folder / "grid.png").exists():
            write_grid(folder / "grid.png", train, chosen, lines)
        return chosen

    def _retrained(self, r: int, train: ImageSet, val: ImageSet, chosen: ImageSet, folder: Path):
        """Round 2's labeller: an ensemble trained on the real images plus round 1's pool images."""
        data = train if not len(chosen) else train.concat(chosen)
        ensemble = train_ensemble(data, val if len(val) else None, self.ens_cfg,
                                  stage_generator(self.cfg.seed, "pseudo-label", r, 2), device=self.device,
                                  progress=self.progress, checkpoint_dir=folder / "round2-ensemble",
                                  label=f"repeat {r}: pseudo-label round 2 classifier",
                                  orientation_invariant=self.splits.extra.get("orientation_invariant"),
                                  executor=self.executor)
        return ensemble_classifier(ensemble)
