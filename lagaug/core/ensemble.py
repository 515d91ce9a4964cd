"""The classifier ensemble: N timm classifiers trained from scratch, each with its own seed.

Every member trains on the same images with soft-label cross-entropy (plain labels are one-hot), and
keeps the epoch with the lowest validation loss when a validation set is given (never the test
set). Finished members are saved (safetensors) to a checkpoint folder when one is given, so a
resumed run does not train them again.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from lagaug.core.data.dataset import ImageSet
from lagaug.core.errors import ConfigError
from lagaug.core.metrics import classification_metrics, summarise
from lagaug.core.progress import Progress

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class EnsembleConfig:
    """How the ensemble is built and trained. The default is CPU-sized; see :data:`PRESETS`.

    The default classifier is timm's tiny ``test_resnet``: at 32 px, ``test_convnext`` (whose 4x4
    patch stem leaves a 1x1 map) stayed at the class prior on the default data (test AUC ~0.5),
    while ``test_resnet`` learns it (AUC ~0.7 with 15 epochs).
    """

    classifier: str = "test_resnet"
    members: int = 3
    epochs: int = 15
    batch_size: int = 32
    optimizer: str = "adamw"  # "adamw" or "sgd"
    lr: float = 5e-3
    momentum: float = 0.9
    weight_decay: float = 0.05
    select_best: bool = True  # keep the epoch with the lowest validation loss


PRESETS: dict[str, dict] = {
    "cpu": {},
    # Høj & Møgelmoose's protocol: 20 ConvNeXt-tiny, 150 epochs, SGD lr 0.001 momentum 0.9, batch 32
    "paper": dict(classifier="convnext_tiny", members=20, epochs=150, optimizer="sgd", lr=1e-3,
                  momentum=0.9, weight_decay=0.0, batch_size=32),
}


def preset(name: str, **overrides) -> EnsembleConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown ensemble preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return replace(EnsembleConfig(**PRESETS[name]), **overrides)


def check_classifier_name(name: str) -> None:
    """Raise ConfigError for a model name timm does not know (with close matches)."""
    import timm

    import lagaug.core.cnn  # noqa: F401  (registers lagaug's own small CNNs in timm)

    if name in timm.list_models():
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
    hint = f"; did you mean: {', '.join(close)}" if close else "; see timm.list_models() for names"
    raise ConfigError(f"--classifier {name!r} is not a timm model{hint}")


def build_classifier(name: str, num_classes: int, in_chans: int) -> torch.nn.Module:
    """A timm model with random weights (no download), sized for our classes and channels."""
    import timm

    check_classifier_name(name)
    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans)


def check_classifier_input(name: str, channels: int, size: tuple[int, int], num_classes: int) -> None:
    """Raise ConfigError when the classifier cannot take images of this size (one dry forward)."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        model = build_classifier(name, num_classes, channels).eval()
        try:
            model(torch.zeros(1, channels, *size))
        except RuntimeError as exc:
            raise ConfigError(
                f"--classifier {name!r} cannot take {size[0]}x{size[1]} images ({str(exc).splitlines()[0][:80]}); "
                "raise --image-size or choose another --classifier"
            ) from None


@dataclass
class Ensemble:
    """Trained members plus what they were trained with."""

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


def _make_optimizer(model: torch.nn.Module, cfg: EnsembleConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ConfigError(f"ensemble optimizer {cfg.optimizer!r} is unknown; choose adamw or sgd")


@torch.no_grad()
def _val_loss(model: torch.nn.Module, data: ImageSet, device: torch.device) -> float:
    model.eval()
    total = 0.0
    targets = data.targets()
    for i in range(0, len(data), 256):
        logits = model(data.float_images(range(i, min(i + 256, len(data)))).to(device))
        total += F.cross_entropy(logits, targets[i : i + 256].to(device), reduction="sum").item()
    return total / max(len(data), 1)


def train_member(train: ImageSet, val: ImageSet | None, cfg: EnsembleConfig, seed: int,
                 device: torch.device, task=None, transform: Transform | None = None) -> tuple[torch.nn.Module, dict]:
    """Train one classifier from scratch with ``seed``; returns the model and its history."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # weight init uses torch's global RNG: isolate it
        torch.manual_seed(seed)
        model = build_classifier(cfg.classifier, train.num_classes, train.channels).to(device)
        opt = _make_optimizer(model, cfg)
        images, targets = train.float_images(), train.targets()
        best, best_state, history = float("inf"), None, []
        for epoch in range(cfg.epochs):
            model.train()
            order = torch.randperm(len(train), generator=gen)
            running = 0.0
            for start in range(0, len(order), cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                x = images[idx]
                if transform is not None:
                    x = transform(x, gen)
                loss = F.cross_entropy(model(x.to(device)), targets[idx].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                running += loss.item() * len(idx)
            record = {"epoch": epoch + 1, "train_loss": running / len(train)}
            if val is not None and len(val):
                record["val_loss"] = _val_loss(model, val, device)
                if cfg.select_best and record["val_loss"] < best:
                    best = record["val_loss"]
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            history.append(record)
            if task is not None:
                task.advance(1, status=f"loss {record['train_loss']:.3f}")
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
    return model, {"history": history, "best_val_loss": None if best_state is None else best}


def member_seeds(generator: torch.Generator, n: int) -> list[int]:
    """``n`` member seeds drawn from the run's generator."""
    return torch.randint(0, 2**31 - 1, (n,), generator=generator).tolist()


def train_ensemble(train: ImageSet, val: ImageSet | None, cfg: EnsembleConfig, generator: torch.Generator,
                   *, device: torch.device = torch.device("cpu"), progress: Progress | None = None,
                   transform: Transform | None = None, checkpoint_dir: str | os.PathLike | None = None,
                   label: str = "ensemble") -> Ensemble:
    """Train ``cfg.members`` classifiers; members already saved in ``checkpoint_dir`` are loaded."""
    from safetensors.torch import load_file

    from lagaug.core.store import atomic_save_safetensors

    progress = progress or Progress(quiet=True)
    check_classifier_input(cfg.classifier, train.channels, train.image_size, train.num_classes)
    seeds = member_seeds(generator, cfg.members)
    members, history = [], []
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    with progress.task(f"{label}: {cfg.members} x {cfg.classifier}", cfg.members * cfg.epochs) as task:
        for i, seed in enumerate(seeds):
            path = ckpt / f"member_{i:02d}.safetensors" if ckpt else None
            if path is not None and path.exists():
                model = build_classifier(cfg.classifier, train.num_classes, train.channels)
                model.load_state_dict(load_file(str(path)))
                model.to(device).eval()
                members.append(model)
                history.append({"seed": seed, "resumed": True})
                task.advance(cfg.epochs, status=f"member {i + 1} loaded")
                continue
            task.set_status(f"member {i + 1}/{cfg.members}")
            model, info = train_member(train, val, cfg, seed, device, task, transform)
            if path is not None:
                atomic_save_safetensors(path, model.state_dict())
            members.append(model)
            history.append({"seed": seed, **info})
    return Ensemble(members, cfg, device, history)
