"""Progress where nobody watches a terminal: plain lines at a steady interval, with the stage, its
count and an ETA (lagaug.core.progress), in the log of a real run with stderr redirected."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest
from rich.console import Console

from lagaug.core.errors import ConfigError
from lagaug.core.progress import INTERVAL_ENV, LineReport, Progress, log_interval


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_line_every_interval_or_every_tenth_of_the_stage_with_an_eta():
    clock, lines = Clock(), []
    report = LineReport(lines.append, "fitting vae", 100, interval=30, clock=clock)
    assert lines == ["fitting vae: started, 0/100"]
    clock.now = 5
    report.advance(4, status="loss 2.5")  # 4%, 5 s: nothing due
    assert len(lines) == 1
    clock.now = 8
    report.advance(6)  # 10%: a line, though 30 s have not passed
    assert lines[-1] == "fitting vae: 10/100 (10%), loss 2.5 · 0:00:08 elapsed · ETA 0:01:12"
    clock.now = 9
    report.advance(1)  # 11%: not due
    assert len(lines) == 2
    clock.now = 40
    report.advance(1)  # 12%, 32 s after the last line: due by time
    assert lines[-1] == "fitting vae: 12/100 (12%), loss 2.5 · 0:00:40 elapsed · ETA 0:04:53"
    clock.now = 41
    report.advance(8)  # 20%
    assert lines[-1].startswith("fitting vae: 20/100 (20%)") and len(lines) == 4
    clock.now = 100
    report.advance(80)
    report.finish()
    assert lines[-1] == "fitting vae: 100/100 (100%), loss 2.5 · finished in 0:01:40"
    unknown = []
    open_ended = LineReport(unknown.append, "reading", None, interval=30, clock=clock)
    clock.now = 200
    open_ended.advance(7)
    assert unknown == ["reading: started", "reading: 7 done · 0:01:40 elapsed"]


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    assert log_interval() == 30
    monkeypatch.setenv(INTERVAL_ENV, "0.5")
    assert log_interval() == 0.5 and Progress().interval == 0.5
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv(INTERVAL_ENV, bad)
        with pytest.raises(ConfigError) as err:
            Progress()
        assert str(err.value) == (f"{INTERVAL_ENV}={bad!r}: give the seconds between progress lines in a log, "
                                  "a number of at least 0 (default 30)")
    assert Progress(quiet=True).quiet  # quiet never reads it


def test_a_terminal_gets_bars_and_a_file_gets_lines(monkeypatch):
    monkeypatch.setenv(INTERVAL_ENV, "0")
    log = io.StringIO()
    progress = Progress(console=Console(file=log, force_terminal=False, width=200))
    assert progress.plain()
    with progress.task("stage", 2) as task:
        task.advance(1, status="half")
        task.advance(1)
    assert log.getvalue().splitlines()[0] == "stage: started, 0/2"
    assert log.getvalue().splitlines()[1] == "stage: 1/2 (50%), half · 0:00:00 elapsed · ETA 0:00:00"
    assert log.getvalue().splitlines()[-1] == "stage: 2/2 (100%), half · finished in 0:00:00"
    assert len(log.getvalue().splitlines()) == 3
    tty = io.StringIO()
    bars = Progress(console=Console(file=tty, force_terminal=True, width=200))
    assert not bars.plain()
    with bars.task("stage", 2) as task:
        task.advance(2)
    assert "stage" in tty.getvalue() and "started" not in tty.getvalue() and "━" in tty.getvalue()


def test_a_redirected_log_of_a_real_run_gets_progress_lines(example_plugin, learn_npz, tmp_path):
    log = tmp_path / "run.log"
    env = {**os.environ, INTERVAL_ENV: "0.05"}
    args = ["augment", "--method", "jitter", "--data", learn_npz, "--image-size", "16", "--iterations", "0",
            "--ensemble", "1", "--epochs", "4", "--out", tmp_path / "run", "--no-report"]
    with open(log, "w") as fh:
        done = subprocess.run([sys.executable, "-m", "lagaug", *map(str, args)], stdout=subprocess.DEVNULL,
                              stderr=fh, env=env, timeout=600)
    text = log.read_text()
    assert done.returncode == 0, text
    stage = "iteration 0: ensemble: 1 x test_resnet"
    assert f"{stage}: started, 0/4" in text
    progress = re.findall(rf"^{re.escape(stage)}: (\d)/4 \((\d+)%\), loss [\d.]+ · \d:\d\d:\d\d elapsed · "
                          rf"ETA \d:\d\d:\d\d$", text, re.M)
    assert [(int(n), int(p)) for n, p in progress] == [(1, 25), (2, 50), (3, 75)], text
    assert re.search(rf"^{re.escape(stage)}: 4/4 \(100%\), loss [\d.]+ · finished in \d:\d\d:\d\d$", text, re.M), text
    assert "━" not in text and "\x1b[" not in text  # no bars, no terminal codes in a log
