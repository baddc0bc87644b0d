"""One Responses WebSocket connection: frames in, events out, state kept per connection.

Reading and writing are independent. simple-websocket reads frames on its own thread; this
session handles them one at a time on the connection's request thread (a `response.create` sent
while another runs waits its turn, in order); a writer thread drains a byte-bounded outbox to the
socket. A client that stops reading fills the outbox: after `ws_send_timeout_s` the connection is
dropped and the running response ends as failed (and is recorded if stored) — memory stays
bounded and other connections are never affected.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import deque
from typing import Any, Callable

from gateway.access import AccessRecord
from gateway.config import Settings
from gateway.engine import Engine
from gateway.errors import APIError
from gateway.history import ParentCache
from gateway.lifecycle import SHUTDOWN
from gateway.metrics import ACTIVE_WEBSOCKETS
from gateway.sse import event_json

log = logging.getLogger(__name__)
_SHUTDOWN = APIError(503, "The gateway is restarting; open a new connection to continue.", type="server_error",
                     code="server_shutting_down")
_LIMIT_MESSAGE = ("Responses websocket connection limit reached ({limit}). Create a new websocket "
                  "connection to continue.")


class SendOverflow(Exception):
    """The client stopped reading: the outbox stayed full past the send deadline."""


class Outbox:
    """Frames waiting for the socket, bounded in bytes; a writer thread sends them in order."""

    def __init__(self, ws: Any, max_bytes: int, timeout_s: float) -> None:
        self.ws, self.max_bytes, self.timeout_s = ws, max_bytes, timeout_s
        self._frames: deque[str] = deque()
        self._bytes = 0
        self._cond = threading.Condition()
        self._closing = False
        self.broken = False
        self._thread = threading.Thread(target=self._drain, name="ws-writer", daemon=True)
        self._thread.start()

    def put(self, frame: str) -> None:
        size = len(frame)
        with self._cond:
            deadline = time.monotonic() + self.timeout_s
            while self._frames and self._bytes + size > self.max_bytes and not self.broken:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SendOverflow(f"{self._bytes} bytes unsent for {self.timeout_s}s")
                self._cond.wait(remaining)
            if self.broken:
                raise ConnectionError("websocket closed")
            self._frames.append(frame)
            self._bytes += size
            self._cond.notify_all()

    def _drain(self) -> None:
        while True:
            with self._cond:
                while not self._frames and not self._closing:
                    self._cond.wait()
                if not self._frames:
                    return
                frame = self._frames[0]
            try:
                self.ws.send(frame)
            except Exception:  # the peer went away or the socket was shut down
                with self._cond:
                    self.broken = True
                    self._frames.clear()
                    self._cond.notify_all()
                return
            with self._cond:
                self._frames.popleft()
                self._bytes -= len(frame)
                self._cond.notify_all()

    def close(self, wait_s: float) -> None:
        """Let queued frames go out (bounded wait), then stop the writer."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(wait_s)


def error_frame(error: APIError) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "status": error.status, "error": error.to_dict()["error"]}
    if error.headers:
        frame["headers"] = {k.lower(): v for k, v in error.headers.items()}
    return frame


class ResponsesSocket:
    def __init__(self, ws: Any, engine: Engine, settings: Settings,
                 access: Callable[[], AccessRecord] | None = None) -> None:
        self.ws, self.engine, self.settings = ws, engine, settings
        self.access = access
        self.cache = ParentCache(settings.ws_cache_size)
        self.outbox = Outbox(ws, settings.ws_send_buffer_bytes, settings.ws_send_timeout_s)
        self.deadline = time.monotonic() + settings.ws_max_connection_age_s
        self._busy = threading.Lock()      # held while a response.create runs
        self._closed_for_shutdown = False

    def run(self) -> None:
        ACTIVE_WEBSOCKETS.inc()
        SHUTDOWN.add(self)
        try:
            while not self.outbox.broken and not self._closed_for_shutdown:
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    self._limit_reached()
                    return
                if SHUTDOWN.stopping:
                    self.shutting_down()
                    return
                data = self.ws.receive(timeout=remaining)
                if data is not None and not self._closed_for_shutdown:
                    with self._busy:
                        self.handle(data)
        except SendOverflow as exc:
            log.warning("dropping a websocket whose client stopped reading: %s", exc)
            self._drop()
        except ConnectionError:
            pass
        finally:
            SHUTDOWN.discard(self)
            ACTIVE_WEBSOCKETS.dec()
            self.outbox.close(wait_s=self.settings.ws_send_timeout_s)

    def send(self, frame: dict[str, Any]) -> None:
        self.outbox.put(event_json(frame))

    def handle(self, data: str | bytes) -> None:
        try:
            frame = json.loads(data)
        except (TypeError, ValueError):
            self.send(error_frame(APIError(400, "Frames must be JSON text.", code="invalid_json")))
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            self.send(error_frame(APIError(400, "A frame must be a JSON object with a 'type'.", param="type")))
            return
        if frame["type"] != "response.create":
            return  # response.processed and other client notifications need no answer
        self.create(frame)

    def create(self, frame: dict[str, Any]) -> None:
        access = self.access() if self.access else None
        status = 200
        try:
            self._create(frame, access)
        except APIError as error:
            status = error.status
            self.send(error_frame(error))
        finally:
            if access is not None:
                access.finish(status)

    def _create(self, frame: dict[str, Any], access: AccessRecord | None) -> None:
        body = {k: v for k, v in frame.items() if k not in ("type", "stream")}
        turn = self.engine.prepare(body, cache=self.cache)
        if access is not None:
            access.turn = turn
        events = self.engine.prewarm(turn) if body.get("generate") is False else self.engine.stream(turn)
        try:
            for event in events:
                self.send(event)
        finally:
            events.close()
        if turn.response["status"] != "failed":
            self.cache.put(turn.response["id"], self.engine.as_parent(turn))

    def shutting_down(self) -> None:
        """The worker is stopping: once no response runs on this connection (a running one ends
        within the graceful period), say so in an error frame and close with 1001 (going away)."""
        if not self._busy.acquire(blocking=False):
            return      # the run loop calls again once the running response has ended
        try:
            if self._closed_for_shutdown:
                return
            self._closed_for_shutdown = True
            self.send(error_frame(_SHUTDOWN))
            self.outbox.close(wait_s=self.settings.ws_send_timeout_s)
            self.ws.close(reason=1001, message="server restarting")
        except Exception:  # the client is already gone
            pass
        finally:
            self._busy.release()

    def _limit_reached(self) -> None:
        age = self.settings.ws_max_connection_age_s
        limit = f"{age / 60:g} minutes" if age >= 60 else f"{age:g} seconds"
        self.send(error_frame(APIError(400, _LIMIT_MESSAGE.format(limit=limit),
                                       code="websocket_connection_limit_reached")))
        self.outbox.close(wait_s=self.settings.ws_send_timeout_s)
        try:
            self.ws.close(message="connection limit reached")
        except Exception:
            pass

    def _drop(self) -> None:
        """Shut the socket down so blocked writes (ours and simple-websocket's) fail at once."""
        self.outbox.broken = True
        try:
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.ws.connected = False
