"""Training one ensemble member: the recipe that lets a small, imbalanced set be learnt.

Per epoch, a member takes ``ceil(max(N, min_epoch_size) / batch_size)`` steps of ``batch_size``
images (a small set is repeated, every image augmented afresh), drawn class-balanced when
``balance`` resolves to ``sampler`` (or ``sqrt``: classes in proportion to the square root of
their counts). The loss is soft-target cross-entropy on ``ImageSet.targets()``
(weighted by inverse class frequency when ``balance`` is ``loss``). The learning rate warms up
linearly, then follows the schedule, step by step. After every epoch the BatchNorm statistics are
re-estimated on the training images (``bn_recal``) and the member is scored on the validation set;
the kept weights are those of the best epoch by ``select`` (ties go to the later epoch). On AUC +
macro-F1 an epoch that calls everything the majority class scores only the majority class's share
of macro-F1, so it is kept only when no epoch did better (and :func:`~lagaug.core.classifier.chance.chance_warning`
then flags the result).

Members train in the channels-last memory layout (:data:`LAYOUT`): on a CPU the convolutions of
the small classifiers run about a fifth faster than in the default layout (benchmarks.md, "The
main job's wall time"); the weights a member returns are ordinary contiguous tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lagaug.core.classifier.augment import classifier_augment
from lagaug.core.classifier.config import IMBALANCE_RATIO, EnsembleConfig, resolve_classifier_aug, steps_per_epoch
from lagaug.core.classifier.models import build_classifier
from lagaug.core.data.dataset import ImageSet
from lagaug.core.errors import ConfigError
from lagaug.core.metrics import classification_metrics
from lagaug.core.runtime import adam

RECAL_MAX_IMAGES = 128  # BatchNorm statistics are re-estimated on at most this many training images
EVAL_BATCH = 256
LAYOUT = torch.channels_last  # images and weights while a member trains and is scored


# -- class balance ----------------------------------------------------------------------------------


def resolve_balance(mode: str, counts: list[int]) -> str:
    """``sampler``, ``sqrt``, ``loss`` or ``none``; ``auto`` is ``sqrt`` for imbalanced ``counts``."""
    if mode != "auto":
        return mode
    present = [c for c in counts if c > 0]
    return "sqrt" if len(present) > 1 and max(present) >= IMBALANCE_RATIO * min(present) else "none"


def class_weights(counts: list[int]) -> torch.Tensor:
    """Inverse-frequency weights ``N / (K * n_c)`` over the K classes present (0 for absent ones)."""
    c = torch.tensor(counts, dtype=torch.float32)
    present = c > 0
    w = torch.zeros_like(c)
    w[present] = c.sum() / (present.sum() * c[present])
    return w


def _cycled(index: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` entries of ``index``: whole shuffled passes, the last one cut short."""
    reps = math.ceil(n / len(index))
    return torch.cat([index[torch.randperm(len(index), generator=generator)] for _ in range(reps)])[:n]


def class_quotas(counts: list[int], n: int, power: float) -> list[int]:
    """Draws per class out of ``n``, in proportion to ``count ** power`` over the classes present
    (0 = every class equally, 1 = as in the data), rounded by largest remainder."""
    share = np.array([c**power if c > 0 else 0.0 for c in counts], dtype=float)
    exact = n * share / share.sum()
    quota = np.floor(exact).astype(int)
    for c in np.argsort(-(exact - quota), kind="stable")[: n - quota.sum()]:
        quota[c] += 1
    return quota.tolist()


def epoch_order(labels: torch.Tensor, n: int, balanced: bool | str, generator: torch.Generator) -> torch.Tensor:
    """``n`` training indices for one epoch: shuffled passes over the set, or (``balanced``) a
    class-balanced draw: every class present equally often (``True``) or in proportion to the square
    root of its count (``"sqrt"``), each class's images cycled evenly, then shuffled."""
    if not balanced:
        return _cycled(torch.arange(len(labels)), n, generator)
    counts = torch.bincount(labels).tolist()
    quotas = class_quotas(counts, n, 0.5 if balanced == "sqrt" else 0.0)
    parts = [_cycled(torch.nonzero(labels == c).flatten(), q, generator) for c, q in enumerate(quotas) if q]
    order = torch.cat(parts)
    return order[torch.randperm(len(order), generator=generator)]


# -- optimisation -----------------------------------------------------------------------------------


def make_optimizer(model: nn.Module, cfg: EnsembleConfig) -> torch.optim.Optimizer:
    """The member's optimiser (AdamW on torch's fused kernel where there is one: :func:`~lagaug.core.runtime.adam`)."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return adam(model.parameters(), decoupled=True, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ConfigError(f"ensemble optimizer {cfg.optimizer!r} is unknown; choose adamw or sgd")


def lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    """Multiplier of the peak learning rate at optimisation step ``step`` (0-based)."""
    if step < warmup:
        return 0.1 + 0.9 * (step + 1) / warmup
    if schedule == "constant" or total <= warmup:
        return 1.0
    t = (step - warmup) / max(total - warmup - 1, 1)
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


# -- BatchNorm and validation -----------------------------------------------------------------------


def recal_index(labels: torch.Tensor, balanced: bool | str, generator: torch.Generator) -> torch.Tensor:
    """Training images to re-estimate BatchNorm statistics on, in the proportions the member trains
    with: every image once (evenly spaced, at most :data:`RECAL_MAX_IMAGES`), or a class-balanced
    draw of that many when the sampler balances classes."""
    n = min(len(labels), RECAL_MAX_IMAGES)
    if balanced:
        return epoch_order(labels, max(n, len(torch.unique(labels)) * 8), balanced, generator)
    return torch.linspace(0, len(labels) - 1, n).round().long()


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor, device: torch.device) -> bool:
    """Replace every BatchNorm layer's running mean and variance by their average over ``images``
    (float ``(N, C, H, W)``, the images as the member trains on them: see :func:`recal_index`).
    Dropout and the like stay in eval mode. Returns whether the model has BatchNorm layers."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms or len(images) < 2:
        return False
    was_training, momenta = model.training, [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the chunks below
        m.train()
    for chunk in torch.tensor_split(images, math.ceil(len(images) / EVAL_BATCH)):  # no chunk of one image
        model(chunk.to(device, memory_format=LAYOUT))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)
    return True


@torch.no_grad()
def validation_metrics(model: nn.Module, val: ImageSet, device: torch.device) -> dict[str, float]:
    """Cross-entropy (against ``val.targets()``), AUC, macro-F1 and accuracy on ``val``."""
    model.eval()
    logits = torch.cat([model(val.float_images(range(i, min(i + EVAL_BATCH, len(val)))).to(device, memory_format=LAYOUT))
                        .float().cpu()
                        for i in range(0, len(val), EVAL_BATCH)])
    loss = F.cross_entropy(logits, val.targets()).item()
    scores = classification_metrics(F.softmax(logits, 1).numpy(), val.labels.numpy())
    return {"val_loss": loss, **{f"val_{k}": v for k, v in scores.items()}}


def selection_score(record: dict, select: str) -> float:
    """The number an epoch is ranked by (higher is better; NaN when it cannot be computed)."""
    if select == "loss":
        return -record["val_loss"]
    if select in ("auc", "f1"):
        return record[f"val_{select}"]
    values = [record["val_auc"], record["val_f1"]]
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def kept_epoch(history: list[dict], cfg: EnsembleConfig) -> tuple[int, str]:
    """The epoch to keep (1-based) and why: the best validation score, ties to the later epoch."""
    last = len(history)
    if not cfg.select_best:
        return last, "select_best is off: the last epoch is kept"
    scores = {r["epoch"]: selection_score(r, cfg.select) for r in history if "val_loss" in r}
    scores = {e: v for e, v in scores.items() if not math.isnan(v)}
    if not scores:
        return last, "no usable validation score: the last epoch is kept"
    best = max(scores.values())
    ties = [e for e, v in scores.items() if v >= best - 1e-12]
    why = f"best validation {cfg.select} {best:.4f} of {last} epochs"
    if len(ties) > 1:
        why += f" (tied at epochs {', '.join(map(str, ties))}: the latest is kept)"
    return ties[-1], why


# -- one member -------------------------------------------------------------------------------------


@dataclass
class MemberPlan:
    """What a member's settings resolve to on its training set (recorded in its history)."""

    balance: str  # sampler, sqrt, loss or none
    aug: str  # none, light or dihedral
    class_counts: list[int]
    steps_per_epoch: int
    warmup_steps: int
    total_steps: int

    @classmethod
    def make(cls, train: ImageSet, cfg: EnsembleConfig, orientation_invariant: bool | None) -> "MemberPlan":
        counts = train.class_counts()
        steps = steps_per_epoch(len(train), cfg)
        return cls(resolve_balance(cfg.balance, counts), resolve_classifier_aug(cfg.aug, orientation_invariant),
                   counts, steps, min(cfg.warmup_epochs, cfg.epochs - 1) * steps, cfg.epochs * steps)

    @property
    def sampling(self) -> bool | str:
        """How :func:`epoch_order` draws: ``True`` (balanced), ``"sqrt"`` or ``False``."""
        return {"sampler": True, "sqrt": "sqrt"}.get(self.balance, False)


def _train_epoch(model, opt, train: ImageSet, images, targets, plan: MemberPlan, cfg: EnsembleConfig,
                 epoch: int, gen: torch.Generator, transform, device) -> float:
    """One epoch of ``plan.steps_per_epoch`` steps; returns the mean training loss."""
    model.train()
    augment = classifier_augment(plan.aug)
    weights = class_weights(plan.class_counts).to(device) if plan.balance == "loss" else None
    order = epoch_order(train.labels, plan.steps_per_epoch * cfg.batch_size, plan.sampling, gen)
    running = 0.0
    for s in range(plan.steps_per_epoch):
        step = (epoch - 1) * plan.steps_per_epoch + s
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, plan.warmup_steps, plan.total_steps, cfg.schedule)
        idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
        x = images[idx]
        if transform is not None:
            x = transform(x, gen)
        if augment is not None:
            x = augment(x, gen)
        per_image = F.cross_entropy(model(x.to(device, memory_format=LAYOUT)), targets[idx].to(device), reduction="none")
        if weights is None:
            loss = per_image.mean()
        else:
            w = weights[train.labels[idx].to(device)]
            loss = (per_image * w).sum() / w.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running += loss.item()
    return running / plan.steps_per_epoch


def train_member(train: ImageSet, val: ImageSet | None, cfg: EnsembleConfig, seed: int, device: torch.device,
                 task=None, transform=None, *, orientation_invariant: bool | None = None) -> tuple[nn.Module, dict]:
    """Train one classifier from scratch with ``seed``; returns the model (eval mode) and its record:
    per-epoch ``history`` (learning rate, training loss, validation loss / AUC / macro-F1 /
    accuracy / score), ``kept_epoch`` and ``kept_because``, and what the settings resolved to.

    ``transform(images, generator)`` (e.g. the compare ``classic`` arm) runs on every batch before
    the classifier's own augmentation. ``task`` (a Progress task) advances once per epoch.
    """
    gen = torch.Generator().manual_seed(seed)
    plan = MemberPlan.make(train, cfg, orientation_invariant)
    images, targets = train.float_images(), train.targets()
    recal_images = images[recal_index(train.labels, plan.sampling, gen)] if cfg.bn_recal else None
    validate = val is not None and len(val) > 0
    with torch.random.fork_rng(devices=[]):  # weight init uses torch's global RNG: isolate it
        torch.manual_seed(seed)
        model = build_classifier(cfg.classifier, train.num_classes, train.channels).to(device, memory_format=LAYOUT)
        opt = make_optimizer(model, cfg)
        history, best_state, recal = [], None, False
        for epoch in range(1, cfg.epochs + 1):
            loss = _train_epoch(model, opt, train, images, targets, plan, cfg, epoch, gen, transform, device)
            record = {"epoch": epoch, "lr": opt.param_groups[0]["lr"], "train_loss": loss}
            if cfg.bn_recal:
                recal = recalibrate_batchnorm(model, recal_images, device)
            if validate:
                record.update(validation_metrics(model, val, device))
                record["val_score"] = selection_score(record, cfg.select)
            history.append(record)
            if validate and cfg.select_best and kept_epoch(history, cfg)[0] == epoch:
                best_state = _clone_state(model)
            if task is not None:
                task.advance(1, status=f"loss {loss:.3f}")
        keep, why = kept_epoch(history, cfg) if validate else (len(history), "no validation set: the last epoch is kept")
        if keep != len(history):
            model.load_state_dict(best_state)
        model.eval()
    info = {"history": history, "kept_epoch": keep, "kept_because": why, "select": cfg.select,
            "balance": plan.balance, "class_counts": plan.class_counts, "aug": plan.aug, "bn_recal": recal,
            "steps_per_epoch": plan.steps_per_epoch}
    return model, info


def _clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
