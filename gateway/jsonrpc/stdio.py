"""JSON-RPC over stdio, for a host that spawns the gateway: `python -m gateway.jsonrpc`.

stdout carries protocol messages only, one per line. Before anything else runs, file descriptor 1
is pointed at stderr and messages go to a private copy of the original, so a stray print or a
library's output can never corrupt the stream; logs go to stderr. The process is one connection:
end of input cancels the calls in flight (stored incomplete, answered if stdout is still read),
SIGTERM/SIGINT ends them as failed, and a host that stops reading stdout for `WS_SEND_TIMEOUT_S`
gets them failed and the process exits.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Iterator

from gateway.jsonrpc.call import HostGone
from gateway.jsonrpc.protocol import INVALID_REQUEST
from gateway.jsonrpc.session import RpcSession
from gateway.lifecycle import shutting_down
from gateway.logs import configure_logging
from gateway.services import Services
from gateway.startup import check_database, load_settings
from gateway.tenants import OPEN_WARNING
from gateway.ws_buffers import Outbox

log = logging.getLogger("gateway.jsonrpc")
ROUTE = "jsonrpc (stdio)"
EXIT_HOST_NOT_READING = 1


class LineWriter:
    """The outbox's channel: one message per line on a file descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, text: str) -> None:
        view = memoryview((text + "\n").encode("utf-8"))
        while view:
            view = view[os.write(self.fd, view):]


def read_lines(fd: int, max_bytes: int) -> Iterator[bytes | None]:
    """Each line read from `fd`, without its line break; `None` in place of a line longer than
    `max_bytes`, which is skipped without being held in memory."""
    pending, skipping = bytearray(), False
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            if pending and not skipping:
                yield bytes(pending)
            return
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            if skipping:
                skipping = False
            else:
                yield bytes(pending[start:end]) if end - start <= max_bytes else None
            start = end + 1
        del pending[:start]
        if len(pending) > max_bytes:
            if not skipping:
                yield None
            skipping = True
            pending.clear()


class StdioConnection:
    def __init__(self, services: Services, protocol_fd: int, input_fd: int = 0) -> None:
        settings = services.settings
        self.settings, self.input_fd = settings, input_fd
        self.outbox = Outbox(LineWriter(protocol_fd), settings.ws_send_buffer_bytes, settings.ws_send_timeout_s)
        self.session = RpcSession(services, self.outbox, route=ROUTE,
                                  on_broken=lambda: self.end("host stopped reading"))
        self._ended = threading.Event()
        self.reason = ""

    def end(self, reason: str) -> None:
        if not self._ended.is_set():
            self.reason = reason
            self._ended.set()

    def serve(self) -> int:
        threading.Thread(target=self._read, name="jsonrpc-reader", daemon=True).start()
        while not self._ended.wait(1.0):    # a timed wait lets signal handlers run promptly
            pass
        timeout = self.settings.ws_send_timeout_s
        if self.reason == "signal":
            self.session.refuse_new_calls(shutting_down())
            self.session.stop_calls(shutting_down())
            self.session.wait_idle(timeout)
        else:
            self.session.close(wait_s=timeout)
        self.outbox.close(wait_s=timeout)
        log.info("jsonrpc stdio connection ended", extra={"fields": {"reason": self.reason}})
        return EXIT_HOST_NOT_READING if self.reason == "host stopped reading" else 0

    def _read(self) -> None:
        try:
            for line in read_lines(self.input_fd, self.settings.max_request_bytes):
                if line is None:
                    self.session.send_error(None, INVALID_REQUEST, "Invalid request: the message is larger than "
                                                                   "MAX_REQUEST_BYTES.")
                elif line.strip():
                    self.session.handle(line)
        except HostGone:
            pass
        except OSError as exc:
            log.warning("could not read stdin: %s", exc)
        finally:
            self.end("end of input")


def main() -> int:
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    settings, keyring = load_settings()
    configure_logging(settings.log_level, settings.log_format, settings.log_bodies)
    check_database(settings)
    if keyring.open:
        log.warning(OPEN_WARNING)
    services = Services.build(settings)
    connection = StdioConnection(services, protocol_fd)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: connection.end("signal"))
    try:
        return connection.serve()
    finally:
        services.close()
