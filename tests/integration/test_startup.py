"""Start-up as users run it: gunicorn waits for the upstream's /health unless told not to."""
from __future__ import annotations

import os
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


def test_an_address_another_server_listens_on_is_refused(upstream, tmp_path):
    first = GunicornGateway.for_upstream(upstream.base_url, tmp_path / "first")
    (tmp_path / "first").mkdir()
    first.start()
    try:
        second = GunicornGateway.for_upstream(upstream.base_url, tmp_path)
        second.port, second.env["GATEWAY_PORT"] = first.port, str(first.port)
        second.launch()
        assert second.proc.wait(30) != 0, "a second gateway must not share a port (SO_REUSEPORT would allow it)"
        assert "cannot listen on" in second.log_text()
    finally:
        first.stop()


def _established_per_worker(port: int) -> list[int]:
    """Established server-side connections on `port`, counted per process holding them (Linux /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # local port, ESTABLISHED
                    inodes.add(fields[9])
    counts = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        held = sum(link.startswith("socket:[") and link[8:-1] in inodes for link in links)
        if held:
            counts[pid] = held
    return sorted(counts.values(), reverse=True)


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="counts connections through Linux /proc")
def test_keep_alive_connections_are_spread_over_the_workers(upstream, tmp_path):
    server = GunicornGateway.for_upstream(upstream.base_url, tmp_path, GATEWAY_WORKERS="4")
    server.start()
    sessions = [requests.Session() for _ in range(16)]
    try:
        for session in sessions:
            assert session.get(f"{server.url}/health", timeout=5).status_code == 200
        per_worker = _established_per_worker(server.port)
        assert sum(per_worker) == 16
        # One shared socket lets one worker take every connection of a burst; per-worker sockets
        # spread them (by hash, so not exactly evenly).
        assert len(per_worker) >= 3 and per_worker[0] <= 10, per_worker
    finally:
        for session in sessions:
            session.close()
        server.stop()


def test_the_log_says_where_the_gateway_listens(upstream, tmp_path):
    server = GunicornGateway.for_upstream(upstream.base_url, tmp_path, LOG_LEVEL="INFO")
    server.start()
    try:
        assert f"Listening at: http://127.0.0.1:{server.port}" in server.log_text()
    finally:
        server.stop()
