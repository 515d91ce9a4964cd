"""Rich rendering of CLI results (no torch here)."""

from __future__ import annotations

import json

import click


def console(stderr: bool = False):
    """A rich console; when not writing to a terminal (a pipe, a log file), wide enough that
    tables keep one line per row."""
    import sys

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 160)


def plugins_table(infos) -> None:
    """The plugins as a table; load errors in full below it (one line each, never wrapped)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="lagaug plugins")
    for col in ("plugin", "distribution", "version", "hooks", "methods", "status"):
        table.add_column(col, overflow="fold")
    for info in infos:
        status = "[red]error (below)" if info.error else "[green]ok"
        table.add_row(info.name, info.distribution, info.version, ", ".join(info.hooks) or "-",
                      ", ".join(info.methods) or "-", status)
    out = console()
    out.print(table)
    for info in infos:
        if info.error:
            out.print(Text.assemble(("error", "red"), f" in plugin {info.name!r}: {info.error}"), soft_wrap=True)


def plugins_json(infos) -> None:
    click.echo(json.dumps([i.as_dict() for i in infos], indent=2))


def _pm(value: float, half: float, signed: bool = False) -> str:
    """``0.812 ± 0.031``; an undefined interval (one member) as ``± n/a``."""
    if value != value:  # NaN
        return "n/a"
    text = f"{value:+.3f}" if signed else f"{value:.3f}"
    return f"{text} ± {'n/a' if half != half else f'{half:.3f}'}"


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def summary_table(rows: list[dict], run_dir) -> None:
    """Per iteration: sizes, AUC and macro-F1 with intervals, and the change in AUC against the
    baseline, paired member by member (the members keep their seeds across iterations)."""
    from rich.table import Table

    table = Table(title=f"hard-sample loop — {run_dir}")
    for col in ("iteration", "train images", "synthetic", "added", "AUC (95% CI)", "Δ AUC vs baseline (paired)",
                "macro-F1 (95% CI)"):
        table.add_column(col, justify="right")
    for r in rows:
        delta = "—" if r["iteration"] == 0 else _pm(r.get("auc_delta", float("nan")), r.get("auc_delta_ci", float("nan")), True)
        table.add_row(str(r["iteration"]), str(r["train_size"]), str(r["synthetic_total"]), str(r["added"]),
                      _pm(r["auc_mean"], r["auc_ci"]), delta, _pm(r["f1_mean"], r["f1_ci"]))
    out = console()
    out.print(table)
    warning = next((r.get("chance_warning") for r in rows if r.get("chance_warning")), None)
    if warning:
        out.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    for line in quality_lines(rows):
        out.print(line)
    out.print(f"metrics: {run_dir}/metrics.csv · plot: {run_dir}/metrics.png · "
              f"images: {run_dir}/synthetic/ · manifest: {run_dir}/manifest.jsonl")


def filter_names(filters: list | None) -> str:
    """Who judged a batch: ``quality gate`` (the core's, ``--quality-gate``), ``filter NAME``
    (a plugin's ``lagaug_filter_synthesized``), or both."""
    names = list(filters or ["quality"])
    words = (["quality gate"] if "quality" in names else []) + [
        f"filter {', '.join(n for n in names if n != 'quality')}"] * any(n != "quality" for n in names)
    return " and ".join(words)


def quality_lines(rows: list[dict]) -> list[str]:
    """One line per round with synthetic images: per intended class, the share whose class wins
    and their mean label fidelity beside the same class's validation images (how many, and
    flagged when too few to be a reference), and what the quality gate dropped and passed."""
    lines = []
    for r in rows:
        q = r.get("synthetic_quality")
        if not isinstance(q, dict) or not q.get("made"):
            continue
        bits = [f"round {r['iteration']}: {q['made']} made"]
        per_class = [class_fidelity(name, c) for name, c in q.get("by_class", {}).items()
                     if c.get("made") and "class_wins_mean" in c]
        if per_class:
            bits.append("intended class wins — " + "; ".join(per_class))
        elif "class_wins_mean" in q:  # a run written before the per-class figures
            val = q.get("val_class_wins_mean")
            bits.append(f"intended class wins for {100 * q['class_wins_mean']:.0f}% of them"
                        + (f" (all validation images: {100 * val:.0f}%)" if val is not None else "")
                        + f", mean label fidelity {q['label_fidelity_mean']:.2f}")
        if q.get("gate"):
            why = ", ".join(f"{k} {v}" for k, v in sorted(q.get("dropped_by_reason", {}).items()))
            passed = "; ".join(f"{name}: {c['passed']} of {c['made']} passed"
                               for name, c in q.get("by_class", {}).items())
            bits.append(f"{filter_names(q.get('filters'))} kept {q['kept']}, dropped {q['dropped']}"
                        + (f" ({why})" if why else "")
                        + (f" — {passed}" if passed else ""))
        lines.append("; ".join(bits))
    return lines


def class_fidelity(name: str, c: dict) -> str:
    """``defect: 75% of 4 (defect validation images: 92% of 12), mean label fidelity 0.71
    (validation 0.80)``; a class with too few validation images says so."""
    text = f"{name}: {100 * c['class_wins_mean']:.0f}% of {c['made']}"
    n = c.get("val_images")
    if n == 0:
        text += f" (no {name} validation images to compare with)"
    elif n is not None and "val_class_wins_mean" in c:
        text += (f" ({name} validation images: {100 * c['val_class_wins_mean']:.0f}% of {n}"
                 + (", too few to be a reference" if c.get("val_too_few") else "") + ")")
    if "label_fidelity_mean" in c:
        text += f", mean label fidelity {c['label_fidelity_mean']:.2f}"
        if "val_label_fidelity_mean" in c:
            text += f" (validation {c['val_label_fidelity_mean']:.2f})"
    if "src_class_wins_mean" in c:
        text += (f"; the images they were made from: {100 * c['src_class_wins_mean']:.0f}%, fidelity "
                 f"{c['src_label_fidelity_mean']:.2f}")
    return text
