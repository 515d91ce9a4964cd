"""The classifier ensemble: N timm classifiers trained from scratch, each with its own seed.

Each member is trained by :func:`lagaug.core.classifier.training.train_member` and keeps its best
validation epoch (never the test set). Members are independent jobs (:func:`member_job`) that an
executor runs here or on a Ray cluster (:mod:`lagaug.core.executor`); finished members are saved
(safetensors, with their training record as metadata) to a checkpoint folder when one is given, so
a resumed run loads them.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from lagaug.core.classifier.config import EnsembleConfig
from lagaug.core.classifier.models import build_classifier, check_classifier_input
from lagaug.core.classifier.training import LAYOUT, train_member
from lagaug.core.data.dataset import ImageSet
from lagaug.core.executor import Executor, node_label
from lagaug.core.metrics import classification_metrics, summarise
from lagaug.core.progress import Progress
from lagaug.core.runtime import release_freed_memory

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
                F.softmax(model(images[i : i + batch_size].to(self.device, memory_format=LAYOUT)).float(), dim=1).cpu()
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


def member_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A member's weights on the CPU (what a job returns and a checkpoint holds)."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def save_member(path: Path, state: dict[str, torch.Tensor], record: dict) -> None:
    """A member's weights and training record (JSON metadata), one safetensors file, atomically."""
    from lagaug.core.store.atomic import atomic_save_safetensors

    atomic_save_safetensors(path, state, metadata={_RECORD_KEY: json.dumps(record)})


def read_member(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The weights and record :func:`save_member` wrote."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        saved = json.loads((f.metadata() or {}).get(_RECORD_KEY, "{}"))
    return load_file(str(path)), saved


def member_model(state: dict[str, torch.Tensor], cfg: EnsembleConfig, train: ImageSet,
                 device: torch.device) -> torch.nn.Module:
    """A classifier holding ``state`` (built without touching torch's global RNG), in eval mode."""
    with torch.random.fork_rng(devices=[]):
        model = build_classifier(cfg.classifier, train.num_classes, train.channels)
    model.load_state_dict(state)
    return model.to(device, memory_format=LAYOUT).eval()


def member_job(train: ImageSet, val: ImageSet | None, cfg: EnsembleConfig, seed: int, device: str,
               transform: Transform | None = None, orientation_invariant: bool | None = None,
               task=None) -> tuple[dict[str, torch.Tensor], dict]:
    """One member as an executor job: trained from ``seed`` alone, so it gives the same weights
    wherever it runs. Returns its CPU weights and its record; ``task`` (in-process only) is the
    progress bar it advances once per epoch."""
    model, info = train_member(train, val, cfg, seed, torch.device(device), task, transform,
                               orientation_invariant=orientation_invariant)
    return member_state(model), {"seed": seed, **info}


def train_ensemble(train: ImageSet, val: ImageSet | None, cfg: EnsembleConfig, generator: torch.Generator,
                   *, device: torch.device = torch.device("cpu"), progress: Progress | None = None,
                   transform: Transform | None = None, checkpoint_dir: str | os.PathLike | None = None,
                   label: str = "ensemble", orientation_invariant: bool | None = None,
                   executor: Executor | None = None,
                   finished: dict[int, tuple[dict, dict]] | None = None) -> Ensemble:
    """Train ``cfg.members`` classifiers; members already saved in ``checkpoint_dir`` (or given in
    ``finished``: index -> (weights, record)) are loaded, not trained again.

    Each member to train is one job of ``executor`` (default: in this process, one after the
    other); the training set goes to the executor once for all of them. As each finishes, its
    weights are written to ``checkpoint_dir`` here, by the caller's process, and its record gets
    the node that trained it. ``orientation_invariant`` (from the data source) decides what
    ``aug="auto"`` means; ``None`` (unknown) gives the safe ``light``. ``transform`` is an extra
    per-batch augmentation.
    """
    from lagaug.core.executor import LocalExecutor

    progress = progress or Progress(quiet=True)
    executor = executor or LocalExecutor()
    check_classifier_input(cfg.classifier, train.channels, train.image_size, train.num_classes)
    seeds = member_seeds(generator, cfg.members)
    members: list[torch.nn.Module | None] = [None] * cfg.members
    history: list[dict | None] = [None] * cfg.members
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    path = (lambda i: ckpt / f"member_{i:02d}.safetensors") if ckpt else (lambda i: None)  # noqa: E731
    finished = finished or {}

    with progress.task(f"{label}: {cfg.members} x {cfg.classifier}", cfg.members * cfg.epochs) as task:
        for i, seed in enumerate(seeds):
            if i in finished or (path(i) is not None and path(i).exists()):
                state, saved = finished[i] if i in finished else read_member(path(i))
                members[i] = member_model(state, cfg, train, device)
                history[i] = {**saved, "seed": seed, "resumed": True}
                task.advance(cfg.epochs, status=f"member {i + 1} loaded")
        todo = [i for i in range(cfg.members) if members[i] is None]

        def done(i: int, result: tuple[dict, dict], node: dict) -> None:
            state, record = result
            record = {**record, **node}
            if path(i) is not None:
                save_member(path(i), state, record)
            members[i], history[i] = member_model(state, cfg, train, device), record
            if not executor.in_process:
                task.advance(cfg.epochs, status=f"member {i + 1} done on {node_label(node)}")

        if todo:
            data, held_out = executor.put(train), executor.put(val)
            if not executor.in_process:
                task.set_status(f"{len(todo)} members on {executor.describe()}")
            for i in todo:
                if executor.in_process:
                    task.set_status(f"member {i + 1}/{cfg.members}")
                executor.submit(member_job, data, held_out, cfg, seeds[i], executor.job_device(device), transform,
                                orientation_invariant, name=f"lagaug {label} member {i + 1}",
                                on_done=functools.partial(done, i), inproc={"task": task})
            executor.wait()
    release_freed_memory()  # the members' training tensors, back to the system (augment and compare alike)
    return Ensemble(members, cfg, device, history)
