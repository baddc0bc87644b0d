"""Application factory: `create_app(settings)`; gunicorn serves `app:create_app()`."""
from __future__ import annotations

from flask import Flask, g, request
from flask.json.provider import DefaultJSONProvider

from gateway.access import AccessRecord, request_id_from
from gateway.api import conversations, errors, health, jsonrpc, metrics, models, responses, ui, ws
from gateway.auth import authenticate
from gateway.config import Settings
from gateway.errors import invalid_request
from gateway.extensions import sock
from gateway.logs import configure_logging
from gateway.services import Services
from gateway.ws_buffers import inbox_reader


def _begin_access() -> None:
    """Open the request's access record before anything can refuse it (401s are logged too)."""
    rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
    g.access = AccessRecord(route=rule, method=request.method,
                            request_id=request_id_from(request.headers.get("x-request-id")))


def _refuse_nul_in_url() -> None:
    """Ids in the path and the query are looked up in the database, which cannot hold U+0000."""
    values = list((request.view_args or {}).values()) + [v for pair in request.args.items(multi=True) for v in pair]
    if any(isinstance(value, str) and "\x00" in value for value in values):
        raise invalid_request("Path and query parameters must not contain U+0000.", code="invalid_value")


def _end_access(response):
    """Every response carries `x-request-id`; the access line is written after its last byte."""
    access: AccessRecord | None = g.get("access")
    if access is None:
        return response
    response.headers["x-request-id"] = access.request_id
    access.tenant = g.get("tenant", "-")
    status = response.status_code
    response.call_on_close(lambda: access.finish(status))
    return response


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level, settings.log_format, settings.log_bodies)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False      # Responses keep their fields in the API's order
    app.extensions["gateway"] = Services.build(settings)

    # A frame up to twice MAX_REQUEST_BYTES is read and refused with an error frame (the connection
    # stays); a bigger one closes it (1009, message too big) before it is all in memory.
    # Frames waiting behind a running response are bounded too (gateway/ws_buffers.py).
    app.config["SOCK_SERVER_OPTIONS"] = {"max_message_size": 2 * settings.max_request_bytes,
                                         "thread_class": inbox_reader(settings.ws_queued_frames,
                                                                      settings.max_request_bytes)}
    sock.init_app(app)
    for blueprint in (responses.bp, conversations.bp, models.bp, health.bp, metrics.bp, jsonrpc.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(ws.bp if settings.ws_enabled else ws.disabled_bp)
    if settings.ui_enabled:
        app.register_blueprint(ui.bp)
    errors.register_error_handlers(app)
    app.before_request(_begin_access)
    app.before_request(authenticate)
    app.before_request(_refuse_nul_in_url)
    app.after_request(_end_access)
    return app
