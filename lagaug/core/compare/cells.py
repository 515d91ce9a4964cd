"""One comparison cell — the classifiers of one arm in one repeat — as an executor job.

:func:`cell_job` is a pure function of its arguments (the repeat's images, the arm, the classifier
settings, the seed): the same cell gives the same figures in this process or as a Ray task. It
writes nothing; the driver writes ``metrics.json`` (and, kept, the members' weights) from what it
returns. Only when it runs in the driver's own process is it handed the cell's checkpoint folder,
so that an interrupted cell keeps its finished members there, as before executors existed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from lagaug.core.classic import ClassicAugment
from lagaug.core.compare.config import CLASSIC, METRICS, REAL
from lagaug.core.compare.draws import ids_digest
from lagaug.core.data.dataset import ImageSet
from lagaug.core.ensemble import EnsembleConfig, train_ensemble
from lagaug.core.runtime import stage_generator


@dataclass
class CellSpec:
    """What one cell trains, besides the images (which travel separately, once per repeat)."""

    repeat: int
    arm: str
    method_arms: tuple[str, ...]
    ensemble: EnsembleConfig
    seed: int  # the run's seed; members draw theirs from stage_generator(seed, "ensemble", repeat)
    device: str
    classic: ClassicAugment | None  # the transform of the classic arms
    orientation_invariant: bool | None = None
    gated_arm: str | None = None  # the METHOD+gate arm's name
    return_members: bool = False  # hand back every member's weights and record (--keep-checkpoints, not in process)


def arm_training_set(arm: str, method_arms: tuple[str, ...], train: ImageSet, extra: ImageSet | None,
                     dup_sources: list[int], gated_arm: str | None = None, kept: ImageSet | None = None) -> ImageSet:
    """The training set of ``arm`` in one repeat: the real images, plus the method's images
    (METHOD arms), or those the quality gate ``kept`` (``gated_arm``), or copies of their source
    images (``duplicate``)."""
    if arm in (REAL, CLASSIC):
        return train
    if arm == gated_arm:
        return train.concat(kept)
    if arm in method_arms:
        return train.concat(extra)
    copies = train.subset(dup_sources)  # DUPLICATE: copies of the source images, real images
    copies.ids = [f"duplicate/{j:05d}" for j in range(len(copies))]
    copies.sources = [(train.ids[i],) for i in dup_sources]
    return train.concat(copies)


def arm_size(arm: str, method_arms: tuple[str, ...], train: ImageSet, extra: ImageSet | None,
             dup_sources: list[int], gated_arm: str | None = None, kept: ImageSet | None = None) -> int:
    """``len(arm_training_set(...))`` without building it."""
    if arm in (REAL, CLASSIC):
        return len(train)
    if arm == gated_arm:
        return len(train) + len(kept)
    return len(train) + (len(extra) if arm in method_arms else len(dup_sources))


def cell_job(spec: CellSpec, train: ImageSet, val: ImageSet, extra: ImageSet | None, dup_sources: list[int],
             test: ImageSet, finished: dict[int, tuple[dict, dict]] | None = None, kept: ImageSet | None = None,
             *, progress=None, checkpoint_dir: Path | None = None) -> dict:
    """Train and evaluate the cell's classifiers; returns ``{"cell": figures, "members": [(weights,
    record)] or None}``. ``finished`` members (index -> weights, record) are not trained again;
    ``kept``: the images the quality gate kept (the METHOD+gate arm)."""
    start = time.perf_counter()
    data = arm_training_set(spec.arm, spec.method_arms, train, extra, dup_sources, spec.gated_arm, kept)
    ensemble = train_ensemble(
        data, val if len(val) else None, spec.ensemble, stage_generator(spec.seed, "ensemble", spec.repeat),
        device=torch.device(spec.device), progress=progress,
        transform=spec.classic if spec.arm.startswith(CLASSIC) else None,
        checkpoint_dir=checkpoint_dir, label=f"repeat {spec.repeat}: {spec.arm}",
        orientation_invariant=spec.orientation_invariant, finished=finished,
    )
    result = ensemble.evaluate(test)
    cell = {
        "repeat": spec.repeat, "arm": spec.arm, "train_size": len(data), "real": len(train),
        "added": len(data) - len(train), "val_size": len(val), "test_size": len(test),
        "train_ids": ids_digest(train.ids), "val_ids": ids_digest(val.ids),
        "epochs": spec.ensemble.epochs, "member_seeds": [h["seed"] for h in ensemble.history],
        "kept_epochs": [h.get("kept_epoch") for h in ensemble.history],
        **{k: result[f"{k}_mean"] for k in METRICS},
        "per_member": result["per_member"],
        "seconds": round(time.perf_counter() - start, 2),
    }
    members = None
    if spec.return_members:
        from lagaug.core.classifier.ensemble import member_state

        members = [(member_state(m), h) for m, h in zip(ensemble.members, ensemble.history)]
    return {"cell": cell, "members": members}
