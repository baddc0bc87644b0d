"""`GET /v1/jsonrpc` with `Upgrade: websocket`: JSON-RPC delegation (`responsesApi/call`) for agent
hosts, one message per frame (gateway/jsonrpc). The handshake is authenticated like every `/v1/`
request; its key is the tenant of calls that send no `Authorization` of their own."""
from __future__ import annotations

from flask import Blueprint, g

from gateway.api import services
from gateway.api.ws import valid_websocket_key
from gateway.extensions import sock
from gateway.jsonrpc.websocket import ROUTE, JsonRpcSocket

bp = Blueprint("jsonrpc", __name__)
bp.before_request(valid_websocket_key)


@sock.route(ROUTE, bp=bp)
def jsonrpc_socket(ws):
    JsonRpcSocket(ws, services(), g.tenant).run()
