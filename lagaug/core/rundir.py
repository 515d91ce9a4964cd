"""The run directory: the complete, resumable record of a run.

Layout (``RUN`` is ``--out``)::

    RUN/config.json                    the resolved configuration (written first)
    RUN/generator/                     the fitted generator (generator.json + weights.safetensors)
    RUN/iterations/it000/ensemble/     classifier checkpoints (member_NN.safetensors)
    RUN/iterations/it000/metrics.json  the iteration's figures (its presence marks it done)
    RUN/iterations/it000/scores.csv    every training image's score
    RUN/synthetic/it001/*.png          images synthesized after iteration 0 (join the set at 1)
    RUN/synthetic/it001/manifest.jsonl one line per image (its presence marks the batch done)
    RUN/manifest.jsonl                 all manifest lines of the run
    RUN/metrics.jsonl, metrics.csv     one row per finished iteration
    RUN/metrics.png                    metric per iteration with its 95% interval
    RUN/grids/it001.png                sources (left) beside what was made from them

Every file is written atomically (temporary name, then rename). Work whose marker file exists is
never redone on ``--resume``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from lagaug.core.errors import ConfigError
from lagaug.core.store import atomic_write_json, atomic_write_lines, atomic_write_text

METRIC_COLUMNS = [
    "iteration", "train_size", "synthetic_total", "added",
    "auc_mean", "auc_ci", "f1_mean", "f1_ci", "accuracy_mean", "accuracy_ci",
]


class RunDir:
    """Paths and readers/writers of one run directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # -- paths ---------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def generator_dir(self) -> Path:
        return self.root / "generator"

    def iteration_dir(self, it: int) -> Path:
        return self.root / "iterations" / f"it{it:03d}"

    def synthetic_dir(self, it: int) -> Path:
        return self.root / "synthetic" / f"it{it:03d}"

    # -- start / resume ------------------------------------------------------------------------
    def start(self, config: dict[str, Any], resume: bool) -> dict[str, Any]:
        """Create the run, or check a resumed one was started with the same configuration."""
        if self.config_path.exists():
            saved = json.loads(self.config_path.read_text())
            if not resume:
                raise ConfigError(
                    f"--out {self.root}: a run already exists there; pass --resume to continue it "
                    "or choose another --out"
                )
            diff = [k for k in config if k not in _RESUME_FREE and saved.get(k) != config[k]]
            if diff:
                key = diff[0]
                raise ConfigError(
                    f"--resume: {self.root} was started with {key}={saved.get(key)!r}, not "
                    f"{config[key]!r}; drop the option or choose another --out"
                )
            return saved
        if self.root.exists() and any(self.root.iterdir()) and not resume:
            raise ConfigError(f"--out {self.root}: folder is not empty and holds no lagaug run; choose another --out")
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.config_path, config)
        return config

    # -- iterations ----------------------------------------------------------------------------
    def iteration_metrics(self, it: int) -> dict | None:
        path = self.iteration_dir(it) / "metrics.json"
        return json.loads(path.read_text()) if path.exists() else None

    def write_iteration(self, it: int, metrics: dict, scores_csv: str | None) -> None:
        if scores_csv is not None:
            atomic_write_text(self.iteration_dir(it) / "scores.csv", scores_csv)
        atomic_write_json(self.iteration_dir(it) / "metrics.json", metrics)

    def all_metrics(self) -> list[dict]:
        rows = []
        it = 0
        while (m := self.iteration_metrics(it)) is not None:
            rows.append(m)
            it += 1
        return rows

    def write_metrics_tables(self) -> list[dict]:
        rows = self.all_metrics()
        atomic_write_lines(self.root / "metrics.jsonl", (json.dumps(r) for r in rows))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow(r)
        atomic_write_text(self.root / "metrics.csv", buf.getvalue())
        return rows

    # -- synthetic images ----------------------------------------------------------------------
    def synthetic_manifest(self, it: int) -> list[dict] | None:
        path = self.synthetic_dir(it) / "manifest.jsonl"
        if not path.exists():
            return None
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def write_synthetic_manifest(self, it: int, lines: list[dict]) -> None:
        atomic_write_lines(self.synthetic_dir(it) / "manifest.jsonl", (json.dumps(l) for l in lines))
        everything = []
        k = 1
        while (m := self.synthetic_manifest(k)) is not None or k <= it:
            everything.extend(m or [])
            k += 1
        atomic_write_lines(self.root / "manifest.jsonl", (json.dumps(l) for l in everything))


# options that may change between a run and its resumption
_RESUME_FREE = {"quiet", "device", "resume"}
