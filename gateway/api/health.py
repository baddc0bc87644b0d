"""`/health` (the process is up) and `/ready` (storage answers and the upstream passes its health probe)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from gateway.api import services
from gateway.errors import APIError

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    return jsonify({"status": "ok"})


@bp.get("/ready")
def ready():
    svc = services()
    try:
        svc.check_storage()
    except Exception as exc:
        raise APIError(503, f"Storage is not available: {exc.__class__.__name__}.", type="server_error",
                       code="storage_not_ready") from exc
    if svc.settings.skip_llm_ready_check:
        return jsonify({"status": "ready", "upstream": "not checked"})
    if not svc.upstream.is_healthy():
        raise APIError(503, "The upstream model server is not healthy yet.",
                       type="server_error", code="upstream_not_ready")
    return jsonify({"status": "ready", "upstream": "healthy"})
