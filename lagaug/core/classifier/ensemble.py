"""The classifier ensemble: N timm classifiers trained from scratch, each with its own seed.

Each member is trained by :func:`lagaug.core.classifier.training.train_member` and keeps its best
validation epoch (never the test set). Finished members are saved (safetensors, with their training
record as metadata) to a checkpoint folder when one is given, so a resumed run loads them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from lagaug.core.classifier.config import EnsembleConfig
from lagaug.core.classifier.models import build_classifier, check_classifier_input
from lagaug.core.classifier.training import train_member
from lagaug.core.data.dataset import ImageSet
from lagaug.core.metrics import classification_metrics, summarise
from lagaug.core.progress import Progress

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
_RECORD_KEY = "lagaug_member"  # safetensors metadata key holding a member's training record (JSON)


@dataclass
class Ensemble:
    """Trained members plus what they were trained with (``history``: one record per member)."""

    members: list[torch.nn.Module]
    config: EnsembleConfig
    device: torch.device = torch.device("cpu")
    history: list[dict] = field(default_factory=list)

    @torch.no_grad()
    def predict_proba(self, images: torch.Tensor, progress: Progress | None = None,
                      batch_size: int = 256) -> torch.Tensor:
        """Softmax outputs of every member: ``(M, N, K)`` on the CPU."""
        out = []
        for model in self.members:
            model.eval()
            parts = [
                F.softmax(model(images[i : i + batch_size].to(self.device)).float(), dim=1).cpu()
                for i in range(0, len(images), batch_size)
            ]
            out.append(torch.cat(parts))
        return torch.stack(out)

    def evaluate(self, data: ImageSet) -> dict:
        """Per-member AUC / macro-F1 / accuracy on ``data`` and their mean with 95% CI."""
        probs = self.predict_proba(data.float_images())
        labels = data.labels.numpy()
        per_member = [classification_metrics(p.numpy(), labels) for p in probs]
        return {"per_member": per_member, **summarise(per_member)}


def member_seeds(generator: torch.Generator, n: int) -> list[int]:
    """``n`` member seeds drawn from the run's generator."""
    return torch.randint(0, 2**31 - 1, (n,), generator=generator).tolist()


def _save_member(path: Path, model: torch.nn.Module, record: dict) -> None:
    from lagaug.core.store import atomic_save_safetensors

    atomic_save_safetensors(path, model.state_dict(), metadata={_RECORD_KEY: json.dumps(record)})


def _load_member(path: Path, cfg: EnsembleConfig, train: ImageSet, device: torch.device) -> tuple[torch.nn.Module, dict]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    model = build_classifier(cfg.classifier, train.num_classes, train.channels)
    model.load_state_dict(load_file(str(path)))
    with safe_open(str(path), framework="pt") as f:
        saved = json.loads((f.metadata() or {}).get(_RECORD_KEY, "{}"))
    return model.to(device).eval(), saved


def train_ensemble(train: ImageSet, val: ImageSet | None, cfg: EnsembleConfig, generator: torch.Generator,
                   *, device: torch.device = torch.device("cpu"), progress: Progress | None = None,
                   transform: Transform | None = None, checkpoint_dir: str | os.PathLike | None = None,
                   label: str = "ensemble", orientation_invariant: bool | None = None) -> Ensemble:
    """Train ``cfg.members`` classifiers; members already saved in ``checkpoint_dir`` are loaded.

    ``orientation_invariant`` (from the data source) decides what ``aug="auto"`` means; ``None``
    (unknown) gives the safe ``light``. ``transform`` is an extra per-batch augmentation.
    """
    progress = progress or Progress(quiet=True)
    check_classifier_input(cfg.classifier, train.channels, train.image_size, train.num_classes)
    seeds = member_seeds(generator, cfg.members)
    members, history = [], []
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None

    with progress.task(f"{label}: {cfg.members} x {cfg.classifier}", cfg.members * cfg.epochs) as task:
        for i, seed in enumerate(seeds):
            path = ckpt / f"member_{i:02d}.safetensors" if ckpt else None
            if path is not None and path.exists():
                model, saved = _load_member(path, cfg, train, device)
                members.append(model)
                history.append({**saved, "seed": seed, "resumed": True})
                task.advance(cfg.epochs, status=f"member {i + 1} loaded")
                continue
            task.set_status(f"member {i + 1}/{cfg.members}")
            model, info = train_member(train, val, cfg, seed, device, task, transform,
                                       orientation_invariant=orientation_invariant)
            record = {"seed": seed, **info}
            if path is not None:
                _save_member(path, model, record)
            members.append(model)
            history.append(record)
    return Ensemble(members, cfg, device, history)
