"""Start-up as users run it: gunicorn waits for the upstream's /health unless told not to."""
from __future__ import annotations

import time

import pytest
import requests

from tests.support import GunicornGateway

pytestmark = pytest.mark.integration


def answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=0.5).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def waiting_gateway(upstream, tmp_path):
    server = GunicornGateway.for_upstream(upstream.base_url, tmp_path, SKIP_LLM_READY_CHECK="",
                                          LLM_READY_TIMEOUT_S="30")
    yield server
    server.stop()


def test_gateway_serves_only_once_the_upstream_is_healthy(waiting_gateway, upstream):
    upstream.health_status = 503
    waiting_gateway.launch()
    time.sleep(2.5)
    assert not answers(waiting_gateway.url), "the gateway must not serve before the upstream is healthy"
    assert waiting_gateway.proc.poll() is None, "it keeps waiting instead of exiting"
    upstream.health_status = 200
    deadline = time.monotonic() + 20
    while not answers(waiting_gateway.url) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert requests.get(f"{waiting_gateway.url}/ready", timeout=5).status_code == 200


def test_gateway_starts_anyway_after_the_ready_timeout(upstream, tmp_path):
    upstream.health_status = 503
    server = GunicornGateway.for_upstream(upstream.base_url, tmp_path, SKIP_LLM_READY_CHECK="",
                                          LLM_READY_TIMEOUT_S="1")
    try:
        server.start()
        ready = requests.get(f"{server.url}/ready", timeout=5)
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "upstream_not_ready"
    finally:
        server.stop()
