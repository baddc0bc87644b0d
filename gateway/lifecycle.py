"""A worker's life: its lease in the database, the upstream streams it is reading, and how it ends.

- `WorkerLease` registers the process, renews its lease every few seconds and, each time, marks
  failed the responses of workers that died without finishing them (storage/leases.py), and runs
  the retention pass when it is due (`Retention`).
- `InFlight` knows every upstream stream this process reads, so they can be ended from another
  thread: all of them when the worker is shutting down, one when its client went away.
- `drain_on_sigterm` gives in-flight responses gunicorn's graceful period, then ends those still
  running with `response.failed` (stored, then the terminal event), before the master's SIGKILL;
  WebSockets hear of it at once (`SHUTDOWN`) and close with an error frame once idle.
"""
from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
from typing import Any, Callable

from gateway.errors import APIError, server_error
from storage import leases, retention

log = logging.getLogger("gateway.lifecycle")
WORKER_DIED = {"code": "server_error",
               "message": "The gateway worker serving this response stopped before it finished (it was killed "
                          "or crashed); the response was not completed."}


def shutting_down() -> APIError:
    return server_error(503, "The gateway is shutting down; the response was cut short. Retry it.",
                        code="server_shutting_down")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class InFlight:
    """The upstream streams this process is reading, by response id."""

    def __init__(self) -> None:
        self._streams: dict[str, Any] = {}
        self._lock = threading.Lock()

    def add(self, response_id: str, upstream: Any) -> None:
        with self._lock:
            self._streams[response_id] = upstream

    def discard(self, response_id: str) -> None:
        with self._lock:
            self._streams.pop(response_id, None)

    def __len__(self) -> int:
        return len(self._streams)

    def abort(self, response_id: str, error: APIError) -> bool:
        with self._lock:
            upstream = self._streams.get(response_id)
        if upstream is not None:
            upstream.abort(error)
        return upstream is not None

    def abort_all(self, error: APIError) -> int:
        with self._lock:
            streams = list(self._streams.values())
        for upstream in streams:
            upstream.abort(error)
        return len(streams)


class ShutdownNotice:
    """Long-lived connections (WebSockets) that want to hear at once that the worker stops."""

    def __init__(self) -> None:
        self._listeners: set[Any] = set()
        self._lock = threading.Lock()
        self.stopping = False

    def add(self, listener: Any) -> None:
        with self._lock:
            self._listeners.add(listener)

    def discard(self, listener: Any) -> None:
        with self._lock:
            self._listeners.discard(listener)

    def notify_all(self) -> None:
        self.stopping = True
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener.shutting_down()


SHUTDOWN = ShutdownNotice()


class Retention:
    """`RESPONSE_TTL_DAYS`: one worker of the fleet purges what is older, once per interval."""

    def __init__(self, ttl_days: float, interval_s: float) -> None:
        self.ttl_days, self.interval_s = ttl_days, interval_s

    def run_if_due(self) -> None:
        if self.ttl_days <= 0 or not retention.claim_pass(self.interval_s):
            return
        started = time.monotonic()
        purged = retention.purge_older_than(int(time.time() - self.ttl_days * 86400))
        log.info("retention pass", extra={"fields": {
            "responses": purged.responses, "conversations": purged.conversations, "complete": purged.complete,
            "duration_ms": round((time.monotonic() - started) * 1000, 1)}})


class WorkerLease(threading.Thread):
    """This process's lease (renewed every `lease_s / 3`), and the sweep for dead workers' responses."""

    def __init__(self, lease_s: float, periodic: Callable[[], None] | None = None) -> None:
        super().__init__(name="worker-lease", daemon=True)
        self.lease_s = lease_s
        self.periodic = periodic
        self.host = socket.gethostname()
        self.worker_id = f"{self.host}:{os.getpid()}:{secrets.token_hex(4)}"
        self._stopped = threading.Event()

    def begin(self) -> "WorkerLease":
        """Register, recover what dead workers left, and keep the lease from now on."""
        leases.register_worker(self.worker_id, self.host, os.getpid(), self.lease_s)
        self.sweep()
        self.start()
        return self

    def renew(self) -> None:
        """Extend the lease (raises when storage does not accept writes)."""
        if not leases.renew_worker(self.worker_id, self.lease_s):
            leases.register_worker(self.worker_id, self.host, os.getpid(), self.lease_s)

    def sweep(self) -> None:
        failed = leases.fail_abandoned(self.host, process_alive, WORKER_DIED)
        if failed:
            log.warning("marked failed the responses of workers that died", extra={"fields": {"responses": failed}})

    def run(self) -> None:
        while not self._stopped.wait(self.lease_s / 3):
            try:
                self.renew()
                self.sweep()
                if self.periodic is not None:
                    self.periodic()
            except Exception as exc:  # storage away: try again next round, /ready reports it
                log.warning("could not renew the worker lease: %s", exc.__class__.__name__)

    def stop(self) -> None:
        """Graceful exit: give up the lease (nothing of ours is in progress any more)."""
        self._stopped.set()
        try:
            leases.retire_worker(self.worker_id)
        except Exception:
            log.warning("could not retire the worker lease")


def drain_on_sigterm(in_flight: InFlight, graceful_s: float) -> None:
    """In a gunicorn worker: on SIGTERM (gunicorn's own handler stops accepting), end what is still
    streaming shortly before the graceful period runs out, so every client gets a terminal event
    and every stored response its final state."""
    previous = signal.getsignal(signal.SIGTERM)
    margin = min(5.0, graceful_s / 4)

    def end_in_flight() -> None:
        ended = in_flight.abort_all(shutting_down())
        if ended:
            log.warning("shutdown: ended responses still streaming", extra={"fields": {"count": ended}})

    def on_sigterm(signum, frame):
        threading.Thread(target=SHUTDOWN.notify_all, name="shutdown-notice", daemon=True).start()
        timer = threading.Timer(max(0.0, graceful_s - margin), end_in_flight)
        timer.daemon = True
        timer.start()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
