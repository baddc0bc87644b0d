"""JSON-RPC over a WebSocket (`/v1/jsonrpc`): one message per text frame.

simple-websocket reads frames on its own thread; this loop hands each to the session (which starts
calls on threads of their own), and a writer thread drains the session's outbox to the socket. The
connection closes after `WS_IDLE_TIMEOUT_S` without a message or a call in flight, and, when the
worker stops, once its calls have ended (gunicorn's graceful period ends them).
"""
from __future__ import annotations

import logging
import socket
import time
from typing import Any

from simple_websocket import ConnectionClosed

from gateway.jsonrpc.call import HostGone
from gateway.jsonrpc.protocol import INVALID_REQUEST
from gateway.jsonrpc.session import RpcSession
from gateway.lifecycle import SHUTDOWN, shutting_down
from gateway.metrics import ACTIVE_WEBSOCKETS
from gateway.services import Services
from gateway.ws_buffers import Inbox, Outbox

log = logging.getLogger(__name__)
ROUTE = "/v1/jsonrpc"
_POLL_S = 1.0       # how often the loop looks at the worker's shutdown and the idle clock


class JsonRpcSocket:
    def __init__(self, ws: Any, services: Services, tenant: str) -> None:
        settings = services.settings
        self.ws, self.settings = ws, settings
        self.outbox = Outbox(ws, settings.ws_send_buffer_bytes, settings.ws_send_timeout_s)
        self.session = RpcSession(services, self.outbox, route=ROUTE, tenant=tenant, on_broken=self._drop)
        if isinstance(ws.input_buffer, Inbox):
            # Calls do not wait behind each other here, so frames only queue between two reads; a
            # burst of a host's calls may still outnumber the Responses socket's bound.
            ws.input_buffer.max_frames = max(ws.input_buffer.max_frames, 2 * settings.jsonrpc_max_calls)
            ws.input_buffer.on_refused = self._refuse_queued

    def run(self) -> None:
        ACTIVE_WEBSOCKETS.inc()
        try:
            self._serve()
        except (ConnectionClosed, HostGone, ConnectionError):
            pass
        finally:
            ACTIVE_WEBSOCKETS.dec()
            self.session.close(wait_s=self.settings.ws_send_timeout_s)
            self.outbox.close(wait_s=self.settings.ws_send_timeout_s)

    def _serve(self) -> None:
        while not self.outbox.broken:
            if SHUTDOWN.stopping:
                self.session.refuse_new_calls(shutting_down())
                if not self.session.busy:
                    self._close(1001, "server restarting")
                    return
            data = self.ws.receive(timeout=_POLL_S)
            if data is not None:
                self._handle(data)
            elif self._idle():
                self._close(1000, "idle timeout")
                return

    def _idle(self) -> bool:
        """No message and no call in flight for `WS_IDLE_TIMEOUT_S`."""
        return not self.session.busy and time.monotonic() - self.session.last_active > self.settings.ws_idle_timeout_s

    def _handle(self, data: str | bytes) -> None:
        if SHUTDOWN.stopping:       # also between two looks at the top of the loop
            self.session.refuse_new_calls(shutting_down())
        if len(data) > self.settings.max_request_bytes:
            self.session.send_error(None, INVALID_REQUEST, "Invalid request: the message is larger than "
                                                           "MAX_REQUEST_BYTES.")
            return
        self.session.handle(data)

    def _refuse_queued(self) -> None:
        """From simple-websocket's reader thread: a frame arrived past the queue's bound."""
        try:
            self.session.send_error(None, INVALID_REQUEST, "Invalid request: too many messages are waiting to "
                                                           "be read on this connection; this one was dropped.")
        except Exception:  # the host is not reading either
            pass

    def _close(self, code: int, reason: str) -> None:
        self.outbox.close(wait_s=self.settings.ws_send_timeout_s)
        try:
            self.ws.close(reason=code, message=reason)
        except Exception:  # already gone
            pass

    def _drop(self) -> None:
        """The host stopped reading: shut the socket so blocked writes fail at once."""
        try:
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.ws.connected = False
