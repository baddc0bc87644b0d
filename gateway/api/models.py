"""`GET /v1/models`: the upstream's models plus aliases (OpenAI list shape); with
`?client_version=` (Codex's catalog request) the body also carries Codex's `models` entries."""
from __future__ import annotations

import hashlib
import json
import time

from flask import Blueprint, Response, request

from gateway.api import services
from gateway.catalog import codex_catalog

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
    body: dict = {"object": "list", "data": data}
    if "client_version" in request.args:
        body["models"] = codex_catalog(upstream_models, svc.settings.model_aliases, svc.catalog_overrides)
    payload = json.dumps(body, ensure_ascii=False)
    etag = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]
    return Response(payload, mimetype="application/json", headers={"ETag": f'"{etag}"'})
