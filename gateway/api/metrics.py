"""`GET /metrics`: Prometheus exposition of every worker's metrics (gateway/metrics.py).

Open like `/health` unless `METRICS_REQUIRE_KEY=1` (then any configured API key reads it)."""
from __future__ import annotations

from flask import Blueprint, Response

from gateway import metrics

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def exposition():
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)
