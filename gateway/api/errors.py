"""Error handlers: every failure, ours or Werkzeug's, in the same OpenAI JSON shape."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from peewee import DatabaseError, InterfaceError
from werkzeug.exceptions import HTTPException
from wsproto.utilities import RemoteProtocolError

from gateway.errors import APIError

log = logging.getLogger(__name__)

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large",
               415: "unsupported_media_type"}


def render(error: APIError):
    response = jsonify(error.to_dict())
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(APIError)
    def _api_error(error: APIError):
        return render(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        status = error.code or 500
        message = error.description or error.name
        if status == 413:
            message = "The request body is too large."
        api_error = APIError(status, message, type="invalid_request_error" if status < 500 else "server_error",
                             code=_HTTP_CODES.get(status))
        response = render(api_error)
        if status == 405 and error.response is None:
            allowed = getattr(error, "valid_methods", None)
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(RemoteProtocolError)
    def _bad_websocket_handshake(error: RemoteProtocolError):
        return render(APIError(400, f"Invalid WebSocket handshake: {error}", code="invalid_websocket_handshake"))

    @app.errorhandler(DatabaseError)
    @app.errorhandler(InterfaceError)
    def _storage_unavailable(error: Exception):
        """The database went away or refused (a restart, a failover): retryable, not the client's fault."""
        log.warning("storage error: %s", error.__class__.__name__)
        return render(APIError(503, "Storage is temporarily unavailable; try again.", type="server_error",
                               code="storage_unavailable"))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unhandled error")
        return render(APIError(500, "The gateway had an internal error.", type="server_error",
                               code="server_error"))
