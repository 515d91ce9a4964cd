"""Image tiles: a thumbnail (linked to the full image in the run directory) with a caption that
names the class, the sources with their weights, and every per-image figure of the manifest line.

Manifest fields the tile does not know are shown as they are, so a newer method's per-image
metric (or a quality gate's ``dropped`` / ``reason``) appears without a change here."""

from __future__ import annotations

from typing import Any

from lagaug.report.html import esc, is_number, num, value_text
from lagaug.report.read import Run
from lagaug.report.thumbs import THUMB

# manifest keys shown in their own place (everything else is listed as a per-image figure)
PLACED = {"id", "file", "method", "seed", "iteration", "repeat", "source", "source_label", "source_weight",
          "source_score", "label", "label_index", "soft", "dropped", "reason"}


def image_html(run: Run, rel: str | None, alt: str, max_side: int | None = None) -> str:
    """The thumbnail of ``run.root / rel`` linked to the file (or a placeholder when absent)."""
    uri = run.thumb(rel, max_side or THUMB) if rel else None
    if uri is None:
        return f'<div class="missing" role="img" aria-label="{esc(alt)} (image file missing)">image missing</div>'
    return f'<a href="{esc(rel)}"><img src="{uri}" alt="{esc(alt)}"></a>'


def _sources(line: dict) -> list[dict]:
    ids = [str(s) for s in line.get("source") or []]
    labels = list(line.get("source_label") or [])
    weights = list(line.get("source_weight") or [])
    scores = list(line.get("source_score") or [])
    return [{"id": s, "label": labels[i] if i < len(labels) else None,
             "weight": weights[i] if i < len(weights) else None,
             "score": scores[i] if i < len(scores) else None} for i, s in enumerate(ids)]


def label_text(line: dict) -> str:
    """The label; a soft label as its classes' shares when it is not one-hot."""
    label = str(line.get("label", "?"))
    soft = line.get("soft")
    if isinstance(soft, list) and soft and all(is_number(v) for v in soft) and max(soft) < 0.999:
        return f"{label} (soft: {', '.join(num(v, 2) for v in soft)})"
    return label


def alt_text(line: dict) -> str:
    srcs = ", ".join(f"{s['id']} ({s['label']})" if s["label"] else s["id"] for s in _sources(line))
    return f"synthetic image {line.get('id', '?')}, class {line.get('label', '?')}, made from {srcs or 'unknown source'}"


def extra_fields(line: dict) -> list[tuple[str, Any]]:
    """Every field of a manifest line not placed elsewhere: per-image metrics and the like."""
    return [(k, v) for k, v in line.items() if k not in PLACED and isinstance(v, (int, float, str, bool, list))]


def synthetic_tile(run: Run, line: dict, source_files: dict[str, dict] | None = None) -> str:
    """One synthetic image with its label, sources (with weights), figures and gate verdict."""
    dropped = bool(line.get("dropped"))
    rows = [("label", f'<span class="label">{esc(label_text(line))}</span>')]
    for s in _sources(line):
        saved = (source_files or {}).get(s["id"])
        name = f'<a href="{esc(saved["file"])}">{esc(s["id"])}</a>' if saved else esc(s["id"])
        bits = [b for b in (s["label"] and f"class {s['label']}",
                            s["weight"] is not None and f"weight {num(s['weight'], 3)}",
                            s["score"] is not None and f"score {num(s['score'], 3)}") if b]
        rows.append(("source", f"{name}" + (f" ({esc(', '.join(bits))})" if bits else "")))
    for key, value in extra_fields(line):
        rows.append((key, esc(value_text(value, 80))))
    badge = ""
    if dropped:
        reason = line.get("reason")
        badge = f'<span class="badge">dropped</span> {esc(reason) if reason else ""}'
    elif "dropped" in line:
        rows.append(("gate", "kept"))
    dl = " ".join(f"<dt>{esc(k)}:</dt> <dd>{v}</dd>" for k, v in rows)
    cls = "tile synthetic dropped" if dropped else "tile synthetic"
    return (f'<figure class="{cls}" data-id="{esc(line.get("id", ""))}">'
            f'{image_html(run, line.get("file"), alt_text(line))}'
            f'<figcaption><code>{esc(line.get("id", "?"))}</code> {badge}<dl>{dl}</dl></figcaption></figure>')


def source_tile(run: Run, source_id: str, label: str | None, score: Any, saved: dict | None) -> str:
    """A hard (source) image with its class and hardness score."""
    alt = f"hard image {source_id}, class {label or '?'}"
    rows = [("class", f'<span class="label">{esc(label or "?")}</span>')]
    if score is not None:
        rows.append(("hardness", esc(num(float(score) if isinstance(score, str) else score, 3))))
    for key, value in (saved or {}).items():
        if key not in {"id", "file", "label", "score", "chosen", "label_index"} and isinstance(value, (int, float, str)):
            rows.append((key, esc(value_text(value, 80))))
    image = (image_html(run, saved["file"], alt) if saved else
             f'<div class="missing" role="img" aria-label="{esc(alt)} (not saved by this run)">not saved</div>')
    dl = " ".join(f"<dt>{esc(k)}:</dt> <dd>{v}</dd>" for k, v in rows)
    return (f'<figure class="tile source" data-id="{esc(source_id)}">{image}'
            f'<figcaption><code>{esc(source_id)}</code> <dl>{dl}</dl></figcaption></figure>')
