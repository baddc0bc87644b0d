"""`GET /v1/responses` with `Upgrade: websocket`: the Responses API over one WebSocket.

With `WS_ENABLED=0` the handshake is answered with 426 so clients (Codex) fall back to HTTP at once.
"""
from __future__ import annotations

from flask import Blueprint, jsonify

from gateway.api import services
from gateway.errors import APIError
from gateway.extensions import sock
from gateway.ws_session import ResponsesSocket

bp = Blueprint("responses_ws", __name__)
disabled_bp = Blueprint("responses_ws_disabled", __name__)


@sock.route("/v1/responses", bp=bp)
def responses_socket(ws):
    svc = services()
    ResponsesSocket(ws, svc.engine, svc.settings).run()


@disabled_bp.route("/v1/responses", websocket=True)
def websocket_disabled():
    error = APIError(426, "WebSocket mode is disabled on this gateway; use HTTP POST /v1/responses.",
                     code="websocket_disabled")
    response = jsonify(error.to_dict())
    response.status_code = 426
    response.headers["Upgrade"] = "websocket"
    return response
