"""`GET /v1/responses` with `Upgrade: websocket`: the Responses API over one WebSocket.

With `WS_ENABLED=0` the handshake is answered with 426 so clients (Codex) fall back to HTTP at once.
"""
from __future__ import annotations

import base64
import binascii

from flask import Blueprint, g, jsonify, request

from gateway.access import AccessRecord
from gateway.api import scope, services
from gateway.errors import APIError
from gateway.extensions import sock
from gateway.ws_session import ResponsesSocket

bp = Blueprint("responses_ws", __name__)
disabled_bp = Blueprint("responses_ws_disabled", __name__)


def valid_websocket_key():
    """RFC 6455 §4.2.1: the key is 16 random bytes in base64; anything else is not a WebSocket client."""
    key = request.headers.get("Sec-WebSocket-Key", "")
    try:
        valid = len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        valid = False
    if request.headers.get("Upgrade", "").lower() == "websocket" and not valid:
        raise APIError(400, "Invalid WebSocket handshake: Sec-WebSocket-Key must be 16 bytes in base64.",
                       code="invalid_websocket_handshake")


bp.before_request(valid_websocket_key)


@sock.route("/v1/responses", bp=bp)
def responses_socket(ws):
    tenant = g.tenant

    def access() -> AccessRecord:
        """Each `response.create` is logged and measured like an HTTP request."""
        return AccessRecord(route="/v1/responses (websocket)", method="WS", request_id=g.access.request_id,
                            tenant=tenant)

    ResponsesSocket(ws, scope().engine, services().settings, access).run()


@disabled_bp.route("/v1/responses", websocket=True)
def websocket_disabled():
    error = APIError(426, "WebSocket mode is disabled on this gateway; use HTTP POST /v1/responses.",
                     code="websocket_disabled")
    response = jsonify(error.to_dict())
    response.status_code = 426
    response.headers["Upgrade"] = "websocket"
    return response
