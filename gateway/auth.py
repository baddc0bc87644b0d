"""Inbound authentication: with `GATEWAY_API_KEYS` set, every `/v1/` request (HTTP and the
WebSocket handshake alike) needs `Authorization: Bearer <one of the keys>`."""
from __future__ import annotations

import hmac

from flask import request

from gateway.api import services
from gateway.errors import APIError


def require_api_key() -> None:
    keys = services().settings.api_keys
    if not keys or not request.path.startswith("/v1/"):
        return
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not any(hmac.compare_digest(token.encode(), key.encode()) for key in keys):
        raise APIError(401, "Incorrect or missing API key. Send 'Authorization: Bearer <key>'.",
                       code="invalid_api_key")
