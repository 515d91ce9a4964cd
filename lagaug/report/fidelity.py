"""The label fidelity of every round, class by class, beside the same class's validation images
(``synthetic/itNNN/quality.json``): a short table near the top of an ``augment`` report, and a
warning for every round whose images the quality gate dropped, every one."""

from __future__ import annotations

from typing import Any

from lagaug.core.defaults.quality import MIN_REFERENCE
from lagaug.report.html import is_number, note, section, table


def _pct(value: Any) -> str:
    return f"{100 * value:.0f}%" if is_number(value) and value == value else "—"


def _fid(value: Any) -> str:
    return f"{value:.2f}" if is_number(value) and value == value else "—"


def reference_text(c: dict) -> str:
    """``92% of 12``; ``50% of 4 (too few to be a reference)``; ``none``."""
    n = c.get("val_images")
    if n is None:
        return "—"
    if n == 0:
        return "no validation images"
    few = c.get("val_too_few", n < MIN_REFERENCE)
    return f"{_pct(c.get('val_class_wins_mean'))} of {n}" + (" (too few to be a reference)" if few else "")


def rows_of(n: int, q: dict) -> list[list[Any]]:
    """The table rows of round ``n``: one per class; a run written before the per-class figures
    gets one row over all classes (its reference: all validation images)."""
    gate = bool(q.get("gate"))
    by_class = {k: v for k, v in (q.get("by_class") or {}).items() if isinstance(v, dict)}
    if by_class and any("class_wins_mean" in c or "val_images" in c for c in by_class.values()):
        return [[n, name, c.get("made"), c.get("passed") if gate else "no gate", _pct(c.get("class_wins_mean")),
                 reference_text(c), _pct(c.get("src_class_wins_mean")), _fid(c.get("label_fidelity_mean")),
                 _fid(c.get("val_label_fidelity_mean")), _fid(c.get("src_label_fidelity_mean"))]
                for name, c in by_class.items()]
    overall = {"val_images": q.get("val_images"), "val_class_wins_mean": q.get("val_class_wins_mean"),
               "val_too_few": False}
    return [[n, "all classes (all validation images)", q.get("made"), q.get("kept") if gate else "no gate",
             _pct(q.get("class_wins_mean")), reference_text(overall), "—", _fid(q.get("label_fidelity_mean")), "—", "—"]]


def all_dropped(q: dict) -> bool:
    return bool(q.get("gate")) and bool(q.get("made")) and q.get("kept") == 0


def dropped_note(n: int, q: dict) -> str:
    return note(f"Round {n}: the quality gate dropped all {q['made']} image(s) made, so none joined the training "
                f"set: iteration {n} trained on the same images as iteration {n - 1}.", "warn")


def fidelity_section(quality: list[tuple[int, dict]]) -> str:
    """The section, or ``""`` for a run without synthetic images."""
    rounds = [(n, q) for n, q in quality if isinstance(q, dict) and q.get("made")]
    if not rounds:
        return ""
    rows = [row for n, q in rounds for row in rows_of(n, q)]
    parts = [table(["round", "intended class", "made", "passed the gate", "class wins: synthetic",
                    "class wins: validation images of that class", "class wins: their source images",
                    "mean label fidelity: synthetic", "mean label fidelity: validation",
                    "mean label fidelity: sources"], rows,
                   caption="Label fidelity per round and class",
                   numeric=[True, False, True, True, True, True, True, True, True, True])]
    parts += [dropped_note(n, q) for n, q in rounds if all_dropped(q)]
    parts.append(note(
        "Each round's synthetic images are judged by the ensemble that chose their sources (it never saw them), "
        "beside the validation images of the same class under that ensemble: \"class wins\" is the share whose "
        "intended class gets the highest probability, label fidelity the mean probability of the intended class. "
        f"A class with fewer than {MIN_REFERENCE} validation images is too few to be a reference. The sources are "
        "the hardest training images, often misclassified themselves: an image that keeps its source's defect "
        "inherits that, so read the synthetic figures beside their sources' too."))
    return section("fidelity", "Label fidelity", "".join(parts))
