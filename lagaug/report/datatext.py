"""Sentences about a run's data, made from the numbers the run used (data.json, the cells'
counts, the configuration) — never from a default the run may not have applied. Shared by
``compare``'s results.md and its report page; the standard library only."""

from __future__ import annotations

from typing import Any


def _counts(data: dict | None, split: str) -> dict[str, int]:
    counts = ((data or {}).get("counts") or {}).get(split) or {}
    return {str(k): int(v) for k, v in counts.items() if isinstance(v, (int, float))}


def _listed(values: list[Any]) -> str:
    return " or ".join(str(v) for v in values) if values else "0"


def source_validation(data: dict | None) -> str:
    """How the source's validation split came about: carved by the data loader (with the share of
    each class it took, from the counts) or given with the data."""
    train, val = _counts(data, "train"), _counts(data, "val")
    carved = any(str(c).startswith("val") for c in (data or {}).get("carved") or [])
    if not carved:
        return "as the data provided it"
    shares = {c: val.get(c, 0) / (val.get(c, 0) + train.get(c, 0)) for c in val if val.get(c, 0) + train.get(c, 0)}
    seed = (data or {}).get("split_seed")
    where = f"carved from the data's training images by the data loader{f' (split seed {seed})' if seed is not None else ''}"
    rounded = {f"{s:.0%}" for s in shares.values()}
    if len(rounded) == 1:
        return f"{where}, {rounded.pop()} of each class"
    return where + ", " + ", ".join(f"{val.get(c, 0)} of {val.get(c, 0) + train.get(c, 0)} {c}" for c in shares)


def compare_split_text(config: dict, data: dict | None, cells: list[dict]) -> str:
    """Where each repeat's training and validation images came from, with the counts used."""
    train = sorted({int(c["real"]) for c in cells if isinstance(c.get("real"), (int, float))})
    val = sorted({int(c["val_size"]) for c in cells if isinstance(c.get("val_size"), (int, float))})
    size, fraction = config.get("train_size"), config.get("val_fraction")
    source_val = sum(_counts(data, "val").values())
    if size is None and source_val and data is not None:
        return (f"Training images: the source's training split, {_listed(train)} per repeat; validation: the source's "
                f"validation split, {_listed(val)} images, {source_validation(data)} (--val-fraction "
                f"{fraction} was not applied: it carves only from data without a validation split, or with "
                "--train-size).")
    per_class = ", the same number per class" if config.get("balanced", True) else ", in the classes' proportions"
    draw = ("the source's training split" if size is None else
            f"a fresh draw of {size} images per repeat from the source's training and validation images{per_class}")
    if isinstance(fraction, (int, float)) and fraction == 0:
        return f"Training images: {draw} ({_listed(train)} per repeat); no validation images (--val-fraction 0)."
    share = f"{fraction:.0%} of each class, at least one" if isinstance(fraction, (int, float)) else "?"
    return (f"Training images: {draw} ({_listed(train)} per repeat after validation was carved: "
            f"{_listed(val)} validation images, {share}).")
