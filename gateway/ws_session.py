"""One Responses WebSocket connection: frames in, events out, state kept per connection.

Reading and writing are independent. simple-websocket reads frames on its own thread; this
session handles them one at a time on the connection's request thread (a `response.create` sent
while another runs waits its turn, in order); a writer thread drains a byte-bounded outbox to the
socket. A client that stops reading fills the outbox: after `ws_send_timeout_s` the connection is
dropped and the running response ends as failed (and is recorded if stored) — memory stays
bounded and other connections are never affected.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Callable

from gateway.access import AccessRecord
from gateway.config import Settings
from gateway.engine import Engine
from gateway.errors import APIError
from gateway.history import ParentCache
from gateway.json_body import parse_json
from gateway.lifecycle import SHUTDOWN
from gateway.metrics import ACTIVE_WEBSOCKETS
from gateway.sse import event_json
from gateway.ws_buffers import Inbox, Outbox, SendOverflow

log = logging.getLogger(__name__)
_SHUTDOWN = APIError(503, "The gateway is restarting; open a new connection to continue.", type="server_error",
                     code="server_shutting_down")
_TOO_LARGE = APIError(413, "The frame is too large (see MAX_REQUEST_BYTES).", code="request_too_large")
_QUEUE_FULL = APIError(400, "Too many frames are waiting behind the running response on this connection; this "
                            "one was dropped. Send the next response.create after the current response ends.",
                       code="too_many_queued_frames")
_LIMIT_MESSAGE = ("Responses websocket connection limit reached ({limit}). Create a new websocket "
                  "connection to continue.")


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
        if isinstance(ws.input_buffer, Inbox):   # installed by app.py's SOCK_SERVER_OPTIONS
            ws.input_buffer.on_refused = self._refuse_queued
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
                data = self.ws.receive(timeout=min(remaining, self.settings.ws_idle_timeout_s))
                if data is None and time.monotonic() < self.deadline:
                    self._idle_timeout()
                    return
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
        if len(data) > self.settings.max_request_bytes:
            self.send(error_frame(_TOO_LARGE))
            return
        try:
            frame = parse_json(data)
        except APIError as error:
            self.send(error_frame(error))
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
            if not self._create(frame, access):
                self.cache.evict(frame.get("previous_response_id"))
        except APIError as error:
            status = error.status
            self.cache.evict(frame.get("previous_response_id"))
            self.send(error_frame(error))
        finally:
            if access is not None:
                access.finish(status)

    def _create(self, frame: dict[str, Any], access: AccessRecord | None) -> bool:
        """Run one `response.create`; False when its response failed. A continuation that fails
        (here or with an error frame) evicts its `previous_response_id` from the connection's
        cache (responses-api.md §7): a retry from it continues from storage or is not found."""
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
        if turn.response["status"] == "failed":
            return False
        self.cache.put(turn.response["id"], self.engine.as_parent(turn))
        return True

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

    def _refuse_queued(self) -> None:
        """From simple-websocket's reader thread: a frame arrived past the queue's bound."""
        try:
            self.send(error_frame(_QUEUE_FULL))
        except Exception:  # the outbox is full or closed: the client is not reading either
            pass

    def _idle_timeout(self) -> None:
        """No frame for WS_IDLE_TIMEOUT_S: close (1000); Codex opens a new connection for its next turn."""
        self.outbox.close(wait_s=self.settings.ws_send_timeout_s)
        try:
            self.ws.close(reason=1000, message="idle timeout")
        except Exception:
            pass

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
