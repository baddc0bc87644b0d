"""`GET /v1/models`: the upstream's models plus the configured aliases, OpenAI list shape."""
from __future__ import annotations

import time

from flask import Blueprint, jsonify

from gateway.api import services

bp = Blueprint("models", __name__, url_prefix="/v1")


@bp.get("/models")
def list_models():
    svc = services()
    upstream_models = svc.upstream.list_models()
    data = [{"id": m["id"], "object": "model", "created": int(m.get("created") or 0),
             "owned_by": m.get("owned_by") or "upstream"} for m in upstream_models]
    now = int(time.time())
    for alias, target in svc.settings.model_aliases.items():
        data.append({"id": alias, "object": "model", "created": now, "owned_by": "gateway", "root": target})
    return jsonify({"object": "list", "data": data})
