"""Application factory: `create_app(settings)`; gunicorn serves `app:create_app()`."""
from __future__ import annotations

import logging

from flask import Flask, request

from gateway.api import conversations, errors, health, models, responses, ws
from gateway.auth import require_api_key
from gateway.config import Settings
from gateway.extensions import sock
from gateway.ids import new_id
from gateway.services import Services


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False
    app.extensions["gateway"] = Services.build(settings)

    app.config["SOCK_SERVER_OPTIONS"] = {"max_message_size": settings.max_request_bytes}
    sock.init_app(app)
    for blueprint in (responses.bp, conversations.bp, models.bp, health.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(ws.bp if settings.ws_enabled else ws.disabled_bp)
    errors.register_error_handlers(app)
    if settings.api_keys:  # without keys there is nothing to check on each request
        app.before_request(require_api_key)

    @app.after_request
    def _echo_request_id(response):
        """Every response carries `x-request-id`: the client's own, or one minted here."""
        response.headers["x-request-id"] = request.headers.get("x-request-id") or new_id("req")
        return response

    return app
