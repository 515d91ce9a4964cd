"""Sections both reports share: the data, the configuration, the generator, the environment,
records a newer lagaug may add, and the chance / majority-class reference of each metric."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lagaug.report.history import history_plots, summarized
from lagaug.report.html import details, esc, flatten, key_values, note, num, section, table, value_text
from lagaug.report.read import Run, read_json
from lagaug.report.thumbs import thumbnail_uri

METRIC_NAMES = {"auc": "AUC", "f1": "macro-F1", "accuracy": "accuracy"}


def references(test_counts: dict[str, int] | None) -> dict[str, tuple[float, str]]:
    """Per metric, what a classifier without skill scores on this test set: AUC 0.5 (chance); for
    macro-F1 and accuracy, always predicting the largest class (macro-F1 over the classes present,
    as :func:`lagaug.core.metrics.macro_f1` computes it)."""
    out = {"auc": (0.5, "chance")}
    counts = [int(c) for c in (test_counts or {}).values() if isinstance(c, (int, float)) and c > 0]
    if counts:
        total, top = sum(counts), max(counts)
        out["accuracy"] = (top / total, "majority class")
        out["f1"] = (2 * top / (total + top) / len(counts), "majority class")
    return out


def data_section(run: Run) -> str:
    data = run.data
    if not isinstance(data, dict):
        return section("data", "Data", note("data.json is missing: this run did not record its data.", "warn"))
    parts = []
    if data.get("description"):
        parts.append(f"<p>{esc(data['description'])}</p>")
    counts = data.get("counts") or {}
    classes = list(data.get("classes") or sorted({c for split in counts.values() for c in split}))
    if counts:
        splits = list(counts)
        rows = [[c, *[counts[s].get(c, 0) for s in splits], sum(counts[s].get(c, 0) for s in splits)]
                for c in classes]
        rows.append(["all classes", *[sum(counts[s].values()) for s in splits],
                     sum(sum(counts[s].values()) for s in splits)])
        parts.append(table(["class", *splits, "total"], rows, caption="Images per class and split",
                           numeric=[False] + [True] * (len(splits) + 1)))
    facts = [
        ("source", data.get("source")),
        ("image size", "×".join(str(v) for v in data.get("image_size") or []) or None),
        ("channels", data.get("channels")),
        ("split seed", data.get("split_seed")),
        ("unlabelled pool", data.get("unlabeled")),
    ]
    carved = data.get("carved") or []
    facts.append(("carved", value_text(carved) if carved else "nothing: every split came with the data"))
    known = {"description", "source", "classes", "channels", "image_size", "counts", "carved", "split_seed",
             "unlabeled"}
    facts += [(k, v) for k, v in data.items() if k not in known]
    parts.append(table(["fact", "value"], [(k, value_text(v)) for k, v in facts if v is not None],
                       caption="Where the data came from"))
    return section("data", "Data", "".join(parts))


def config_section(run: Run) -> str:
    return section("config", "Configuration",
                   note("As recorded in config.json (the resolved options of the run).") + key_values(run.config))


def generator_block(run: Run, folder: Path, meta: dict | None, title: str, plot_id: str = "fit") -> str:
    """A generator's record: method, versions, configuration, fit diagnostics (``extra``) with the
    fit's history (losses per epoch) as plots, and any figure or JSON file saved beside it.
    ``folder`` may lie outside the run (``--generator DIR``): its figures are embedded, not linked."""
    if not isinstance(meta, dict):
        return note(f"{title}: no generator.json (the generator was not fitted here, or the run stopped "
                    "before it was saved).")
    facts = [(k, value_text(meta.get(k))) for k in ("method", "method_version", "lagaug_version", "image_shape",
                                                     "class_names") if k in meta]
    facts += [(k, value_text(v)) for k, v in meta.items()
              if k not in {"method", "method_version", "lagaug_version", "image_shape", "class_names", "config",
                           "extra"}]
    parts = [table(["field", "value"], facts, caption=f"{title}")]
    if meta.get("config"):
        parts.append(details("method configuration", key_values(meta["config"])))
    records = {"generator.json extra": meta.get("extra") or {}}
    for extra in sorted(folder.glob("*.json")):
        if extra.name != "generator.json":
            value = read_json(extra)
            if isinstance(value, dict):
                records[extra.name] = value
    plots = ""
    for name, value in records.items():  # the first record with a history is plotted
        plots = plots or history_plots(value, plot_id)
    parts.append(plots)
    if meta.get("extra"):
        parts.append(details("fit diagnostics (generator.json extra)",
                             key_values(summarized(meta["extra"]), caption="fit diagnostics"), open_=True))
    inside = folder.resolve().is_relative_to(run.root.resolve())
    figures = sorted(folder.glob("*.png"))[:12] + sorted(folder.glob("*/*.png"))[:12]
    for fig in figures:
        if inside:
            rel = run.rel(fig)
            uri = run.thumb(rel, 1024)
            if uri:
                parts.append(f'<figure><a href="{esc(rel)}"><img class="grid" src="{uri}" alt="generator figure '
                             f'{esc(rel)}"></a><figcaption>{esc(rel)}</figcaption></figure>')
        else:
            uri = thumbnail_uri(fig, 1024)
            if uri:
                parts.append(f'<figure><img class="grid" src="{uri}" alt="generator figure {esc(fig.name)}">'
                             f'<figcaption>{esc(fig)}</figcaption></figure>')
    for name, value in records.items():
        if name != "generator.json extra":
            parts.append(details(name, key_values(summarized(value))))
    return "".join(parts)


def extra_records(run: Run, known: set[str]) -> str:
    """Top-level JSON records this report does not know (a newer lagaug's, e.g. stage timings)."""
    found = run.extra_json(known)
    if not found:
        return ""
    body = "".join(details(name, key_values(v) if isinstance(v, dict) else esc(value_text(v)), open_=True)
                   for name, v in found.items())
    return section("records", "Other records", body)


def environment_section(run: Run, meta: dict | None, plugins: list[dict] | None, method: str | None) -> str:
    from lagaug import __version__

    rows = [("lagaug that wrote this report", __version__)]
    if isinstance(meta, dict):
        rows.append(("lagaug that fitted the generator", meta.get("lagaug_version", "not recorded")))
        rows.append((f"method {meta.get('method', method)} version", meta.get("method_version", "not recorded")))
    parts = [table(["what", "version"], rows)]
    if plugins:
        prow = []
        for info in plugins:
            uses = method in (info.get("methods") or [])
            prow.append([info.get("name"), info.get("distribution"), info.get("version"),
                         ", ".join(info.get("methods") or []) or "—", ", ".join(info.get("hooks") or []) or "—",
                         "provides the run's method" if uses else (info.get("error") or "")])
        parts.append(table(["plugin", "distribution", "version", "methods", "hooks", "note"], prow,
                           caption="Plugins installed when this report was written"))
    else:
        parts.append(note("Plugins: not known here (the report was written without a plugin manager)."))
    return section("environment", "Versions and plugins", "".join(parts))


def warnings_of(record: dict) -> list[str]:
    """Warning texts a record carries (keys containing 'warning')."""
    out = []
    for key, value in record.items():
        if "warning" in key.lower() and value:
            out.extend(str(v) for v in (value if isinstance(value, list) else [value]))
    return out


def interval(mean: Any, half: Any, lo: float = 0.0, hi: float = 1.0) -> str:
    """``0.812 [0.771, 0.853]``: the mean and its 95% interval clipped to ``[lo, hi]``."""
    if not isinstance(mean, (int, float)) or mean != mean:
        return "n/a"
    if not isinstance(half, (int, float)) or half != half:
        return f"{mean:.3f} [n/a]"
    return f"{mean:.3f} [{max(lo, mean - half):.3f}, {min(hi, mean + half):.3f}]"


def flat_table(records: list[dict], caption: str) -> str:
    """Rows of flat records (union of keys as columns)."""
    cols: list[str] = []
    for r in records:
        for k, _ in flatten(r):
            if k not in cols:
                cols.append(k)
    rows = [[value_text(dict(flatten(r)).get(c, ""), 80) for c in cols] for r in records]
    return table(cols, rows, caption=caption, row_header=False) if cols else ""


__all__ = ["METRIC_NAMES", "config_section", "data_section", "environment_section", "extra_records",
           "flat_table", "generator_block", "interval", "num", "references", "warnings_of"]
