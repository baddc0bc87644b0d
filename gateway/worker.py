"""The gunicorn worker the gateway runs on: gthread, with two changes an API gateway needs.

- A request must arrive whole (request line, headers and body) within `REQUEST_READ_TIMEOUT_S`.
  gthread reads a request in a worker thread once its first byte is there, so a client sending a
  byte a second would hold that thread for as long as it likes; a few hundred such clients would
  hold them all before any authentication. One watchdog thread per worker shuts such a connection
  down when its time is up.
- gunicorn answers what it cannot parse itself (a bad request line, headers too large, a malformed
  chunk size) with an HTML page; clients of this gateway get the OpenAI JSON error shape.
"""
from __future__ import annotations

import heapq
import itertools
import json
import socket
import threading
import time
from typing import Any

from gunicorn import util
from gunicorn.http.errors import ParseException
from gunicorn.workers.gthread import ThreadWorker

from gateway.config import Settings

_DEADLINES: "ReadDeadlines | None" = None     # this worker process's, once it runs


# What reading a request body can raise when the client sent a malformed one (a bad chunk size).
MALFORMED_BODY = (ParseException,)


def body_read(environ: dict[str, Any]) -> None:
    """The app has read the request body: its connection's read deadline no longer applies (a
    no-op under any other server)."""
    sock = environ.get("gunicorn.socket")
    if _DEADLINES is not None and sock is not None:
        _DEADLINES.disarm(sock)


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own error answers, in the OpenAI shape (replaces gunicorn.util.write_error, which
    its workers call for every request they could not parse)."""
    kind = "invalid_request_error" if status_int < 500 else "server_error"
    body = json.dumps({"error": {"message": mesg or reason, "type": kind, "param": None,
                                 "code": reason.lower().replace(" ", "_")}}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
    util.write_nonblock(sock, head + body)


util.write_error = write_json_error


class ReadDeadlines(threading.Thread):
    """Shuts down the sockets of requests that did not arrive in time.

    Arming and disarming only touch a heap under a lock; the watchdog looks at it a few times a
    second instead of being woken for every request (a wake-up per request costs the request
    thread a GIL hand-off)."""

    POLL_S = 0.25

    def __init__(self) -> None:
        super().__init__(name="read-deadlines", daemon=True)
        self._heap: list[tuple[float, int, socket.socket]] = []
        self._armed: dict[int, int] = {}        # fileno -> token of its live deadline
        self._tokens = itertools.count()
        self._lock = threading.Lock()

    def arm(self, sock: socket.socket, seconds: float) -> None:
        with self._lock:
            token = next(self._tokens)
            self._armed[sock.fileno()] = token
            heapq.heappush(self._heap, (time.monotonic() + seconds, token, sock))

    def disarm(self, sock: socket.socket) -> None:
        with self._lock:
            self._armed.pop(sock.fileno(), None)

    def _expired(self) -> list[socket.socket]:
        now, expired = time.monotonic(), []
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                _, token, sock = heapq.heappop(self._heap)
                if self._armed.get(sock.fileno()) == token:
                    del self._armed[sock.fileno()]
                    expired.append(sock)
        return expired

    def run(self) -> None:
        while True:
            time.sleep(self.POLL_S)
            for sock in self._expired():
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class GatewayWorker(ThreadWorker):
    def init_process(self) -> None:
        global _DEADLINES
        self.read_timeout_s = Settings.from_env().request_read_timeout_s
        self.deadlines = _DEADLINES = ReadDeadlines()
        self.deadlines.start()
        super().init_process()

    def handle(self, conn: Any) -> Any:
        self.deadlines.arm(conn.sock, self.read_timeout_s)
        try:
            return super().handle(conn)
        finally:
            self.deadlines.disarm(conn.sock)

    def handle_request(self, req: Any, conn: Any) -> Any:
        """The head has arrived; a request without a body is now read whole, one with a body once
        the app has read it (`body_read`)."""
        if not _has_body(req):
            self.deadlines.disarm(conn.sock)
        return super().handle_request(req, conn)


def _has_body(req: Any) -> bool:
    for name, value in req.headers:
        if name == "TRANSFER-ENCODING" or (name == "CONTENT-LENGTH" and value.strip() not in ("", "0")):
            return True
    return False
