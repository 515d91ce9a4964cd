"""The report of a ``compare`` run: each arm with its interval, the paired differences with
corrected p-values, every cell, a sample of the synthetic images, the data and the generators."""

from __future__ import annotations

from pathlib import Path

import lagaug.report.sections as S
from lagaug.report.datatext import compare_split_text
from lagaug.report.html import details, esc, note, num, section, table, value_text
from lagaug.report.plot import Point, interval_svg
from lagaug.report.read import CompareRun, read_json
from lagaug.report.tiles import synthetic_tile

SAMPLE = 24  # synthetic images shown per repeat
REAL, CLASSIC, DUPLICATE, PSEUDO = "real", "classic", "duplicate", "pseudo-label"


def _arms(run: CompareRun) -> list[str]:
    record = read_json(run.root / "arms.json") or {}
    if record.get("arms"):
        return [a.get("name") for a in record["arms"]]
    m = run.config.get("method", "method")
    arms = run.config.get("arms")
    if arms:
        return [a.replace("method", m) if a in ("method", "classic+method") else a for a in arms]
    return [REAL, CLASSIC, m, f"{CLASSIC}+{m}", DUPLICATE]


def test_counts(run: CompareRun) -> dict[str, int] | None:
    """Images per class of the test set every arm is evaluated on."""
    counts = ((run.data or {}).get("counts") or {}).get("test")
    size = run.config.get("test_size")
    if counts and isinstance(size, int) and size < sum(counts.values()):
        k = len(counts)
        return {c: size // k + (1 if i < size % k else 0) for i, c in enumerate(counts)}
    return counts


def status(run: CompareRun) -> str:
    planned = run.config.get("repeats", 0) * len(_arms(run))
    if not run.rows:
        return note(f"No results.json: the comparison has not finished ({len(run.cells)} of {planned} cells "
                    f"done). Continue it with `lagaug compare ... --out {run.root} --resume`; the finished "
                    "cells are listed below.", "warn")
    if isinstance(planned, int) and len(run.cells) < planned:
        return note(f"{len(run.cells)} of {planned} cells finished; the figures cover those.", "warn")
    return ""


def arms_section(run: CompareRun) -> str:
    if not run.rows:
        return section("arms", "Arms", note("No per-arm summary yet."))
    alpha = run.config.get("alpha", 0.05)
    rows = []
    for r in run.rows:
        base = r.get("arm") == REAL
        sig = r.get("f1_significant_vs_real")
        delta = r.get("f1_delta_vs_real")
        verdict = "—" if base or sig is None else ("yes" if sig else "no")
        rows.append([r.get("arm"), r.get("repeats"), r.get("train_size"), r.get("added"),
                     S.interval(r.get("f1_mean"), r.get("f1_ci")),
                     S.interval(r.get("accuracy_mean"), r.get("accuracy_ci")),
                     S.interval(r.get("auc_mean"), r.get("auc_ci")),
                     "—" if base or not isinstance(delta, (int, float)) or delta != delta else f"{delta:+.3f}",
                     "—" if base else num(r.get("f1_p_vs_real")), verdict])
    parts = [table(["arm", "repeats", "train images", "added", "macro-F1 [95% CI]", "accuracy [95% CI]",
                    "AUC [95% CI]", "Δ F1 vs real", "p vs real (Holm)", f"significant (α = {num(alpha)})"],
                   rows, caption="Each arm: mean over repeats with its 95% interval (clipped to [0, 1])",
                   numeric=[False] + [True] * 9)]
    refs = S.references(test_counts(run))
    plots = []
    for key, name in S.METRIC_NAMES.items():
        points = [Point(str(r.get("arm")), r.get(f"{key}_mean", float("nan")), r.get(f"{key}_ci", float("nan")),
                        dots=[c.get(key) for c in run.cells if c.get("arm") == r.get("arm")],
                        highlight=r.get("arm") == REAL) for r in run.rows]
        plots.append(f"<figure>{interval_svg(f'plot-{key}', f'{name} per arm', points, reference=refs.get(key))}</figure>")
    parts.append(f'<div class="plots">{"".join(plots)}</div>')
    parts.append(note("Dots: mean over repeats (red: the real baseline); bars: 95% interval (Student t over "
                      "repeats, clipped to [0, 1]; an end without a cap was clipped); grey dots: single repeats; "
                      "dashed line: a classifier without skill (AUC 0.5; macro-F1 and accuracy of always "
                      "predicting the largest test class)."))
    return section("arms", "Arms", "".join(parts))


def comparisons_section(run: CompareRun) -> str:
    if not run.comparisons:
        return ""
    alpha = run.config.get("alpha", 0.05)
    rows = []
    for c in run.comparisons:
        d, h = c.get("delta"), c.get("delta_ci")
        diff = "n/a" if not isinstance(d, (int, float)) or d != d else (
            f"{d:+.3f} ± {'n/a' if not isinstance(h, (int, float)) or h != h else f'{h:.3f}'}")
        rows.append([f"{c.get('arm')} vs {c.get('baseline')}", c.get("family"),
                     S.METRIC_NAMES.get(c.get("metric"), c.get("metric")), c.get("n"), diff,
                     num(c.get("p")), num(c.get("p_holm")), "yes" if c.get("significant") else "no"])
    test = next((c.get("test") for c in run.comparisons if c.get("test")), "paired")
    min_p = min((c.get("min_p") for c in run.comparisons if isinstance(c.get("min_p"), (int, float))), default=None)
    text = (f"Paired two-sided {test} test over repeats. The primary family (each METHOD arm vs real, duplicate, "
            f"pseudo-label and cut-paste, classic+METHOD vs classic, METHOD+gate vs METHOD, on macro-F1) and the "
            f"secondary family (all others) are each Holm-corrected; significant = corrected p < {num(alpha)}."
            + (f" With these repeats the smallest p the test can give is {num(min_p)}." if min_p is not None else ""))
    body = table(["comparison", "family", "metric", "repeats", "Δ [95% CI half-width]", "p", "p (Holm)",
                  "significant"], rows, caption="Paired differences", numeric=[False, False, False, True, True,
                                                                               True, True, False])
    return section("comparisons", "Paired differences", body + note(text))


def cells_section(run: CompareRun) -> str:
    if not run.cells:
        return section("cells", "Cells", note("No cell has finished yet."))
    rows = [[c.get("repeat"), c.get("arm"), c.get("train_size"), c.get("added"), c.get("f1"), c.get("accuracy"),
             c.get("auc"), c.get("epochs"), c.get("seconds")] for c in run.cells]
    body = table(["repeat", "arm", "train images", "added", "macro-F1", "accuracy", "AUC", "epochs", "seconds"],
                 rows, caption="Every cell (repeat × arm): the mean of its classifiers", numeric=[True] * 2 + [True] * 7)
    for c in run.cells:
        for w in S.warnings_of(c):
            body = note(f"repeat {c.get('repeat')}, {c.get('arm')}: {w}", "warn") + body
    return section("cells", "Cells", details(f"{len(run.cells)} cells", body))


def sample(lines: list[dict], n: int = SAMPLE) -> list[dict]:
    """Up to ``n`` lines, taken in turn from each label, evenly spread within each."""
    by_label: dict[str, list[dict]] = {}
    for line in lines:
        by_label.setdefault(str(line.get("label")), []).append(line)
    per = max(1, -(-n // max(len(by_label), 1)))
    picked = []
    for group in by_label.values():
        step = max(1, len(group) / per)
        picked.extend(group[int(i * step)] for i in range(min(per, len(group))))
    return picked[:n]


def source_folders(run: CompareRun, folder: Path) -> list[tuple[str, Path]]:
    """A repeat's synthetic-image folders: ``--method``'s (the repeat's own) and every other
    source's (``methods/L``), each with its label."""
    out = []
    if (folder / "synthetic").is_dir() or (folder / "synthesis.json").is_file():
        out.append((str(run.config.get("method") or "?"), folder))
    if (folder / "methods").is_dir():
        out += [(d.name, d) for d in sorted((folder / "methods").iterdir()) if d.is_dir()]
    return out


def grid_figure(run: CompareRun, path: Path, alt: str) -> str:
    if not path.is_file():
        return ""
    rel = run.rel(path)
    uri = run.thumb(rel, 2048)
    return (f'<figure><a href="{esc(rel)}"><img class="grid" src="{uri}" alt="{esc(alt)}"></a>'
            f'<figcaption>{esc(alt.split(": ", 1)[-1])}</figcaption></figure>') if uri else ""


def source_block(run: CompareRun, r: int, label: str, folder: Path, several: bool) -> str:
    lines = [{**line, "file": run.rel(folder / line["file"])} if line.get("file") else line
             for line in run.manifest(folder)]  # files are relative to the source's folder
    info = read_json(folder / "synthesis.json") or {}
    head = (f"Repeat {r}: {f'{label}: ' if several else ''}{len(lines)} synthetic image(s)"
            + (f" (planned {info['planned']}, made {info['made']}, {num(info.get('seconds'))} s)"
               if "planned" in info and "made" in info else ""))
    shown = sample(lines)
    run.prefetch([line["file"] for line in shown if line.get("file")])
    tiles = "".join(synthetic_tile(run, line) for line in shown)
    grid = grid_figure(run, folder / "grid.png", f"repeat {r}: one source image per class (left) beside what "
                                                 "was made from it")
    body = (f'<div class="sample">{tiles}</div>' if tiles else note("no synthetic images in this repeat")) + grid
    anchor = f"repeat-{r}" if not several else f"repeat-{r}-{label}"
    return f'<section id="{esc(anchor)}" aria-label="repeat {r}">{details(head, body, open_=r == 0)}</section>'


def pseudo_block(run: CompareRun, r: int, folder: Path) -> str:
    summary = read_json(folder / "summary.json") or {}
    rounds = summary.get("rounds") or []
    if not rounds:
        return ""
    last = rounds[-1]
    chosen = last.get("chosen") or {}
    head = (f"Repeat {r}: pseudo-label: {sum(chosen.values())} pool image(s) of {last.get('labelled')} "
            f"(round {last.get('round')})")
    rows = [[s.get("round"), s.get("labelled"), s.get("threshold"), s.get("cap"),
             value_text(s.get("predicted")), value_text(s.get("candidates")), value_text(s.get("chosen"))]
            for s in rounds]
    body = table(["round", "pool images labelled", "threshold", "cap per class", "predicted", "at or above the "
                  "threshold", "chosen"], rows, caption="What the ensemble said of the pool",
                 numeric=[True, True, True, True, False, False, False])
    body += grid_figure(run, folder / "grid.png", f"repeat {r}: per class, a real training image (left), then "
                                                  "pool images given that class, most confident first")
    return f'<section id="repeat-{r}-pseudo" aria-label="repeat {r}">{details(head, body, open_=r == 0)}</section>'


def images_section(run: CompareRun) -> str:
    m = run.config.get("method", "?")
    arms = _arms(run)
    uses = [a for a in arms if a not in (REAL, CLASSIC, DUPLICATE, PSEUDO)]
    parts = [note(f"The arms {', '.join(uses) or m} train on the real images plus these synthetic images; "
                  f"{DUPLICATE} adds copies of their source images instead; {CLASSIC} rotates and shifts the real "
                  f"images while training; {PSEUDO} adds pool images with the labels the reference classifiers "
                  f"gave them; {REAL} uses the real images alone. A sample of up to {SAMPLE} per repeat and "
                  "method, spread over the classes; click an image for the full-size file.")]
    if not run.repeats:
        parts.append(note("No repeat has started yet."))
    for r, folder in run.repeats:
        sources = source_folders(run, folder)
        parts += [source_block(run, r, label, path, len(sources) > 1) for label, path in sources]
        parts.append(pseudo_block(run, r, folder / PSEUDO))
    return section("images", "Synthetic images", "".join(parts))


def generators_section(run: CompareRun) -> str:
    blocks = []
    for r, folder in run.repeats:
        fits = [(str(run.config.get("method") or "?"), folder / "generator")]
        if (folder / "methods").is_dir():
            fits += [(d.name, d / "generator") for d in sorted((folder / "methods").iterdir()) if (d / "generator").is_dir()]
        several = len(fits) > 1
        for label, path in fits:
            if several and not path.is_dir():
                continue
            meta = read_json(path / "generator.json")
            name = f"repeat {r}" + (f": {label}" if several else "")
            anchor = f"fit-r{r}" + (f"-{label}" if several else "")
            blocks.append(details(name, S.generator_block(run, path, meta, f"{name}: generator.json", anchor),
                                  open_=r == 0))
    record = read_json(run.root / "arms.json") or {}
    fitted = note(f"Generators fitted {record['generators_fitted']}.") if record.get("generators_fitted") else ""
    return section("generator", "Generators", fitted + ("".join(blocks) or note("No generator was fitted.")))


def build(run: CompareRun, plugins: list[dict] | None = None) -> tuple[str, list[tuple[str, str]], str]:
    cfg = run.config
    method = cfg.get("method") or "?"
    title = f"lagaug compare — {cfg.get('method') or ', '.join(_arms(run))} — {run.root.name}"
    ens = cfg.get("ensemble") or {}
    intro = (f"<p>Classifiers trained side by side on {esc(', '.join(_arms(run)))} over "
             f"{esc(num(cfg.get('repeats')))} repeat(s); preset {esc(cfg.get('preset', '?'))}"
             f"{' with ' + esc(value_text(ens)) if ens else ''}; "
             f"{esc(num(cfg.get('synthetic_per_image')))} synthetic image(s) per real training image.</p>"
             + (f"<p>{esc(compare_split_text(cfg, run.data, run.cells))}</p>" if run.cells else ""))
    record = read_json(run.root / "arms.json") or {}
    if record.get("sources"):
        intro += "<ul>" + "".join(
            f"<li>{esc(label)}: method {esc(src.get('method'))}"
            f"{' (' + esc(value_text(src.get('options'))) + ')' if src.get('options') else ''}"
            f"{', from ' + esc(', '.join(src['classes'])) + ' images only' if src.get('classes') else ''}"
            f"{', fit shared with ' + esc(src.get('fit_group')) if src.get('fit_group') not in (None, label) else ''}"
            "</li>" for label, src in record["sources"].items()) + "</ul>"
    first = (next((meta for _, path in source_folders(run, run.repeats[0][1])
                   if (meta := read_json(path / "generator" / "generator.json"))), None) if run.repeats else None)
    body = "".join([status(run), intro, arms_section(run), comparisons_section(run), cells_section(run),
                    images_section(run), S.data_section(run), generators_section(run), S.config_section(run),
                    S.extra_records(run, {"config.json", "data.json", "results.json"}),
                    S.environment_section(run, first, plugins, method)])
    nav = [("arms", "Arms"), ("comparisons", "Differences"), ("cells", "Cells"), ("images", "Images"),
           ("data", "Data"), ("generator", "Generators"), ("config", "Configuration"), ("environment", "Versions")]
    return title, nav, body


__all__ = ["build", "sample"]
