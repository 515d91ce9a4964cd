"""Rich rendering of CLI results (no torch here)."""

from __future__ import annotations

import json

import click


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)


def plugins_table(infos) -> None:
    from rich.table import Table

    table = Table(title="lagaug plugins")
    for col in ("plugin", "distribution", "version", "hooks", "methods", "status"):
        table.add_column(col, overflow="fold")
    for info in infos:
        status = f"[red]error: {info.error}" if info.error else "[green]ok"
        table.add_row(info.name, info.distribution, info.version, ", ".join(info.hooks) or "-",
                      ", ".join(info.methods) or "-", status)
    console().print(table)


def plugins_json(infos) -> None:
    click.echo(json.dumps([i.as_dict() for i in infos], indent=2))


def _pm(value: float, half: float) -> str:
    if value != value:  # NaN
        return "n/a"
    return f"{value:.3f} ± {half:.3f}"


def summary_table(rows: list[dict], run_dir) -> None:
    from rich.table import Table

    table = Table(title=f"hard-sample loop — {run_dir}")
    for col in ("iteration", "train images", "synthetic", "added", "AUC (95% CI)", "macro-F1 (95% CI)"):
        table.add_column(col, justify="right")
    base = rows[0]["auc_mean"] if rows else float("nan")
    for r in rows:
        delta = r["auc_mean"] - base
        auc = _pm(r["auc_mean"], r["auc_ci"]) + ("" if r["iteration"] == 0 else f" ({delta:+.3f})")
        table.add_row(str(r["iteration"]), str(r["train_size"]), str(r["synthetic_total"]), str(r["added"]),
                      auc, _pm(r["f1_mean"], r["f1_ci"]))
    out = console()
    out.print(table)
    for line in quality_lines(rows):
        out.print(line)
    out.print(f"metrics: {run_dir}/metrics.csv · plot: {run_dir}/metrics.png · "
              f"images: {run_dir}/synthetic/ · manifest: {run_dir}/manifest.jsonl")


def quality_lines(rows: list[dict]) -> list[str]:
    """One line per round with synthetic images: label fidelity beside the validation images' rate,
    and what the quality gate dropped and passed (per class, for the classes augmented)."""
    lines = []
    for r in rows:
        q = r.get("synthetic_quality")
        if not isinstance(q, dict) or not q.get("made"):
            continue
        bits = [f"round {r['iteration']}: {q['made']} made"]
        if "class_wins_mean" in q:
            val = q.get("val_class_wins_mean")
            bits.append(f"intended class wins for {100 * q['class_wins_mean']:.0f}% of them"
                        + (f" (validation images: {100 * val:.0f}%)" if val is not None else "")
                        + f", mean label fidelity {q['label_fidelity_mean']:.2f}")
        if q.get("gate"):
            why = ", ".join(f"{k} {v}" for k, v in sorted(q.get("dropped_by_reason", {}).items()))
            passed = "; ".join(f"{name}: {c['passed']} of {c['made']} passed"
                               for name, c in q.get("by_class", {}).items())
            bits.append(f"quality gate kept {q['kept']}, dropped {q['dropped']}" + (f" ({why})" if why else "")
                        + (f" — {passed}" if passed else ""))
        lines.append("; ".join(bits))
    return lines
