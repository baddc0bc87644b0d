"""Prometheus metrics, correct across gunicorn workers.

Under gunicorn every worker is its own process, so the metrics live in prometheus-client's
multiprocess mode: gunicorn.conf.py points `PROMETHEUS_MULTIPROC_DIR` at a fresh directory before
any worker imports this module, each worker writes its values there, and `/metrics` (served by
whichever worker gets the scrape) merges them all. Without that variable (tests that run the app
in-process) the process's own default registry is served.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Any, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# Time to first token spans a few ms (cached prefix, fast model) to minutes (long prefill on a CPU).
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_STORAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)

REQUESTS = Counter("gateway_requests_total", "Requests answered, by route, method and HTTP status.",
                   ["route", "method", "status"])
TIME_TO_FIRST_TOKEN = Histogram("gateway_time_to_first_token_seconds",
                                "From the request to the first output delta of a response.",
                                ["route", "model"], buckets=_LATENCY_BUCKETS)
REQUEST_DURATION = Histogram("gateway_request_duration_seconds",
                             "From the request to its last byte (a stream's terminal event).",
                             ["route", "model"], buckets=_LATENCY_BUCKETS)
UPSTREAM_ERRORS = Counter("gateway_upstream_errors_total", "Upstream failures, by kind.", ["kind"])
ACTIVE_STREAMS = Gauge("gateway_active_streams", "Responses currently streaming (SSE or WebSocket).",
                       multiprocess_mode="livesum")
ACTIVE_WEBSOCKETS = Gauge("gateway_active_websockets", "Open Responses WebSocket connections.",
                          multiprocess_mode="livesum")
STORAGE_SECONDS = Histogram("gateway_storage_seconds", "Time spent in storage, by operation.",
                            ["operation"], buckets=_STORAGE_BUCKETS)
TOKENS = Counter("gateway_tokens_total", "Tokens reported by the upstream, by model and kind "
                 "(input, output, reasoning).", ["model", "kind"])


def render() -> tuple[bytes, str]:
    """The exposition text of every worker's metrics, and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def count_tokens(model: str, usage: dict[str, Any] | None) -> None:
    if not usage:
        return
    reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
    for kind, value in (("input", usage.get("input_tokens")), ("output", usage.get("output_tokens")),
                        ("reasoning", reasoning)):
        if value:
            TOKENS.labels(model=model, kind=kind).inc(value)


@contextmanager
def storage_timer(operation: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        STORAGE_SECONDS.labels(operation=operation).observe(time.perf_counter() - started)


class TimedRepository:
    """The repository with every call timed into `gateway_storage_seconds{operation}` (the method's
    name), so storage cost is visible without each caller remembering to measure it."""

    def __init__(self, repository: Any) -> None:
        self._repository = repository

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._repository, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        def timed(*args: Any, **kwargs: Any) -> Any:
            with storage_timer(name):
                return attribute(*args, **kwargs)

        timed.__name__ = name
        setattr(self, name, timed)  # bound once per repository, not per call
        return timed
