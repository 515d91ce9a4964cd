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

from lagaug.core.classifier import EnsembleConfig, train_ensemble
from lagaug.core.classifier.classic import ClassicAugment
from lagaug.core.compare.config import METRICS
from lagaug.core.compare.draws import ids_digest
from lagaug.core.data.dataset import ImageSet
from lagaug.core.runtime import stage_generator


@dataclass
class CellSpec:
    """What one cell trains, besides the images (which travel separately, once per repeat)."""

    repeat: int
    arm: str
    ensemble: EnsembleConfig
    seed: int  # the run's seed; members draw theirs from stage_generator(seed, "ensemble", repeat)
    device: str
    classic: ClassicAugment | None  # the classic transform, for the classic arms only
    orientation_invariant: bool | None = None
    return_members: bool = False  # hand back every member's weights and record (--keep-checkpoints, not in process)


def cell_job(spec: CellSpec, train: ImageSet, val: ImageSet, added: ImageSet | None, test: ImageSet,
             finished: dict[int, tuple[dict, dict]] | None = None, *, progress=None,
             checkpoint_dir: Path | None = None) -> dict:
    """Train and evaluate the cell's classifiers on the real images ``train`` plus ``added`` (the
    arm's extra images: synthetic ones, copies, pseudo-labelled pool images; ``None``: none);
    returns ``{"cell": figures, "members": [(weights, record)] or None}``. ``finished`` members
    (index -> weights, record) are not trained again."""
    start = time.perf_counter()
    data = train if added is None else train.concat(added)
    ensemble = train_ensemble(
        data, val if len(val) else None, spec.ensemble, stage_generator(spec.seed, "ensemble", spec.repeat),
        device=torch.device(spec.device), progress=progress, transform=spec.classic,
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
