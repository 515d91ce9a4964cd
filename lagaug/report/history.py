"""A generator's fit history (losses per epoch) found in its records, as small plots.

Methods record their fit in ``generator.json`` (``extra``) and ``fit.json`` in their own shapes:
a list of numbers under a name that says what it is (``train_loss``, ``val_nll``,
``pretrain_loss``), or a list of records with an ``epoch`` (``val_history``:
``[{"epoch": 1, "val_recon": 0.02}, ...]``). :func:`histories` finds both, grouped by the record
they sit in, and :func:`summarized` replaces them with one line each so that the tables beside
the plot stay short."""

from __future__ import annotations

import math
from typing import Any

from lagaug.report.html import num
from lagaug.report.plot import Series, lines_svg

#: a list of numbers is a history when its name holds one of these
HISTORY_WORDS = ("loss", "nll", "history", "curve")
X_KEYS = ("epoch", "step", "iteration")
MIN_POINTS = 3


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def as_series(name: str, value: Any) -> list[Series]:
    """The curves a value holds, or ``[]`` when it is no history."""
    if not isinstance(value, list) or len(value) < MIN_POINTS:
        return []
    if all(isinstance(v, dict) for v in value):
        xkey = next((k for k in X_KEYS if all(_number(v.get(k)) for v in value)), None)
        if xkey is None and not any(w in name.lower() for w in HISTORY_WORDS):
            return []
        keys = [k for k in value[0] if k != xkey and all(_number(v.get(k)) or v.get(k) is None for v in value)]
        xs = [float(v[xkey]) if xkey else float(i + 1) for i, v in enumerate(value)]
        return [Series(k, xs, [float(v[k]) if _number(v.get(k)) else float("nan") for v in value]) for k in keys]
    if any(w in name.lower() for w in HISTORY_WORDS) and all(_number(v) or v is None for v in value):
        return [Series(name, [float(i + 1) for i in range(len(value))],
                       [float(v) if _number(v) else float("nan") for v in value])]
    return []


def histories(data: Any, where: str = "") -> list[tuple[str, list[Series]]]:
    """``[(record path, [Series])]``: every history in nested dicts, one group per record."""
    if not isinstance(data, dict):
        return []
    here: list[Series] = []
    groups: list[tuple[str, list[Series]]] = []
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        found = as_series(str(key), value)
        if found:
            if len(found) > 1 or isinstance(value[0], dict):  # a list of records: its own plot
                groups.append((path, found))
            else:
                here.extend(found)
        elif isinstance(value, dict):
            groups.extend(histories(value, path))
    return ([(where or "fit", here)] if here else []) + groups


def summarized(data: Any) -> Any:
    """``data`` with every history replaced by one line (its length, first, last and lowest value)."""
    if not isinstance(data, dict):
        return data
    out = {}
    for key, value in data.items():
        found = as_series(str(key), value)
        if found:
            out[key] = "; ".join(
                f"{s.name}: {len(s.ys)} values, first {num(s.ys[0])}, last {num(s.ys[-1])}, lowest "
                f"{num(min((v for v in s.ys if _number(v)), default=float('nan')))}" for s in found) + " (plotted)"
        else:
            out[key] = summarized(value)
    return out


def history_plots(data: Any, prefix: str) -> str:
    """The plots of every history in ``data`` (HTML figures), or ``""``."""
    figures = []
    for i, (where, series) in enumerate(histories(data)):
        svg = lines_svg(f"{prefix}-{i}", f"fit history: {where}", series)
        if svg:
            figures.append(f"<figure>{svg}</figure>")
    return f'<div class="plots">{"".join(figures)}</div>' if figures else ""
