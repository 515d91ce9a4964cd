"""The report of an ``augment`` run: results per iteration, the plot, every hard image beside the
images made from it, the data, the generator, the configuration and the versions."""

from __future__ import annotations

import lagaug.report.sections as S
from lagaug.report.fidelity import all_dropped, fidelity_section
from lagaug.report.html import details, esc, note, num, section, table, value_text
from lagaug.report.plot import Point, interval_svg
from lagaug.report.read import AugmentRun
from lagaug.report.tiles import source_tile, synthetic_tile

KNOWN_METRICS = {"iteration", "train_size", "synthetic_total", "added", "per_member", "members",
                 "synthetic_quality", "seconds"} | {
    f"{m}_{s}" for m in S.METRIC_NAMES for s in ("mean", "ci", "delta", "delta_ci")}
OPEN_LIMIT = 300  # iterations with more images than this start collapsed


def status(run: AugmentRun) -> str:
    planned = run.config.get("iterations")
    done = len(run.iterations)
    if isinstance(planned, int) and done < planned + 1:
        return note(f"This run is incomplete: {done} of {planned + 1} iterations (baseline included) "
                    f"finished. Continue it with `lagaug augment ... --out {run.root} --resume`, then "
                    "write this report again with `lagaug report`.", "warn")
    return ""


def results_section(run: AugmentRun) -> str:
    if not run.iterations:
        return section("results", "Results per iteration", note("No iteration has finished yet.", "warn"))
    refs = S.references(((run.data or {}).get("counts") or {}).get("test"))
    rows = []
    for m in run.iterations:
        base = m["iteration"] == 0
        rows.append([m["iteration"], m.get("train_size"), m.get("synthetic_total"), m.get("added"),
                     S.interval(m.get("auc_mean"), m.get("auc_ci")),
                     "—" if base else _delta(m, "auc"),
                     S.interval(m.get("f1_mean"), m.get("f1_ci")),
                     "—" if base else _delta(m, "f1"),
                     S.interval(m.get("accuracy_mean"), m.get("accuracy_ci"))])
    members = max((len(m.get("per_member") or []) for m in run.iterations), default=0)
    parts = [table(["iteration", "train images", "synthetic", "added", "AUC [95% CI]", "Δ AUC vs baseline",
                    "macro-F1 [95% CI]", "Δ F1 vs baseline", "accuracy [95% CI]"], rows,
                   caption="Test metrics per iteration (0 = baseline)", numeric=[True] * 9)]
    plots = []
    for key, name in S.METRIC_NAMES.items():
        points = [Point(str(m["iteration"]), m.get(f"{key}_mean", float("nan")), m.get(f"{key}_ci", float("nan")),
                        dots=[p.get(key) for p in m.get("per_member") or []]) for m in run.iterations]
        if any(isinstance(p.mean, (int, float)) for p in points):
            plots.append(f"<figure>{interval_svg(f'plot-{key}', f'{name} per iteration', points, reference=refs.get(key), x_title='iteration (0 = baseline)')}</figure>")
    parts.append(f'<div class="plots">{"".join(plots)}</div>')
    parts.append(note(
        f"Dots: mean over the {members} ensemble member(s); bars: 95% interval (Student t over the members, "
        "clipped to [0, 1]; an end without a cap was clipped); grey dots: single members; dashed line: what "
        "a classifier without skill scores on this test set (AUC 0.5; macro-F1 and accuracy of always "
        "predicting the largest class). Δ: change against the baseline, paired member by member."))
    parts.append(timing_section(run))
    for m in run.iterations:
        for w in S.warnings_of(m):
            parts.append(note(f"iteration {m['iteration']}: {w}", "warn"))
    others = [{"iteration": m["iteration"], **{k: v for k, v in m.items() if k not in KNOWN_METRICS}}
              for m in run.iterations]
    if any(len(o) > 1 for o in others):
        parts.append(details("other figures per iteration", S.flat_table(others, "Other figures in metrics.json")))
    member_rows = []
    for m in run.iterations:
        records = m.get("members") or []
        for j, p in enumerate(m.get("per_member") or []):
            h = records[j] if j < len(records) and isinstance(records[j], dict) else {}
            member_rows.append([m["iteration"], j, *[p.get(k) for k in S.METRIC_NAMES], h.get("seed", "—"),
                                h.get("kept_epoch", "—"), h.get("kept_because", "—"), h.get("node", "—")])
    if member_rows:
        parts.append(details("every ensemble member", table(
            ["iteration", "member", *S.METRIC_NAMES.values(), "seed", "kept epoch", "why", "node"], member_rows,
            caption="Every ensemble member: test metrics and how it was trained", numeric=[True] * 7 + [False] * 2)))
    return section("results", "Results per iteration", "".join(parts))


def _secs(value) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "—"


def timing_section(run: AugmentRun) -> str:
    """Where the minutes went: per iteration, the wall seconds of each stage (``seconds`` in its
    metrics.json), and which work the cache or the previous round spared."""
    rows, total = [], 0.0
    for m in run.iterations:
        sec = m.get("seconds")
        if not isinstance(sec, dict):
            continue
        synth = sec.get("synthesis") if isinstance(sec.get("synthesis"), dict) else {}
        fit = _secs(sec.get("generator_fit"))
        if sec.get("generator_reused"):
            fit += " (cache)"
        ens = _secs(sec.get("ensemble"))
        if sec.get("ensemble_reused"):
            ens += f" (reused: {sec['ensemble_reused']})"
        stages = ", ".join(f"{k} {v:.2f}" for k, v in synth.items() if k != "total" and isinstance(v, (int, float)))
        rows.append([m["iteration"], fit, ens, _secs(sec.get("evaluate")), _secs(sec.get("score")),
                     _secs(synth.get("total")) + (f" ({stages})" if stages else ""), _secs(sec.get("write"))])
        total += sum(v for v in (sec.get("generator_fit"), sec.get("ensemble"), sec.get("evaluate"), sec.get("score"),
                                 synth.get("total"), sec.get("write")) if isinstance(v, (int, float)))
    if not rows:
        return ""
    body = table(["iteration", "generator fit", "ensemble", "evaluate", "score", "synthesis (by stage)", "write"],
                 rows, caption="Wall seconds per stage", numeric=[True, False, False, True, True, False, True])
    body += note(f"{total:.0f} s in these stages. The generator's fit and iteration 0's ensemble come from the "
                 "cache when an earlier run had the same inputs (--refit computes them again); a round to which "
                 "nothing was added reuses the previous round's ensemble.")
    return details("where the time went", body)


def _delta(m: dict, key: str) -> str:
    d, h = m.get(f"{key}_delta"), m.get(f"{key}_delta_ci")
    if not isinstance(d, (int, float)) or d != d:
        return "n/a"
    return f"{d:+.3f} ± {'n/a' if not isinstance(h, (int, float)) or h != h else f'{h:.3f}'}"


def images_section(run: AugmentRun) -> str:
    if not run.batches:
        return section("images", "Hard images and what was made from them",
                       note("No synthetic images yet (the run stopped before the first batch, or has no "
                            "augmentation rounds)."))
    parts = [note("Per augmentation round: each hard image the ensemble chose (left, dark frame: its class "
                  "and hardness = mean true-class confidence, lower is harder) and the images the generator "
                  "made from it, each with its label, its sources and weights, and the method's per-image "
                  "figures. Click an image for the full-size file.")]
    run.prefetch([line["file"] for _, lines in run.batches for line in lines if line.get("file")]
                 + [s["file"] for n, _ in run.batches for s in run.hard_images(n).values()])
    for n, lines in run.batches:
        parts.append(batch_block(run, n, lines))
    return section("images", "Hard images and what was made from them", "".join(parts))


def batch_block(run: AugmentRun, n: int, lines: list[dict]) -> str:
    saved = run.hard_images(n)
    scores = None
    groups: dict[str, list[dict]] = {}
    for line in lines:
        primary = str((line.get("source") or ["?"])[0])
        groups.setdefault(primary, []).append(line)
    for sid, info in saved.items():  # chosen images the method made nothing from
        if info.get("chosen") and sid not in groups:
            groups[sid] = []
    blocks = []
    for sid, made in groups.items():
        first = made[0] if made else {}
        label = (first.get("source_label") or [None])[0] if made else None
        info = saved.get(sid)
        label = label or (info or {}).get("label")
        score = (first.get("source_score") or [None])[0] if made else None
        if score is None and info is not None:
            score = info.get("score")
        if score is None:
            scores = run.scores(n - 1) if scores is None else scores
            score = scores.get(sid)
        tiles = "".join(synthetic_tile(run, line, saved) for line in made) or note("nothing was made from it")
        blocks.append(f'<div class="group">{source_tile(run, sid, label, score, info)}'
                      f'<span class="arrow" aria-hidden="true">→</span><div class="made">{tiles}</div></div>')
    dropped = sum(1 for line in lines if line.get("dropped"))
    head = f"Round {n}: {len(groups)} hard image(s) chosen after iteration {n - 1}, {len(lines)} image(s) made"
    if lines and (dropped == len(lines) or all_dropped(run.quality_of(n))):
        summary = head + f" — the quality gate dropped every one: none joins iteration {n}"
    elif dropped:
        summary = head + f", {dropped} dropped by the quality gate — the others join iteration {n}"
    else:
        summary = head + f" — they join iteration {n}"
    grid = ""
    if not saved and run.exists(f"grids/it{n:03d}.png"):
        uri = run.thumb(f"grids/it{n:03d}.png", 2048)
        if uri:
            grid = (f'<a href="grids/it{n:03d}.png"><img class="grid" src="{uri}" alt="round {n}: hard images '
                    f'(left) beside the images made from them"></a>')
    missing = "" if saved else note("This run did not save its hard images (an older lagaug)" + (
        "; the grid below shows them (left column)." if grid else "."))
    body = missing + grid + "".join(blocks)
    return f'<section id="round-{n}" aria-label="round {n}">' + details(summary, body, open_=len(lines) <= OPEN_LIMIT) \
        + "</section>"


def member_count(run: AugmentRun) -> int | None:
    """The ensemble's members: as trained (the iterations' records), else as configured
    (``--ensemble``, ``--classifier-set members=``, else the preset's)."""
    trained = max((len(m.get("per_member") or []) for m in run.iterations), default=0)
    if trained:
        return trained
    cfg = run.config
    for value in (cfg.get("ensemble"), (cfg.get("classifier_set") or {}).get("members")):
        try:
            if value is not None:
                return int(value)
        except (TypeError, ValueError):
            pass
    from lagaug.core.classifier.config import preset_values
    from lagaug.core.errors import ConfigError

    try:
        return int(preset_values(str(cfg.get("preset", "cpu")))["members"])
    except (ConfigError, KeyError, TypeError, ValueError):
        return None


def generator_section(run: AugmentRun) -> str:
    """The run's generator: fitted here (``RUN/generator``), or given with ``--generator DIR`` (read
    there: its fit diagnostics are in its generator.json)."""
    given = run.config.get("generator")
    external = run.generator_dir != run.root / "generator"
    if given and run.generator is None:
        body = note(f"This run used the generator in {given} (--generator), which is not there any more: its fit "
                    "diagnostics cannot be shown.", "warn")
    else:
        title = f"{run.generator_dir / 'generator.json'} (--generator)" if external else "generator.json"
        intro = note(f"Fitted before this run and given with --generator {given}; read from there.") if external else ""
        body = intro + S.generator_block(run, run.generator_dir, run.generator, title)
    return section("generator", "Generator", body)


def build(run: AugmentRun, plugins: list[dict] | None = None) -> tuple[str, list[tuple[str, str]], str]:
    """``(title, navigation, body)`` of the page."""
    cfg = run.config
    method = cfg.get("method", "?")
    title = f"lagaug augment — {method} — {run.root.name}"
    members = member_count(run)
    intro = (f"<p>Hard-sample loop with method <strong>{esc(method)}</strong>: {esc(num(cfg.get('hard_k')))} hard "
             f"image(s) per round, {esc(num(cfg.get('variants')))} variant(s) each, "
             f"{esc(num(cfg.get('iterations')))} round(s) after the baseline; ensemble of "
             f"{esc(num(members)) if members else 'an unrecorded number of'} member(s), preset "
             f"{esc(cfg.get('preset', '?'))}"
             f"{', classes ' + esc(value_text(cfg['classes'])) if cfg.get('classes') else ''}"
             f"{', quality gate on' if cfg.get('quality_gate') else ''}.</p>")
    body = "".join([status(run), intro, results_section(run), fidelity_section(run.quality), images_section(run),
                    S.data_section(run), generator_section(run), S.config_section(run),
                    S.extra_records(run, {"config.json", "data.json"}),
                    S.environment_section(run, run.generator, plugins, method)])
    nav = [("results", "Results"), *([("fidelity", "Label fidelity")] if run.quality else []), ("images", "Images"),
           ("data", "Data"), ("generator", "Generator"),
           ("config", "Configuration"), ("environment", "Versions")]
    return title, nav, body
