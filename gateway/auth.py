"""Inbound authentication: with API keys configured (`GATEWAY_API_KEYS`, `GATEWAY_API_KEYS_FILE`),
every `/v1/` request (HTTP and the WebSocket handshake alike) needs `Authorization: Bearer <key>`,
and acts as the key's tenant (gateway/tenants.py). Without keys every request is the one open tenant."""
from __future__ import annotations

from flask import g, request

from gateway.api import services
from gateway.errors import APIError
from gateway.tenants import OPEN_TENANT

UNAUTHORIZED = "Incorrect or missing API key. Send 'Authorization: Bearer <key>'."


def bearer_token(header: str) -> str:
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def authenticate() -> None:
    """Sets `g.tenant` for the request, or refuses it with 401."""
    keyring = services().keyring
    if keyring.open:
        g.tenant = OPEN_TENANT
        return
    tenant = keyring.tenant_for(bearer_token(request.headers.get("Authorization", "")))
    if tenant is not None:
        g.tenant = tenant
    elif (request.path.startswith(("/v1/", "/ui/api/"))
          or (request.path == "/metrics" and services().settings.metrics_require_key)):
        raise APIError(401, UNAUTHORIZED, code="invalid_api_key")
