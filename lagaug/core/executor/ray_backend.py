"""The Ray executor: every job one Ray task, results handed back to the driver.

Imported only when ``--executor ray`` is chosen. Each job becomes a task of :func:`run_job` with
the run's :class:`~lagaug.core.executor.Resources` (``num_cpus``, ``num_gpus``; the task sets its
torch thread count), spread over the nodes. A task whose worker or node dies is retried
(:data:`TASK_RETRIES` times) and, being a pure function of its arguments, gives the same result;
an exception raised by the job itself is not retried. Ctrl-C (or any error on the driver) first
collects the tasks that have already finished, then cancels the rest.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

import ray

from lagaug.core.errors import ConfigError, LagaugError
from lagaug.core.executor.base import INSTALL_HINT, Executor, OnDone, Resources, run_job, this_node  # noqa: F401

#: Times Ray re-runs a task whose worker process or node died (the job's own errors are not retried).
TASK_RETRIES = 3
#: Seconds joining a cluster may take before the run gives up (the TCP probe alone: at most 5).
CONNECT_TIMEOUT = 30.0
#: How often (seconds) the driver wakes while waiting, so that Ctrl-C is seen at once.
WAIT_SLICE = 0.5
DEFAULT_PORTS = {"ray": 10001, "gcs": 6379}


class ExecutorError(LagaugError):
    """A task could not be completed on the cluster (its worker or node kept dying)."""


class RayExecutor(Executor):
    """Jobs as Ray tasks; see the module docstring. ``address``: ``None`` starts a Ray instance on
    this machine (stopped again by :meth:`close`); ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``
    join a running cluster. A process that already called ``ray.init()`` keeps its connection."""

    name = "ray"
    in_process = False

    def __init__(self, address: str | None = None, resources: Resources | None = None,
                 connect_timeout: float | None = None):
        super().__init__(resources)
        self.address = address
        self._owns = False
        if not ray.is_initialized():
            connect(address, CONNECT_TIMEOUT if connect_timeout is None else connect_timeout)
            self._owns = True
        else:
            _warn_if_elsewhere(address)
        self._task = ray.remote(run_job)
        self._pending: dict[Any, tuple[OnDone, str]] = {}
        self.cancelled: list[Any] = []  # the tasks it cancelled (their results raise TaskCancelledError)

    def put(self, value: Any) -> Any:
        return ray.put(value)

    def job_device(self, device) -> str:
        # a task sees only the GPUs Ray gave it, numbered from 0
        return "cuda" if getattr(device, "type", str(device).split(":")[0]) == "cuda" else str(device)

    def submit(self, fn: Callable, *args: Any, name: str, on_done: OnDone, inproc: dict | None = None) -> None:
        res = self.resources
        ref = self._task.options(
            name=name, num_cpus=res.cpus, num_gpus=res.gpus, max_retries=TASK_RETRIES, retry_exceptions=False,
            scheduling_strategy="SPREAD",
        ).remote(fn, res.threads, *args)
        self._pending[ref] = (on_done, name)

    def wait(self) -> None:
        try:
            while self._pending:
                ready, _ = ray.wait(list(self._pending), num_returns=1, timeout=WAIT_SLICE)
                for ref in ready:
                    self._finish(ref)
        except KeyboardInterrupt:
            self._stop(collect=True)
            raise
        except BaseException:
            self._stop(collect=False)
            raise

    def poll(self) -> None:
        if self._pending:
            ready, _ = ray.wait(list(self._pending), num_returns=len(self._pending), timeout=0)
            for ref in ready:
                self._finish(ref)

    def _finish(self, ref) -> None:
        on_done, name = self._pending.pop(ref)
        try:
            result, node = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the job itself raised
            cause = getattr(exc, "cause", None)
            if isinstance(cause, LagaugError):
                raise cause from None
            raise exc.as_instanceof_cause() from None
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.ObjectLostError, ray.exceptions.OutOfMemoryError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExecutorError(f"Ray task {name!r} failed {TASK_RETRIES + 1} times ({first}); finished work is "
                                "saved — run again with --resume") from None
        on_done(result, node)

    def _stop(self, collect: bool) -> None:
        """Cancel what is still out; first (``collect``) hand over what has already finished."""
        if collect:
            try:
                self.poll()
            except BaseException:  # a second interrupt, or a failed task: cancel the rest anyway
                pass
        for ref in list(self._pending):
            try:
                ray.cancel(ref, force=True)
                self.cancelled.append(ref)
            except Exception:
                pass
        self._pending.clear()

    def cancel(self) -> None:
        self._stop(collect=False)

    def close(self) -> None:
        self.cancel()
        if self._owns and ray.is_initialized():
            ray.shutdown()
            self._owns = False

    def describe(self) -> str:
        return f"ray ({self.address or 'local instance'})"


# -- connecting --------------------------------------------------------------------------------------


def connect(address: str | None, timeout: float) -> None:
    """Start a local Ray instance (``address`` ``None``) or join a cluster, with one-line errors.

    Joining is bounded: an address where nothing answers fails within 5 s (a TCP probe), one that
    answers but never completes Ray's handshake within ``timeout`` seconds."""
    options = dict(logging_level=logging.WARNING, include_dashboard=False if address is None else None)
    options = {k: v for k, v in options.items() if v is not None}
    previous = signal.getsignal(signal.SIGTERM)
    try:
        if address is None:
            # Ray starts its workers at nice 15; beside any other busy process they then get a
            # fraction of a core (a member trained 8x slower on a shared 2-core machine). The
            # instance lagaug starts for itself runs them at normal priority, unless the user
            # set RAY_worker_niceness.
            with _env_default("RAY_worker_niceness", "0"):
                ray.init(address="local", **options)  # never a cluster that happens to run on this machine
        else:
            if address != "auto":
                probe(address, min(5.0, timeout))
            _join(address, timeout, options)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)  # Ray's own handler would skip lagaug's resume hint


@contextmanager
def _env_default(name: str, value: str) -> Iterator[None]:
    """``os.environ[name]`` set to ``value`` for the body unless it is set already."""
    if name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)


#: an HTTP/2 client's opening (the preface and an empty SETTINGS frame): what a gRPC client sends first
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
#: seconds a server that accepted the connection has to answer like gRPC
ANSWER_TIMEOUT = 3.0


def probe(address: str, timeout: float) -> None:
    """Fail with one line when nothing accepts a connection at ``address``, or when what answers
    is not a Ray cluster: Ray's GCS and its client server speak gRPC (HTTP/2), whose server sends
    a SETTINGS frame first; anything else would keep ``ray.init`` retrying for half a minute."""
    host, port = host_port(address)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        if isinstance(exc, TimeoutError):
            reason = f"no answer in {timeout:.0f} s"
        else:
            reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"--ray-address {address}: no Ray cluster answers there ({reason}); start one with "
                          "`ray start --head` or correct the address") from None
    head = b""
    with sock:
        try:
            sock.settimeout(min(timeout, ANSWER_TIMEOUT))
            sock.sendall(_H2_PREFACE)
            while len(head) < 9:
                chunk = sock.recv(9 - len(head))
                if not chunk:
                    break
                head += chunk
        except OSError:
            pass
    if len(head) < 9 or head[3] != 0x04:  # the frame type of SETTINGS
        client = address.startswith("ray://")
        raise ConfigError(f"--ray-address {address}: something answers at {host}:{port}, but not a Ray cluster (it "
                          "does not speak gRPC); check the port — "
                          + ("a Ray client server listens on 10001 by default" if client else
                             "a Ray head listens on 6379 by default (ray://HOST:10001 for its client server)"))


def host_port(address: str) -> tuple[str, int]:
    """``(host, port)`` of ``HOST[:PORT]`` or ``ray://HOST[:PORT]`` (Ray's default ports)."""
    client = address.startswith("ray://")
    rest = address[len("ray://"):] if client else address
    host, sep, port = rest.rpartition(":")
    if sep and not port.isdigit() and not rest.endswith("]"):
        raise ConfigError(f"--ray-address {address}: port {port!r} is not a number; use auto, HOST:PORT or "
                          "ray://HOST:PORT")
    if not sep or not port.isdigit():
        host, port = rest, str(DEFAULT_PORTS["ray" if client else "gcs"])
    host = host.strip("[]")
    if not host:
        raise ConfigError(f"--ray-address {address!r} names no host; use auto, HOST:PORT or ray://HOST:PORT")
    if not 1 <= int(port) <= 65535:
        raise ConfigError(f"--ray-address {address}: {int(port)} is not a port number (1 to 65535)")
    return host, int(port)


def _warn_if_elsewhere(address: str | None) -> None:
    """This process is already connected to Ray: say so when ``address`` names another port."""
    if address is None or address == "auto" or address.startswith("ray://"):
        return
    try:
        current = ray.get_runtime_context().gcs_address
    except Exception:
        return
    if current and host_port(current)[1] != host_port(address)[1]:
        warnings.warn(f"--ray-address {address}: this process is already connected to Ray at {current}; "
                      "the run uses that cluster", stacklevel=3)


class _QuietThreadWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


def _join(address: str, timeout: float, options: dict) -> None:
    """``ray.init(address)`` in a helper thread, given up after ``timeout`` seconds."""
    box: dict[str, BaseException] = {}

    def attempt() -> None:
        try:
            ray.init(address=address, **options)
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    quiet = _QuietThreadWarning()
    logger = logging.getLogger("ray._private.worker")
    logger.addFilter(quiet)
    try:
        worker = threading.Thread(target=attempt, name="lagaug-ray-connect", daemon=True)
        worker.start()
        worker.join(timeout)
    finally:
        logger.removeFilter(quiet)
    if worker.is_alive():
        raise ConfigError(f"--ray-address {address}: no Ray cluster answered within {timeout:.0f} s; check the "
                          "address (auto, HOST:PORT or ray://HOST:PORT) and that the cluster runs")
    if "error" in box:
        exc = box["error"]
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--ray-address {address}: cannot join a Ray cluster ({text})") from None
