"""Open a page in headless Chromium and report what a person would meet: a screenshot, console
errors (``console.error``, uncaught exceptions, resources that failed to load), the load time,
and whether the page is wider than the window.

It speaks the DevTools protocol over ``--remote-debugging-pipe`` (file descriptors 3 and 4,
NUL-terminated JSON), so it needs nothing beyond the standard library and a ``chromium`` binary.
Used by the tests and ``benchmarks/bench_report.py``; POSIX only.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    """The path of a Chromium-family browser on PATH, or ``None``."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageCheck:
    screenshot: bytes
    errors: list[str] = field(default_factory=list)
    load_ms: float = float("nan")
    scroll_width: int = 0
    inner_width: int = 0
    images: int = 0
    broken_images: int = 0


class _Pipe:
    """DevTools protocol over a pair of pipes; events are kept for :meth:`events`."""

    def __init__(self, proc: subprocess.Popen, to_browser: int, from_browser: int, deadline: float):
        self.proc, self.out, self.inp, self.deadline = proc, to_browser, from_browser, deadline
        self.buffer = b""
        self.next_id = 0
        self.seen: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.out, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.seen.append(reply)

    def wait_for(self, method: str) -> dict:
        for i, event in enumerate(self.seen):
            if event.get("method") == method:
                return self.seen.pop(i)
        while True:
            event = self._read()
            if event.get("method") == method:
                return event
            self.seen.append(event)

    def _read(self) -> dict:
        while b"\0" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.inp], [], [], left)[0]:
                raise TimeoutError("the browser did not answer in time")
            chunk = os.read(self.inp, 1 << 20)
            if not chunk:
                raise RuntimeError(f"the browser closed the pipe (exit {self.proc.poll()})")
            self.buffer += chunk
        raw, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(raw)


def check_page(path: str | Path, width: int = 1280, height: int = 900, full_page: bool = True,
               browser: str | None = None, timeout: float = 60.0) -> PageCheck:
    """Load ``path`` in headless Chromium at ``width`` x ``height`` CSS pixels and check it."""
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError("no chromium on PATH")
    url = Path(path).resolve().as_uri()
    to_r, to_w = os.pipe()  # we write to_w, the browser reads fd 3
    from_r, from_w = os.pipe()  # the browser writes fd 4, we read from_r

    def child_fds() -> None:  # in the child: the read end becomes fd 3, the write end fd 4
        high_r, high_w = fcntl.fcntl(to_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_w, fcntl.F_DUPFD, 10)
        for src, dst in ((high_r, 3), (high_w, 4)):
            os.dup2(src, dst)
            os.set_inheritable(dst, True)

    profile = tempfile.mkdtemp(prefix="lagaug-chromium-")
    args = [browser, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync",
            "--disable-extensions", "--hide-scrollbars", "--mute-audio", f"--user-data-dir={profile}",
            "about:blank"]
    proc = subprocess.Popen(args, preexec_fn=child_fds, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, pass_fds=(3, 4))
    os.close(to_r)
    os.close(from_w)
    cdp = _Pipe(proc, to_w, from_r, time.monotonic() + timeout)
    try:
        target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            cdp.send(f"{domain}.enable", session=session)
        cdp.send("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        start = time.monotonic()
        cdp.send("Page.navigate", {"url": url}, session=session)
        cdp.wait_for("Page.loadEventFired")
        load_ms = 1000 * (time.monotonic() - start)
        facts = _evaluate(cdp, session, _FACTS)
        if full_page:  # the whole page in the window, so that lazy images load too
            metrics = cdp.send("Page.getLayoutMetrics", session=session)
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            cdp.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": min(int(size["height"]), 16000),
                                                            "deviceScaleFactor": 1, "mobile": False}, session=session)
        for _ in range(100):  # every image decoded (or failed), at most ~5 s
            if _evaluate(cdp, session, "Array.from(document.images).every(i => i.complete)"):
                break
            time.sleep(0.05)
        facts["broken"] = _evaluate(cdp, session, _BROKEN)
        png = base64.b64decode(cdp.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"])
        errors = _errors(cdp.seen)
        try:
            cdp.send("Browser.close")
        except (RuntimeError, TimeoutError):
            pass
    finally:
        os.close(to_w)
        os.close(from_r)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    return PageCheck(png, errors, load_ms, facts["scrollWidth"], facts["innerWidth"], facts["images"],
                     facts["broken"])


_FACTS = """({scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
 images: document.images.length})"""
_BROKEN = "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length"


def _evaluate(cdp: _Pipe, session: str, expression: str):
    return cdp.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                    session=session)["result"]["value"]


def _errors(events: list[dict]) -> list[str]:
    out = []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            out.append("console.error: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            out.append("exception: " + str(d.get("exception", {}).get("description") or d.get("text")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            out.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
    return out
