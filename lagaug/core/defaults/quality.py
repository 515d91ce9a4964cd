"""Label fidelity of synthetic images, and the quality gate (the paper's future work).

Registered by :func:`lagaug.core.contract.plugins.make_plugin_manager` as the built-in plugin ``quality``.

* **Label fidelity** (always, when the stage context has a classifier): a ``lagaug_decode`` hook
  wrapper scores every decoded image under ``context.classify`` — a classifier that did not see
  it; in the loop, the current iteration's ensemble (its members' mean probabilities) — and adds
  three per-image metrics that the manifest records:

  - ``label_fidelity``: the probability of the image's intended class (for a soft label, the
    label-weighted sum of the class probabilities, like the hardness score);
  - ``class_wins``: 1 when the intended class (the soft label's largest) has the highest
    probability, else 0;
  - ``source_distance`` (whenever the sources are known, classifier or not): mean absolute pixel
    difference (``[0, 1]`` units) to the image's primary source.

  :func:`summarize` sums a batch up per intended class and :func:`validation_reference` sets
  each class beside the validation images of the same class (flagged when there are fewer than
  :data:`MIN_REFERENCE`): like is compared with like.

* **The quality gate** (``context.gate``, off unless the user asks: ``lagaug augment
  --quality-gate``): a ``lagaug_filter_synthesized`` implementation that drops an image whose
  intended class does not win (``"class lost"``) and, separately, a near-duplicate of its source
  (``source_distance`` below ``GateConfig.min_distance``, default 0.01 = an average difference
  of 2.55 grey levels in 255). It returns one reason per image; the caller writes every image,
  dropped ones with ``dropped: true`` and the ``reason``, and trains on the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lagaug import hookimpl

#: a round's summary beside its images: RUN/synthetic/itNNN/quality.json
QUALITY_FILE = "quality.json"
#: default near-duplicate threshold: mean absolute difference to the source, [0, 1] pixel units
MIN_DISTANCE = 0.01
#: a class with fewer validation images than this is flagged as too few to be a reference
MIN_REFERENCE = 10


@dataclass
class GateConfig:
    """The quality gate's settings. ``label``: drop images whose intended class does not win.
    ``min_distance``: drop images closer than this to their primary source (0 = never)."""

    label: bool = True
    min_distance: float = MIN_DISTANCE

    def __post_init__(self) -> None:
        from lagaug.core.errors import ConfigError

        if not 0 <= self.min_distance < 1:
            raise ConfigError(f"--gate-distance {self.min_distance}: must be in [0, 1) (mean absolute "
                              "pixel difference to the source, 0..1 units)")


def ensemble_classifier(ensemble) -> Any:
    """``images -> (N, K)``: the mean class probabilities of an ensemble's members."""

    def classify(images):
        return ensemble.predict_proba(images).mean(0)

    return classify


def intended(soft):
    """The intended class of every image: its soft label's largest entry."""
    return soft.argmax(1)


def label_fidelity(probs, soft):
    """``(N,)``: the label-weighted probability of each image's intended class(es)."""
    return (probs * soft).sum(1)


def class_wins(probs, soft):
    """``(N,)`` bool: the intended class has the highest probability."""
    return probs.argmax(1) == intended(soft)


def source_distance(images, pool, source):
    """``(N,)``: mean absolute difference of every image to its primary source (pool row)."""
    primary = source[:, 0].clamp_min(0)
    src = pool.float_images(primary)
    return (images.float() - src.float()).abs().flatten(1).mean(1)


def score(synthesis, context) -> None:
    """Add ``label_fidelity``, ``class_wins`` and ``source_distance`` to ``synthesis.metrics``
    where the context allows (a classifier; a pool the sources index)."""
    import torch

    if len(synthesis) == 0:
        return
    if getattr(context, "classify", None) is not None:
        probs = torch.as_tensor(context.classify(synthesis.images)).float().cpu()
        soft = synthesis.soft.float().cpu()
        synthesis.metrics["label_fidelity"] = label_fidelity(probs, soft)
        synthesis.metrics["class_wins"] = class_wins(probs, soft).float()
    pool = getattr(context, "pool", None)
    if pool is not None and "source_distance" not in synthesis.metrics:
        synthesis.metrics["source_distance"] = source_distance(synthesis.images, pool, synthesis.source)


@hookimpl(wrapper=True)
def lagaug_decode(method, latents, context):
    synthesis = yield
    if synthesis is not None:
        score(synthesis, context)
    return synthesis


@hookimpl
def lagaug_filter_synthesized(method, synthesis, context):
    gate = getattr(context, "gate", None)
    if gate is None:
        return None
    from lagaug.core.errors import ConfigError

    metrics, n = synthesis.metrics, len(synthesis)
    reasons: list[list[str]] = [[] for _ in range(n)]
    if gate.label:
        if "class_wins" not in metrics:
            raise ConfigError("--quality-gate: no classifier to judge the images' labels here; the gate "
                              "runs in `lagaug augment` (the iteration's ensemble)")
        names = list(getattr(method, "class_names", []) or [])
        lost = [j for j in range(n) if not bool(metrics["class_wins"][j])]
        if lost:
            import torch

            probs = torch.as_tensor(context.classify(synthesis.images[lost])).float().cpu()
            for row, j in enumerate(lost):
                want, got = int(synthesis.soft[j].argmax()), int(probs[row].argmax())
                name = lambda k: names[k] if k < len(names) else str(k)  # noqa: E731
                reasons[j].append(f"class lost: {name(want)} {float(probs[row, want]):.2f} < "
                                  f"{name(got)} {float(probs[row, got]):.2f}")
    if gate.min_distance > 0 and "source_distance" in metrics:
        for j in range(n):
            d = float(metrics["source_distance"][j])
            if d < gate.min_distance:
                reasons[j].append(f"near-duplicate of its source: distance {d:.4f} < {gate.min_distance:g}")
    return ["; ".join(r) if r else None for r in reasons]


def summarize(synthesis, class_names: list[str], classes: list[int] | None = None) -> dict[str, Any]:
    """What a batch looked like to the classifier and the gate: made / kept / dropped (by reason),
    the filter plugins that judged it (``filters``: ``quality`` is the gate),
    the mean label fidelity and the share whose intended class wins, and per intended class how
    many were made and passed with that class's own share and mean label fidelity (``classes``:
    the ``--classes`` chosen, else every class made)."""
    n = len(synthesis)
    want = intended(synthesis.soft).tolist() if n else []
    dropped = synthesis.dropped.tolist() if synthesis.dropped is not None else [False] * n
    out: dict[str, Any] = {"made": n, "kept": n - sum(dropped), "dropped": sum(dropped),
                           "gate": synthesis.dropped is not None, "filters": list(synthesis.filters or [])}
    reasons: dict[str, int] = {}
    for j, why in enumerate(synthesis.reasons or []):
        if dropped[j]:
            for part in (why or "dropped").split("; "):
                key = part.split(":")[0]
                reasons[key] = reasons.get(key, 0) + 1
    out["dropped_by_reason"] = reasons
    for key in ("label_fidelity", "class_wins", "source_distance"):
        if key in synthesis.metrics and n:
            out[f"{key}_mean"] = round(float(synthesis.metrics[key].float().mean()), 6)
    shown = sorted(set(want)) if classes is None else sorted(classes)
    out["by_class"] = {}
    for c in shown:
        rows = [j for j, w in enumerate(want) if w == c]
        entry: dict[str, Any] = {"made": len(rows), "passed": sum(1 for j in rows if not dropped[j])}
        for key in ("class_wins", "label_fidelity"):
            if key in synthesis.metrics and rows:
                entry[f"{key}_mean"] = round(float(synthesis.metrics[key][rows].float().mean()), 6)
        out["by_class"][class_names[c]] = entry
    return out


def validation_reference(summary: dict[str, Any], probs, targets, class_names: list[str]) -> dict[str, Any]:
    """Add to a :func:`summarize` result what the same classifier makes of the validation images,
    class by class, so that each class's synthetic images are compared with real images of the
    same class: per class in ``by_class`` the validation images of that class (``val_images``),
    the share whose class wins (``val_class_wins_mean``) and their mean label fidelity
    (``val_label_fidelity_mean``); ``val_too_few`` when fewer than :data:`MIN_REFERENCE` —
    too few to be a reference. At the top: ``val_class_wins_matched``, the classes' validation
    shares weighted by how many images were made for each (the like-for-like counterpart of
    ``class_wins_mean``), and the share over all validation images (``val_class_wins_mean``,
    ``val_images``), whatever their classes. ``probs``: ``(N, K)`` class probabilities of the
    validation images; ``targets``: their one-hot (or soft) labels."""
    import torch

    probs, targets = torch.as_tensor(probs).float().cpu(), torch.as_tensor(targets).float().cpu()
    wins, fidelity = class_wins(probs, targets).float(), label_fidelity(probs, targets)
    want = intended(targets)
    summary["val_class_wins_mean"] = round(float(wins.mean()), 6) if len(wins) else None
    summary["val_images"] = len(wins)
    weighted, made = 0.0, 0
    for name, entry in summary.get("by_class", {}).items():
        rows = want == class_names.index(name)
        count = int(rows.sum())
        entry["val_images"] = count
        entry["val_too_few"] = count < MIN_REFERENCE
        if count:
            entry["val_class_wins_mean"] = round(float(wins[rows].mean()), 6)
            entry["val_label_fidelity_mean"] = round(float(fidelity[rows].mean()), 6)
            weighted += entry["made"] * entry["val_class_wins_mean"]
            made += entry["made"]
    if made:
        summary["val_class_wins_matched"] = round(weighted / made, 6)
    return summary


def source_reference(summary: dict[str, Any], synthesis, probs, targets, class_names: list[str]) -> dict[str, Any]:
    """Add to a :func:`summarize` result what the same classifier makes of the images the batch was
    made from: per intended class in ``by_class``, over that class's synthetic images, the share
    of their primary sources whose class wins (``src_class_wins_mean``) and the sources' mean
    label fidelity (``src_label_fidelity_mean``). The loop makes images from the *hardest* training
    images, whose own class often loses: an image that keeps its source's defect inherits that,
    so its figures are read beside its source's, not only beside the validation images'.
    ``probs``: ``(P, K)`` class probabilities of every pool row; ``targets``: their labels
    (``synthesis.source`` indexes both)."""
    import torch

    probs, targets = torch.as_tensor(probs).float().cpu(), torch.as_tensor(targets).float().cpu()
    if not len(synthesis) or not len(probs):
        return summary
    primary = synthesis.source[:, 0].clamp(min=0)
    wins = class_wins(probs[primary], targets[primary]).float()
    fidelity = label_fidelity(probs[primary], targets[primary])
    want = intended(synthesis.soft)
    for name, entry in summary.get("by_class", {}).items():
        rows = want == class_names.index(name)
        if bool(rows.any()):
            entry["src_class_wins_mean"] = round(float(wins[rows].mean()), 6)
            entry["src_label_fidelity_mean"] = round(float(fidelity[rows].mean()), 6)
    return summary
