"""Small HTML building blocks: escaping, number formatting, tables, sections, the page shell.

Every piece of text that comes from a run directory goes through :func:`esc` before it reaches
the page. No JavaScript, no external resources: the page is one file, styled by :data:`CSS`.
"""

from __future__ import annotations

import html
import math
from typing import Any, Iterable, Sequence


def esc(value: Any) -> str:
    """``value`` as text, HTML-escaped (quotes too, so it is safe inside attributes)."""
    return html.escape(str(value), quote=True)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def num(value: Any, digits: int = 3) -> str:
    """A number for people: ``digits`` significant digits, integers as they are, NaN as n/a."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if value == int(value) and abs(value) < 1e9:
            return str(int(value))
        return f"{value:.{digits}g}"
    return str(value)


def value_text(value: Any, limit: int = 200) -> str:
    """Any JSON value as short plain text (lists joined, long text cut)."""
    if isinstance(value, (list, tuple)):
        text = ", ".join(value_text(v, limit) for v in value)
    elif isinstance(value, dict):
        text = ", ".join(f"{k}: {value_text(v, limit)}" for k, v in value.items())
    else:
        text = num(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mean_ci(mean: Any, half: Any, scale: float = 1.0, digits: int = 3) -> str:
    """``0.812 ± 0.041`` (an undefined interval as ± n/a)."""
    if not is_number(mean) or math.isnan(mean):
        return "n/a"
    if not is_number(half) or math.isnan(half):
        return f"{num(scale * mean, digits)} ± n/a"
    return f"{scale * mean:.{digits}f} ± {scale * half:.{digits}f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], caption: str | None = None,
          numeric: Sequence[bool] | None = None, row_header: bool = True, cls: str = "") -> str:
    """A real ``<table>``: header cells with ``scope``, the first cell of a row as a row header.
    Cells are escaped unless they are :class:`Raw`."""
    numeric = list(numeric or [False] * len(headers))
    head = "".join(f'<th scope="col"{" class=num" if n else ""}>{esc(h)}</th>' for h, n in zip(headers, numeric))
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = cell.html if isinstance(cell, Raw) else esc(num(cell) if not isinstance(cell, str) else cell)
            attr = ' class="num"' if i < len(numeric) and numeric[i] else ""
            tag = "th" if (row_header and i == 0) else "td"
            scope = ' scope="row"' if tag == "th" else ""
            cells.append(f"<{tag}{scope}{attr}>{text}</{tag}>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    klass = f' class="{esc(cls)}"' if cls else ""
    return (f'<div class="scroll"><table{klass}>{cap}<thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


class Raw:
    """HTML that is already safe (built here from escaped parts)."""

    def __init__(self, html_text: str):
        self.html = html_text

    def __str__(self) -> str:
        return self.html


def key_values(data: dict, caption: str | None = None) -> str:
    """A two-column table of a flat or nested dict (nested keys joined with dots)."""
    rows = [(k, value_text(v)) for k, v in flatten(data)]
    if not rows:
        return '<p class="muted">(empty)</p>'
    return table(["key", "value"], rows, caption=caption)


def flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``[(dotted.key, leaf value)]`` of nested dicts; lists of scalars stay one value."""
    if isinstance(data, dict):
        out: list[tuple[str, Any]] = []
        for k, v in data.items():
            out.extend(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        if not data and prefix:
            out.append((prefix, "{}"))
        return out
    if isinstance(data, list) and any(isinstance(v, dict) for v in data):
        out = []
        for i, v in enumerate(data):
            out.extend(flatten(v, f"{prefix}[{i}]"))
        return out
    return [(prefix, data)]


def section(anchor: str, title: str, body: str, level: int = 2) -> str:
    return f'<section id="{esc(anchor)}" aria-labelledby="{esc(anchor)}-h"><h{level} id="{esc(anchor)}-h">' \
           f'{esc(title)}</h{level}>{body}</section>'


def details(summary: str, body: str, open_: bool = False) -> str:
    return f'<details{" open" if open_ else ""}><summary>{esc(summary)}</summary>{body}</details>'


def note(text: str, cls: str = "muted") -> str:
    return f'<p class="{esc(cls)}">{esc(text)}</p>'


def page(title: str, nav: Sequence[tuple[str, str]], body: str, footer: str) -> str:
    """The whole document: a narrow-window friendly layout, a table of contents, the body."""
    links = "".join(f'<li><a href="#{esc(a)}">{esc(t)}</a></li>' for a, t in nav)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{esc(title)}</h1><nav aria-label="sections"><ul>{links}</ul></nav></header>'
        f"<main>{body}</main><footer>{footer}</footer></body></html>\n"
    )


CSS = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1d2126;background:#fff}
header{background:#24313f;color:#fff;padding:.8rem 1.2rem}
header h1{margin:0 0 .4rem;font-size:1.35rem;overflow-wrap:anywhere}
nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.3rem 1rem}
nav a{color:#cfe3ff}
main{padding:0 1.2rem 2rem;max-width:1400px}
section{margin-top:1.6rem}
h2{font-size:1.2rem;border-bottom:2px solid #dde3ea;padding-bottom:.2rem}
h3{font-size:1.05rem;margin:1.2rem 0 .4rem}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.4rem 0 .8rem;font-size:.92rem}
caption{text-align:left;font-weight:600;padding:.2rem 0}
th,td{border:1px solid #d3d9e0;padding:.25rem .5rem;text-align:left;vertical-align:top}
thead th{background:#eef2f6}
tbody th{font-weight:600;background:#f8fafc}
.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#5a6470}
.warn{background:#fff4d6;border-left:4px solid #d99a00;padding:.4rem .7rem}
.good{color:#116b2f;font-weight:600}
.bad{color:#a1261b;font-weight:600}
details{margin:.4rem 0}
summary{cursor:pointer;font-weight:600}
.plots{display:flex;flex-wrap:wrap;gap:1rem}
.plots figure{margin:0;flex:1 1 300px;max-width:460px}
svg{width:100%;height:auto;display:block}
figcaption{font-size:.85rem;color:#5a6470}
.group{display:flex;flex-wrap:wrap;gap:.6rem;align-items:flex-start;border:1px solid #dde3ea;
 border-radius:6px;padding:.6rem;margin:.6rem 0}
.group>.arrow{align-self:center;font-size:1.4rem;color:#5a6470}
.made{display:flex;flex-wrap:wrap;gap:.6rem;flex:1 1 260px}
.tile{margin:0;width:150px;font-size:.8rem;overflow-wrap:anywhere}
.tile img{width:128px;height:128px;object-fit:contain;image-rendering:pixelated;background:#eef2f6;
 border:1px solid #c7cfd8;display:block}
.tile.source img{border:3px solid #24313f;width:128px;height:128px}
.tile figcaption{color:#1d2126}
.tile dl{margin:.15rem 0 0}
.tile dt{display:inline;color:#5a6470}
.tile dd{display:inline;margin:0}
.tile dd::after{content:"\\A";white-space:pre}
.tile.dropped img{opacity:.45;border:2px dashed #a1261b}
.missing{width:128px;height:128px;display:flex;align-items:center;justify-content:center;
 background:#eef2f6;border:1px dashed #8b96a3;color:#5a6470}
.badge{display:inline-block;margin:.1rem .2rem .1rem 0;background:#a1261b;color:#fff;border-radius:3px;padding:0 .3rem}
.label{font-weight:600}
.sample{display:flex;flex-wrap:wrap;gap:.6rem}
img.grid{width:min(100%,420px);image-rendering:pixelated;border:1px solid #c7cfd8}
footer{padding:1rem 1.2rem;color:#5a6470;font-size:.85rem;border-top:1px solid #dde3ea}
@media (max-width:600px){main{padding:0 .6rem 1rem}.tile{width:104px}.tile img,.tile.source img{width:96px;height:96px}}
"""
