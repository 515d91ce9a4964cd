"""``report.html``: one self-contained page a person reads, per ``augment`` or ``compare`` run.

:func:`write_report` reads a run directory (every file optional: a killed run gets a page too),
builds the page with plain string building and :func:`html.escape`, and writes ``RUN/report.html``
atomically. The page has no script and no external resource: thumbnails are embedded as ``data:``
URIs, and every link points at a file inside the run directory. No torch is imported.

Modules: :mod:`.read` (the run directory), :mod:`.html` (escaping, tables, the page shell),
:mod:`.thumbs` (embedded thumbnails), :mod:`.plot` (SVG interval plots), :mod:`.tiles` (image
tiles), :mod:`.sections` (shared sections), :mod:`.fidelity` (label fidelity per round and class),
:mod:`.history` (a generator's fit history), :mod:`.datatext` (sentences about the data, shared
with compare's results.md), :mod:`.augment` and :mod:`.compare` (the two pages). Beside the page:
:mod:`.demo` (made-up run folders for the page's own tests and screenshots) and :mod:`.browser`
(opening a page headless, for the screenshot benchmark).
"""

from __future__ import annotations

import time
from pathlib import Path

REPORT_NAME = "report.html"


def build_report(run_dir: str | Path, plugins=None) -> str:
    """The page of the run in ``run_dir`` as HTML text. ``plugins``: a plugin manager (its plugins
    are listed) or ``None``. Raises :class:`~lagaug.core.errors.ConfigError` when ``run_dir`` holds
    no run."""
    from lagaug.report import augment, compare
    from lagaug.report.html import esc, page
    from lagaug.report.read import COMPARE, open_run

    run = open_run(Path(run_dir))
    infos = [i.as_dict() for i in plugins.plugin_infos()] if plugins is not None else None
    title, nav, body = (compare if run.kind == COMPARE else augment).build(run, infos)
    footer = (f"Written {esc(time.strftime('%Y-%m-%d %H:%M:%S'))} by <code>lagaug report</code> from the run "
              f"directory <code>{esc(run.root.resolve().name)}</code>. Images link to the files beside this page.")
    return page(title, nav, body, footer)


def write_report(run_dir: str | Path, plugins=None) -> Path:
    """Write ``RUN/report.html`` (atomically) and return its path."""
    from lagaug.core.store.atomic import atomic_write_text

    html_text = build_report(run_dir, plugins)
    return atomic_write_text(Path(run_dir) / REPORT_NAME, html_text)


__all__ = ["REPORT_NAME", "build_report", "write_report"]
