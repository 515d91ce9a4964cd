"""The files a comparison leaves: results.csv / comparisons.csv / results.json / results.md /
results.png. Every figure and setting in them comes from the run's own values."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import numpy as np

from lagaug.core.compare.config import DUPLICATE, METRIC_NAMES, METRICS, REAL, CompareConfig
from lagaug.core.store.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from lagaug.report.datatext import compare_split_text
from lagaug.report.read import read_json

RESULT_COLUMNS = [
    "arm", "repeats", "train_size", "added",
    "f1_mean", "f1_ci", "accuracy_mean", "accuracy_ci", "auc_mean", "auc_ci",
    "f1_delta_vs_real", "f1_p_vs_real", "f1_significant_vs_real",
]
COMPARISON_COLUMNS = ["arm", "baseline", "metric", "family", "n", "delta", "delta_ci", "p", "p_holm",
                      "min_p", "test", "significant"]


def to_csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def pct(mean: float, half: float | None = None) -> str:
    """``85.40 ± 1.23`` (metric values in [0, 1] shown in percent; an undefined interval as n/a)."""
    if mean != mean:
        return "n/a"
    if half is None:
        return f"{100 * mean:.2f}"
    return f"{100 * mean:.2f} ± {'n/a' if half != half else f'{100 * half:.2f}'}"


def signed_pct(delta: float, half: float) -> str:
    """``+1.23 ± 0.45`` points (an undefined interval as n/a)."""
    if delta != delta:
        return "n/a"
    return f"{100 * delta:+.2f} ± {'n/a' if half != half else f'{100 * half:.2f}'}"


def p_text(p: float, alpha: float) -> str:
    if p != p:
        return "—"
    return f"{p:.3g}{' *' if p < alpha else ''}"


def title_methods(cfg: CompareConfig, record: dict | None = None) -> str:
    """``method `vae```, or ``methods `vae`, `vqvae2``` when the arms draw on several."""
    methods = list(dict.fromkeys(s["method"] for s in (record or {}).get("sources", {}).values()))
    if cfg.method and cfg.method not in methods:
        methods.insert(0, cfg.method)
    if not methods:
        return "no generator"
    return ("method " if len(methods) == 1 else "methods ") + ", ".join(f"`{m}`" for m in methods)


def sources_lines(record: dict | None) -> list[str]:
    """What each generative arm draws on, what the generators were fitted on, and the pseudo-label settings."""
    if not record:
        return []
    lines = []
    for label, src in record.get("sources", {}).items():
        opts = ", ".join(f"{k}={v}" for k, v in src["options"].items())
        group = src.get("fit_group")
        shared = ("the saved generator" if group == "--generator" else
                  "its own fit" if group == label else f"the fit of `{group}`")
        lines.append(f"- `{label}`: method `{src['method']}`{f' ({opts})' if opts else ''}"
                     f"{', from ' + ', '.join(src['classes']) + ' images only' if src.get('classes') else ''}; "
                     f"uses {shared}")
    if record.get("sources"):
        lines.append(f"- Generators fitted {record.get('generators_fitted')}.")
    pseudo = record.get("pseudo_label")
    if pseudo:
        cap = pseudo["cap"] or "synthetic-per-image x real training images / classes"
        lines.append(f"- `pseudo-label`: the repeat's reference ensemble (trained on its real training images) "
                     f"labels the pool ({record.get('pool')} images); those with confidence >= {pseudo['threshold']} "
                     f"join with their predicted label, at most {cap} per class, {pseudo['rounds']} round(s); "
                     "provenance in repeats/rNNN/pseudo-label/.")
    return ["", "Arms:", *lines] if lines else []


def results_markdown(rows: list[dict], comparisons: list[dict], cfg: CompareConfig, cells: list[dict],
                     record: dict | None = None, data: dict | None = None) -> str:
    """The results as markdown: the arm table, the comparisons, and how to read them (``record``:
    the run's ``arms.json``; ``data``: its data.json, where the validation images came from, as the
    run used them)."""
    n = max((r["repeats"] for r in rows), default=0)
    test = next((c["test"] for c in comparisons), "paired test")
    min_p = min((c["min_p"] for c in comparisons), default=1.0)
    lines = [
        f"# lagaug compare — {title_methods(cfg, record)}", "",
        "| arm | train images | added | macro-F1 % | accuracy % | AUC % | Δ F1 vs real | p vs real (Holm) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        delta = "—" if r["arm"] == REAL else f"{100 * r['f1_delta_vs_real']:+.2f}"
        lines.append(
            f"| {r['arm']} | {r['train_size']:.0f} | {r['added']:.0f} | {pct(r['f1_mean'], r['f1_ci'])} | "
            f"{pct(r['accuracy_mean'], r['accuracy_ci'])} | {pct(r['auc_mean'], r['auc_ci'])} | {delta} | "
            f"{p_text(r['f1_p_vs_real'], cfg.alpha)} |"
        )
    lines += ["", "| comparison | family | metric | Δ (points, 95% CI) | p | p (Holm) | significant |",
              "|---|---|---|---:|---:|---:|---|"]
    for c in comparisons:
        lines.append(f"| {c['arm']} vs {c['baseline']} | {c['family']} | {METRIC_NAMES[c['metric']]} | "
                     f"{signed_pct(c['delta'], c['delta_ci'])} | "
                     f"{p_text(c['p'], 0.0)} | {p_text(c['p_holm'], cfg.alpha)} | {'yes' if c['significant'] else 'no'} |")
    lines += [
        "",
        f"Mean ± 95% confidence interval (Student t) over {n} repeats: the spread over repeats' seeds "
        f"(and training draws), on one test set of {cells[0]['test_size'] if cells else 0} images, the same for every "
        f"repeat and arm. p: paired two-sided {test} test over repeats. The primary comparisons (each "
        f"METHOD arm vs real, duplicate, pseudo-label and cut-paste, classic+METHOD vs classic, METHOD+gate vs "
        f"METHOD, on macro-F1) are Holm-corrected as one family, all others as another; * and 'significant' = "
        f"corrected p < {cfg.alpha}. With these repeats the smallest p the test can give is {min_p:.3g}.",
        f"{compare_split_text(dataclasses.asdict(cfg), data, cells)} "
        f"Arms share each repeat's images and classifier seeds."
        + (f" The duplicate arm adds copies of the very images the `{dup}` arm's extra images were made from."
           if (dup := (record or {}).get("duplicate_copies", cfg.method)) and any(r["arm"] == DUPLICATE for r in rows)
           else ""),
        *sources_lines(record),
        "",
    ]
    return "\n".join(lines)


def plot_results(rows: list[dict], cells: list[dict], path: str | Path) -> Path | None:
    """Each metric per arm: the mean with its 95% interval, and every repeat as a dot."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [r["arm"] for r in rows]
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.6), dpi=120)
    for ax, metric in zip(axes, METRICS):
        for i, row in enumerate(rows):
            values = [100 * c[metric] for c in cells if c["arm"] == row["arm"]]
            offsets = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else [0.0]
            ax.scatter([i + o for o in offsets], values, s=10, color="0.6", zorder=1)
            half = row[f"{metric}_ci"]
            ax.errorbar([i], [100 * row[f"{metric}_mean"]], yerr=None if half != half else [100 * half], fmt="o",
                        capsize=5, color="C0" if row["arm"] != REAL else "C3", zorder=2)
        ax.set_xticks(range(len(arms)))
        ax.set_xticklabels(arms, rotation=30, ha="right")
        ax.set_ylim(max(0.0, ax.get_ylim()[0]), min(100.0, ax.get_ylim()[1]))
        ax.set_title(f"{METRIC_NAMES[metric]} % (mean, 95% CI)")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def write_results(root: Path, rows: list[dict], comparisons: list[dict], cells: list[dict],
                  cfg: CompareConfig, record: dict | None = None) -> None:
    atomic_write_text(root / "results.csv", to_csv(rows, RESULT_COLUMNS))
    atomic_write_text(root / "comparisons.csv", to_csv(comparisons, COMPARISON_COLUMNS))
    atomic_write_json(root / "results.json", json.loads(json.dumps({"rows": rows, "comparisons": comparisons,
                                                                    **({"arms": record} if record else {})})))
    data = read_json(root / "data.json")
    atomic_write_text(root / "results.md", results_markdown(rows, comparisons, cfg, cells, record,
                                                            data if isinstance(data, dict) else None))
    plot_results(rows, cells, root / "results.png")
