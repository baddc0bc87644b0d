"""One JSON-RPC connection with an agent host, whatever carries it (stdio or WebSocket).

The transport's reader hands each message to `handle()`, which answers protocol messages at once
and starts each `responsesApi/call` on a thread of its own, so calls run concurrently and the
reader never waits for one. Everything sent goes through one byte-bounded `Outbox` drained by a
writer thread: events of different calls interleave, each call's in order. A host that stops
reading fills it; after `WS_SEND_TIMEOUT_S` its calls are failed and the transport closes the
connection. When the connection closes, `close()` cancels every call in flight (upstream closed,
stored incomplete).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from marshmallow import ValidationError
from werkzeug.datastructures import Headers

from gateway import NAME, __version__
from gateway.access import request_id_from
from gateway.auth import UNAUTHORIZED, bearer_token
from gateway.errors import APIError, server_error
from gateway.jsonrpc.call import HostGone, ResponsesCall
from gateway.jsonrpc.protocol import (
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    Message,
    RpcError,
    error_message,
    event_notification,
    read_message,
    result_message,
)
from gateway.tenants import OPEN_TENANT
from gateway.ws_buffers import Outbox, SendOverflow
from schemas import validation_error_to_api
from schemas.jsonrpc import load_call_params

if TYPE_CHECKING:
    from gateway.services import Services

log = logging.getLogger(__name__)
CALL = "responsesApi/call"
HOST_GONE = APIError(499, "The host closed the connection before the call finished.", type="server_error",
                     code="client_disconnected")
HOST_NOT_READING = server_error(503, "The host stopped reading this connection's messages; the call was ended.",
                                code="client_not_reading")


class RpcSession:
    def __init__(self, services: "Services", outbox: Outbox, *, route: str, tenant: str | None = None,
                 on_broken: Callable[[], None] = lambda: None) -> None:
        self.services, self.outbox, self.route = services, outbox, route
        self.tenant = tenant                  # the connection's own (a WebSocket's handshake key)
        self.on_broken = on_broken            # the transport closes the connection
        self.tagged = False
        self.last_active = time.monotonic()
        self.refusing: APIError | None = None
        self._calls: dict[str, ResponsesCall] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._broken = False

    @property
    def busy(self) -> bool:
        return bool(self._calls)

    # -- inbound ---------------------------------------------------------------------------
    def handle(self, raw: str | bytes) -> None:
        """One message from the host. Raises `HostGone` once nothing can be sent any more."""
        self.last_active = time.monotonic()
        try:
            message = read_message(raw)
        except RpcError as error:
            self.send_error(error.id, error.code, error.message)
            return
        self.tagged = self.tagged or message.tagged
        if message.kind != "request":
            return      # `initialized`, other notifications and stray answers need nothing
        if message.method == "initialize":
            self._send(result_message(message.id, {"serverInfo": {"name": NAME, "version": __version__},
                                                   "userAgent": f"{NAME}/{__version__}"}, self.tagged))
        elif message.method == CALL:
            self._start_call(message)
        else:
            self.send_error(message.id, METHOD_NOT_FOUND, f"Method not found: {message.method}")

    def _start_call(self, message: Message) -> None:
        try:
            params = load_call_params(message.params)
        except ValidationError as exc:
            detail = validation_error_to_api(exc).message
            self.send_error(message.id, INVALID_PARAMS, f"Invalid params: {detail}")
            return
        with self._lock:
            if self._closed:
                return
            refusal = self._refusal(params["call_id"])
            if refusal is None:
                call = ResponsesCall(self, message.id, params)
                self._calls[call.call_id] = call
        if isinstance(refusal, RpcError):
            self.send_error(message.id, refusal.code, refusal.message)
        elif refusal is not None:
            request_id = request_id_from(Headers(params["headers"]).get("x-request-id"))
            self._answer(message.id, refusal.status, request_id, refusal.message)
        else:
            call.start()

    def _refusal(self, call_id: str) -> RpcError | APIError | None:
        if call_id in self._calls:
            return RpcError(INVALID_PARAMS, f"Invalid params: callId {call_id!r} is already in flight on this "
                                            "connection.")
        if self.refusing is not None:
            return self.refusing
        limit = self.services.settings.jsonrpc_max_calls
        if len(self._calls) >= limit:
            return APIError(429, f"Too many calls in flight on this connection (JSONRPC_MAX_CALLS={limit}); "
                                 "retry once one has been answered.", type="rate_limit_error",
                            code="rate_limit_exceeded")
        return None

    def authenticate(self, headers: Any) -> str:
        """The call's tenant: its own `Authorization` when it sends one, else the connection's."""
        keyring = self.services.keyring
        if keyring.open:
            return OPEN_TENANT
        header = headers.get("Authorization")
        if header is None and self.tenant is not None:
            return self.tenant
        tenant = keyring.tenant_for(bearer_token(header or ""))
        if tenant is None:
            raise APIError(401, UNAUTHORIZED, code="invalid_api_key")
        return tenant

    # -- outbound --------------------------------------------------------------------------
    def send_error(self, msg_id: Any, code: int, message: str) -> None:
        self._send(error_message(msg_id, code, message, self.tagged))

    def send_event(self, call_id: str, event: dict[str, Any]) -> None:
        self._send(event_notification(call_id, event, self.tagged))

    def finished(self, call: ResponsesCall, status: int, error: str | None) -> None:
        """From the call's thread, after its last event: answer it and let it go."""
        try:
            self._answer(call.msg_id, status, call.access.request_id, error)
        except HostGone:
            pass
        finally:
            with self._lock:
                self._calls.pop(call.call_id, None)
            self.last_active = time.monotonic()

    def _answer(self, msg_id: Any, status: int, request_id: str, error: str | None) -> None:
        result: dict[str, Any] = {"status": status, "requestId": request_id}
        if error is not None:
            result["error"] = error
        self._send(result_message(msg_id, result, self.tagged))

    def _send(self, text: str) -> None:
        if self._broken:
            raise HostGone()
        try:
            self.outbox.put(text)
        except SendOverflow as exc:
            self._host_not_reading(exc)
            raise HostGone() from None
        except ConnectionError:
            raise HostGone() from None

    def _host_not_reading(self, exc: Exception) -> None:
        with self._lock:
            if self._broken:
                return
            self._broken = True
            calls = list(self._calls.values())
        log.warning("closing a JSON-RPC connection whose host stopped reading: %s", exc)
        self.outbox.abandon()
        for call in calls:
            call.stop(HOST_NOT_READING, cancel=False)
        self.on_broken()

    # -- ending ----------------------------------------------------------------------------
    def refuse_new_calls(self, error: APIError) -> None:
        """The gateway is stopping: calls that arrive from now on are answered with `error`."""
        self.refusing = error

    def stop_calls(self, error: APIError) -> None:
        """End every call in flight now with `error` (each answered once its stream has ended)."""
        with self._lock:
            calls = list(self._calls.values())
        for call in calls:
            call.stop(error, cancel=False)

    def close(self, wait_s: float = 10.0) -> None:
        """The connection is gone: cancel what is in flight and wait (bounded) for it to be stored."""
        with self._lock:
            self._closed = True
            calls = list(self._calls.values())
        for call in calls:
            call.stop(HOST_GONE, cancel=True)
        deadline = time.monotonic() + wait_s
        for call in calls:
            call.join(max(0.0, deadline - time.monotonic()))

    def wait_idle(self, wait_s: float) -> bool:
        """Wait (bounded) for the calls in flight to be answered; True when none is left."""
        deadline = time.monotonic() + wait_s
        with self._lock:
            calls = list(self._calls.values())
        for call in calls:
            call.join(max(0.0, deadline - time.monotonic()))
        return not self.busy
