"""One access record per request (per `response.create` on a WebSocket): the access log line and
the request metrics come from it, after the last byte, so a stream's line carries its time to first
token, its duration and its tokens.

The record never holds the API key or any prompt or output text: the tenant's name, ids, counts
and timings only.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from gateway.ids import new_id
from gateway.metrics import REQUEST_DURATION, REQUESTS, TIME_TO_FIRST_TOKEN, count_tokens

log = logging.getLogger("gateway.access")
# A client's x-request-id is echoed and logged, so only a short printable token is taken as is.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")


def request_id_from(header: str | None) -> str:
    """The client's `x-request-id` when it is a sane token, else a fresh one."""
    return header if header and _REQUEST_ID.match(header) else new_id("req")


@dataclass
class AccessRecord:
    route: str
    method: str
    request_id: str
    tenant: str = "-"
    started: float = field(default_factory=time.monotonic)
    turn: Any = None              # the engine's Turn, once the request became a response

    def finish(self, status: int) -> None:
        """Log the access line and record the request's metrics."""
        duration = time.monotonic() - self.started
        fields: dict[str, Any] = {"request_id": self.request_id, "tenant": self.tenant, "route": self.route,
                                  "method": self.method, "status": status, "duration_ms": round(duration * 1000, 1)}
        REQUESTS.labels(route=self.route, method=self.method, status=str(status)).inc()
        if self.turn is not None:
            fields.update(self._turn_fields(duration))
        log.info("access", extra={"fields": fields})

    def _turn_fields(self, duration: float) -> dict[str, Any]:
        turn = self.turn
        response = turn.response or {}
        usage = response.get("usage") or {}
        # The model label is the client's model name only once the upstream accepted it, so a client
        # inventing names cannot grow the metrics without bound.
        model = (response.get("model") if turn.upstream_status == 200 else None) or "unknown"
        REQUEST_DURATION.labels(route=self.route, model=model).observe(duration)
        ttft = None
        if turn.first_delta_at is not None:
            ttft = turn.first_delta_at - self.started
            TIME_TO_FIRST_TOKEN.labels(route=self.route, model=model).observe(ttft)
        count_tokens(model, usage)
        return {"response_id": response.get("id"), "model": response.get("model"),
                "response_status": response.get("status"), "upstream_status": turn.upstream_status,
                "ttft_ms": round(ttft * 1000, 1) if ttft is not None else None,
                "input_tokens": usage.get("input_tokens"), "output_tokens": usage.get("output_tokens"),
                "reasoning_tokens": (usage.get("output_tokens_details") or {}).get("reasoning_tokens")}
