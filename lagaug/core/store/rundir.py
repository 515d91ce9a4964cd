"""The run directory: the complete, resumable record of a run.

Layout (``RUN`` is ``--out``)::

    RUN/config.json                    the resolved configuration (written first)
    RUN/data.json                      the data: images per class and split, what was carved, seeds
    RUN/generator/                     the fitted generator (generator.json + weights.safetensors)
    RUN/iterations/it000/ensemble/     classifier checkpoints (member_NN.safetensors)
    RUN/iterations/it000/metrics.json  the iteration's figures (its presence marks it done)
    RUN/iterations/it000/scores.csv    every training image's score
    RUN/synthetic/it001/*.png          images synthesized after iteration 0 (join the set at 1)
    RUN/synthetic/it001/manifest.jsonl one line per image (its presence marks the batch done)
    RUN/synthetic/it001/sources/       the real images the batch was made from (+ sources.jsonl)
    RUN/manifest.jsonl                 all manifest lines of the run
    RUN/metrics.jsonl, metrics.csv     one row per finished iteration
    RUN/metrics.png                    metric per iteration with its 95% interval
    RUN/grids/it001.png                sources (left) beside what was made from them
    RUN/report.html                    the page to read (:mod:`lagaug.report`)

Every file is written atomically (temporary name, then rename). Work whose marker file exists is
never redone on ``--resume``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from lagaug.core.errors import ConfigError
from lagaug.core.store.atomic import (
    atomic_write_json,
    atomic_write_lines,
    atomic_write_text,
    is_temporary,
    remove_stray_temporaries,
    strict_json,
)
from lagaug.core.store.synthetic import read_manifest

METRIC_COLUMNS = [
    "iteration", "train_size", "synthetic_total", "added",
    "auc_mean", "auc_ci", "f1_mean", "f1_ci", "accuracy_mean", "accuracy_ci",
    "auc_delta", "auc_delta_ci", "f1_delta", "f1_delta_ci",
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
    def start(self, config: dict[str, Any], resume: bool, identity: dict[str, Any] | None = None,
              may_grow: frozenset[str] = frozenset()) -> dict[str, Any]:
        """Create the run, or check that a resumed one is the same run; then hold its lock.

        A run is recognised by what it *is*, not how its paths were spelled: the run folder's own
        path is never compared (it may have been moved or copied), and data, pool and generator
        are compared by ``identity`` fingerprints (content), not by the path given. Every other
        option must match, except those that may change between sessions (:data:`RESUME_FREE`)
        and the counts in ``may_grow``, which a resumed run may raise (never lower): compare's
        ``repeats``, whose finished repeats stay as they are. ``config.json`` then records the
        new count.
        """
        saved = self.read_config()
        if saved is None:
            if resume:
                raise ConfigError(f"--resume: {self.root} holds no lagaug run (no config.json); "
                                  "drop --resume to start a new run there, or give the run's folder")
            if self.root.exists() and any(not self._bookkeeping(p) for p in self.root.iterdir()):
                raise ConfigError(f"--out {self.root}: folder is not empty and holds no lagaug run; "
                                  "choose another --out")
            return self._begin(config, identity)
        self.acquire_lock()
        if not self.has_work():  # it stopped before its first stage: begin again, with these options
            return self._begin(config, identity)
        if not resume:
            raise ConfigError(
                f"--out {self.root}: a run already exists there; pass --resume to continue it "
                "or choose another --out"
            )
        grown = self._check_same_run(saved, config, identity or {}, may_grow)
        remove_stray_temporaries(self.root)
        if grown:
            saved = {**saved, **grown}
            atomic_write_json(self.config_path, saved)
        return saved

    def _begin(self, config: dict[str, Any], identity: dict[str, Any] | None) -> dict[str, Any]:
        """Write ``config.json`` of a new run (holding the lock); when that fails, what this
        call created goes again."""
        created = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self.acquire_lock()
            for name in ("config.json", "data.json"):
                (self.root / name).unlink(missing_ok=True)
            remove_stray_temporaries(self.root)
            atomic_write_json(self.config_path, {**config, "identity": identity or {}})
        except BaseException:
            self.release_lock()
            if created:
                try:
                    self.root.rmdir()
                except OSError:
                    pass
            raise
        return config

    def has_work(self) -> bool:
        """Whether any stage has left something here (beyond ``config.json``, ``data.json``, the
        lock and temporary files): a run without work may begin again with other options."""
        return self.root.is_dir() and any(not self._bookkeeping(p) and p.name not in ("config.json", "data.json")
                                          for p in self.root.iterdir())

    @staticmethod
    def _bookkeeping(path: Path) -> bool:
        return path.name == LOCK_NAME or (path.is_file() and is_temporary(path))

    def read_config(self) -> dict[str, Any] | None:
        if not self.config_path.exists():
            return None
        try:
            return json.loads(self.config_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{self.config_path}: unreadable ({exc}); this run cannot be resumed") from None

    def _check_same_run(self, saved: dict, config: dict, identity: dict,
                        may_grow: frozenset[str] = frozenset()) -> dict[str, Any]:
        """Refuse a resume whose options differ from the run's; the grown counts, if any."""
        grown = {k: config[k] for k in may_grow
                 if k in config and isinstance(saved.get(k), int) and config[k] > saved[k]}
        diff = [k for k in config if k not in RESUME_FREE | PATH_KEYS | grown.keys() and saved.get(k) != config[k]]
        if diff:
            key = diff[0]
            more = (f"; {key} may only grow on --resume (its finished work is kept)" if key in may_grow
                    else "")
            raise ConfigError(
                f"--resume: {self.root} was started with {key}={saved.get(key)!r}, not "
                f"{config[key]!r}{more}; drop the option or choose another --out"
            )
        known = saved.get("identity", {})
        for key, value in identity.items():
            if key in known and known[key] != value:
                raise ConfigError(
                    f"--resume: {self.root} was started with other {key} (its content differs from "
                    f"--{key} {config.get(key)!r}); give the same {key} or choose another --out"
                )
        return grown

    # -- the lock ------------------------------------------------------------------------------
    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_NAME

    def acquire_lock(self) -> None:
        """Hold the run folder for this process: a second process is refused (naming the holder);
        a lock left by a process that no longer runs — or whose PID another program now has —
        is taken over."""
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _lock_holder(self.lock_path)
                if holder is not None and holder[0] == os.getpid():
                    return
                if holder is not None and _holds(*holder):
                    raise ConfigError(
                        f"--out {self.root}: another lagaug process (PID {holder[0]}) is using this run; "
                        "wait for it to finish or stop it"
                    ) from None
                self.lock_path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(lock_line(os.getpid()))
            return

    def release_lock(self) -> None:
        holder = _lock_holder(self.lock_path)
        if holder is not None and holder[0] == os.getpid():
            self.lock_path.unlink(missing_ok=True)

    # -- iterations ----------------------------------------------------------------------------
    def iteration_metrics(self, it: int) -> dict | None:
        path = self.iteration_dir(it) / "metrics.json"
        return json.loads(path.read_text()) if path.exists() else None

    def write_iteration(self, it: int, metrics: dict, scored=None) -> None:
        """Write iteration ``it``: ``scores.csv`` (when ``scored`` = ``(train, scores, probs)``)
        first, then ``metrics.json``, whose presence marks the iteration done."""
        if scored is not None:
            atomic_write_text(self.iteration_dir(it) / "scores.csv", scores_csv(*scored))
        atomic_write_json(self.iteration_dir(it) / "metrics.json", metrics)

    def read_scores(self, it: int, train) -> tuple:
        """``(scores, probs)`` of iteration ``it`` as written, at full precision, checked against
        the training set they belong to."""
        import torch

        path = self.iteration_dir(it) / "scores.csv"
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if [r["id"] for r in rows] != list(train.ids):
            raise ConfigError(f"{path}: the scored images differ from this run's training images; "
                              "the run directory was changed — start a new run")
        prob_cols = [f"p_{name}" for name in train.class_names]
        scores = torch.tensor([float(r["score"]) for r in rows], dtype=torch.float32)
        probs = torch.tensor([[float(r[c]) for c in prob_cols] for r in rows], dtype=torch.float32)
        return scores, probs

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
        return read_manifest(self.synthetic_dir(it) / "manifest.jsonl")

    def update_manifest(self, upto: int) -> None:
        """Rewrite ``RUN/manifest.jsonl``: every batch's lines, iterations 1 .. ``upto``."""
        everything = []
        for k in range(1, upto + 1):
            everything.extend(self.synthetic_manifest(k) or [])
        atomic_write_lines(self.root / "manifest.jsonl", (strict_json(line) for line in everything))

    def write_data_summary(self, summary: dict) -> None:
        """``data.json``, once: a resumed run keeps the file it started with."""
        if not (self.root / "data.json").exists():
            atomic_write_json(self.root / "data.json", summary)


def scores_csv(train, scores, probs) -> str:
    """Every training image's hardness score and mean class probabilities, as real CSV (quoted
    where needed) at full precision."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "label", "synthetic", "score", *[f"p_{name}" for name in train.class_names]])
    for i in range(len(train)):
        writer.writerow([train.ids[i], train.class_names[int(train.labels[i])], int(train.synthetic[i]),
                         repr(float(scores[i])), *[repr(float(p)) for p in probs[i]]])
    return buf.getvalue()


# options that may change between a run and its resumption
RESUME_FREE = {"quiet", "device", "resume", "identity", "threads", "executor", "ray_address", "ray_gpus", "refit"}
# paths, compared by content (identity fingerprints) instead of by spelling; the run's own folder
# is not compared at all
PATH_KEYS = {"out", "data", "unlabeled", "generator"}
LOCK_NAME = ".lagaug.lock"


def lock_line(pid: int) -> str:
    """What a lock file holds: the holder's PID and, where the system tells, when that process
    started (so that a later process given the same PID is not taken for the holder)."""
    return f"{pid} {_started(pid) or '-'}\n"


def _lock_holder(path: Path) -> tuple[int, str | None] | None:
    """``(pid, start)`` from a lock file (``start`` ``None`` when it does not say), or ``None``."""
    try:
        parts = path.read_text().split()
        return int(parts[0]), (parts[1] if len(parts) > 1 and parts[1] != "-" else None)
    except (OSError, ValueError, IndexError):
        return None


def _started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, Linux ``/proc``), or ``None``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def _holds(pid: int, start: str | None) -> bool:
    """Whether the process named by a lock still runs: PID ``pid`` exists and is the process that
    wrote the lock (the same start time; for a lock without one, a process running the lagaug
    command)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = _started(pid)
    if start is not None and now is not None:
        return now == start
    if start is None:  # a lock an older lagaug wrote: honoured while its PID runs the lagaug command
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return True
        return any(os.path.basename(a) == b"lagaug" for a in argv) or any(
            a == b"-m" and b.split(b".")[0] == b"lagaug" for a, b in zip(argv, argv[1:]))
    return True
