"""Reading a run directory for the report: every file optional, nothing imported but the stdlib.

A run killed mid-way lacks files; a newer lagaug may add fields. Readers here return ``None`` (or
an empty list) for what is absent and keep every key they find, so the page shows what is there.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from lagaug.core.errors import ConfigError
from lagaug.report.thumbs import THUMB, thumbnail_uri, thumbnails

AUGMENT, COMPARE = "augment", "compare"


def read_json(path: Path) -> Any:
    """The JSON in ``path`` (NaN allowed, as Python writes it), or ``None`` when absent or broken."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_jsonl(path: Path) -> list[dict]:
    """The lines of a JSON-lines file (a torn last line is skipped; a ``file`` that is not a path
    becomes ``None``); ``[]`` when absent."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        if line.strip():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                if not isinstance(item.get("file", ""), str):  # a damaged line: its image is not shown
                    item["file"] = None
                out.append(item)
    return out


def read_csv_column(path: Path, key: str, value: str) -> dict[str, str]:
    """``{row[key]: row[value]}`` of a CSV file; ``{}`` when absent."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return {r[key]: r[value] for r in csv.DictReader(fh) if key in r and value in r}
    except (OSError, csv.Error):
        return {}


def numbered_dirs(parent: Path, prefix: str) -> list[tuple[int, Path]]:
    """``[(N, parent/prefixNNN)]`` sorted by ``N``."""
    if not parent.is_dir():
        return []
    out = []
    for p in parent.iterdir():
        if p.is_dir() and p.name.startswith(prefix) and p.name[len(prefix):].isdigit():
            out.append((int(p.name[len(prefix):]), p))
    return sorted(out)


def run_kind(root: Path) -> str:
    """``augment`` or ``compare``; a one-line error when ``root`` holds no lagaug run."""
    root = Path(root)
    if not root.exists():
        raise ConfigError(f"{root}: no such folder; give the run directory that `lagaug augment` or "
                          "`lagaug compare` wrote (its --out)")
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder; give the run directory that `lagaug augment` or "
                          "`lagaug compare` wrote (its --out)")
    config = read_json(root / "config.json")
    if not isinstance(config, dict):
        raise ConfigError(f"{root}: holds no lagaug run (no readable config.json); give the folder that "
                          "`lagaug augment` or `lagaug compare` wrote (its --out)")
    if "arms" in config or "repeats" in config or (root / "repeats").is_dir():
        return COMPARE
    return AUGMENT


class Run:
    """The parts of a run directory every report shows: configuration, data, environment."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.kind = run_kind(self.root)
        self.config: dict = read_json(self.root / "config.json")
        self.data: dict | None = read_json(self.root / "data.json")
        self._thumbs: dict[tuple[str, int], str | None] = {}

    def thumb(self, rel: str, max_side: int = THUMB) -> str | None:
        """The embedded thumbnail of ``root/rel`` (made once per report)."""
        key = (rel, max_side)
        if key not in self._thumbs:
            self._thumbs[key] = thumbnail_uri(self.root / rel, max_side)
        return self._thumbs[key]

    def prefetch(self, rels: list[str]) -> None:
        """Make the thumbnails of many images at once (on several threads)."""
        todo = [r for r in dict.fromkeys(rels) if (r, THUMB) not in self._thumbs]
        made = thumbnails([self.root / r for r in todo])
        for r in todo:
            self._thumbs[(r, THUMB)] = made[self.root / r]

    def rel(self, path: Path) -> str:
        """``path`` relative to the run directory, with forward slashes (for links)."""
        return Path(path).relative_to(self.root).as_posix()

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def extra_json(self, known: set[str]) -> dict[str, Any]:
        """Every other ``*.json`` at the top of the run (records a newer lagaug may add)."""
        out = {}
        for p in sorted(self.root.glob("*.json")):
            if p.name not in known:
                value = read_json(p)
                if value is not None:
                    out[p.name] = value
        return out


class AugmentRun(Run):
    """An ``augment`` run: iterations, synthetic batches with their hard images, the generator."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.iterations: list[dict] = []
        for n, folder in numbered_dirs(self.root / "iterations", "it"):
            metrics = read_json(folder / "metrics.json")
            if isinstance(metrics, dict):
                metrics.setdefault("iteration", n)
                self.iterations.append(metrics)
        self.batches: list[tuple[int, list[dict]]] = []
        self.quality: list[tuple[int, dict]] = []  # each round's quality.json
        for n, folder in numbered_dirs(self.root / "synthetic", "it"):
            lines = read_jsonl(folder / "manifest.jsonl")
            if lines or (folder / "manifest.jsonl").exists():
                self.batches.append((n, lines))
            quality = read_json(folder / "quality.json")
            if isinstance(quality, dict):
                self.quality.append((n, quality))
        self.generator: dict | None = read_json(self.root / "generator" / "generator.json")
        self.generator_dir = self.root / "generator"
        given = self.config.get("generator")
        if self.generator is None and isinstance(given, str) and given:  # --generator DIR: read it there
            path = Path(given).expanduser()
            for folder in ([path] if path.is_absolute() else [Path.cwd() / path, self.root / path]):
                meta = read_json(folder / "generator.json")
                if isinstance(meta, dict):
                    self.generator, self.generator_dir = meta, folder
                    break

    def quality_of(self, n: int) -> dict:
        """Round ``n``'s quality.json (``{}`` when absent)."""
        return next((q for m, q in self.quality if m == n), {})

    def hard_images(self, n: int) -> dict[str, dict]:
        """The source images of synthetic batch ``n`` saved beside it (``id`` -> line with
        ``file`` relative to the run), or ``{}`` for runs that did not save them."""
        folder = self.root / "synthetic" / f"it{n:03d}" / "sources"
        out = {}
        for line in read_jsonl(folder / "sources.jsonl"):
            if "id" in line and line.get("file"):
                out[str(line["id"])] = {**line, "file": f"synthetic/it{n:03d}/sources/{line['file']}"}
        return out

    def scores(self, it: int) -> dict[str, str]:
        """Hardness score per training image id of iteration ``it`` (``scores.csv``)."""
        return read_csv_column(self.root / "iterations" / f"it{it:03d}" / "scores.csv", "id", "score")


class CompareRun(Run):
    """A ``compare`` run: per-arm rows, corrected comparisons, cells and the repeats' images."""

    def __init__(self, root: Path):
        super().__init__(root)
        results = read_json(self.root / "results.json") or {}
        self.rows: list[dict] = results.get("rows") or []
        self.comparisons: list[dict] = results.get("comparisons") or []
        self.cells: list[dict] = read_jsonl(self.root / "cells.jsonl")
        self.repeats: list[tuple[int, Path]] = numbered_dirs(self.root / "repeats", "r")

    def manifest(self, folder: Path) -> list[dict]:
        return read_jsonl(folder / "synthetic" / "manifest.jsonl")


def open_run(root: Path) -> Run:
    return CompareRun(root) if run_kind(root) == COMPARE else AugmentRun(root)
