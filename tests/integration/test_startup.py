"""Start-up as users run it: listening at once, ready once the upstream is, a summary line, and a
bad setting stopping start-up with one line and exit code 2."""
from __future__ import annotations

import os
import signal

import pytest
import requests

from tests.support import GunicornGateway, wait_for

pytestmark = pytest.mark.integration


def answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=0.5).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def waiting_gateway(upstream, tmp_path):
    server = GunicornGateway.for_upstream(upstream.base_url, tmp_path, SKIP_LLM_READY_CHECK="",
                                          LLM_READY_TIMEOUT_S="30", LOG_LEVEL="INFO")
    yield server
    server.stop()



def test_gateway_listens_at_once_and_is_ready_once_the_upstream_is(waiting_gateway, upstream):
    upstream.health_status = 503
    waiting_gateway.launch()
    wait_for(lambda: answers(waiting_gateway.url))
    ready = requests.get(f"{waiting_gateway.url}/ready", timeout=5)
    assert ready.status_code == 503 and ready.json()["error"]["code"] == "upstream_not_ready"
    assert upstream.base_url not in ready.text, "the upstream's internal address is not shown to clients"
    wait_for(lambda: "waiting for upstream" in waiting_gateway.log_text())
    upstream.health_status = 200
    wait_for(lambda: requests.get(f"{waiting_gateway.url}/ready", timeout=5).status_code == 200)
    wait_for(lambda: "gateway ready: upstream" in waiting_gateway.log_text())
    summary = next(line for line in waiting_gateway.log_text().splitlines() if "gateway ready: upstream" in line)
    for part in ("(chat API, healthy)", "database sqlite:///", "tenants open (no API keys)", "1 workers x 512 threads"):
        assert part in summary, (part, summary)


def test_an_open_gateway_says_so_in_one_line(waiting_gateway, upstream):
    waiting_gateway.start()
    wait_for(lambda: "no API keys configured" in waiting_gateway.log_text())
    assert waiting_gateway.log_text().count("no API keys configured") == 1


def test_gateway_gives_up_waiting_after_the_ready_timeout(upstream, tmp_path):
    upstream.health_status = 503
    server = GunicornGateway.for_upstream(upstream.base_url, tmp_path, SKIP_LLM_READY_CHECK="",
                                          LLM_READY_TIMEOUT_S="1")
    try:
        server.start()
        wait_for(lambda: "did not answer within LLM_READY_TIMEOUT_S" in server.log_text())
        ready = requests.get(f"{server.url}/ready", timeout=5)
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "upstream_not_ready"
    finally:
        server.stop()


BAD_SETTINGS = {
    "aliases": ({"MODEL_ALIASES": "fast"}, "MODEL_ALIASES"),
    "port-text": ({"GATEWAY_PORT": "http"}, "GATEWAY_PORT"),
    "port-range": ({"GATEWAY_PORT": "70000"}, "GATEWAY_PORT"),
    "database-down": ({"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}, "DATABASE_URL"),
    "database-scheme": ({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL"),
    "keys-file": ({"GATEWAY_API_KEYS_FILE": "/nonexistent/keys"}, "GATEWAY_API_KEYS_FILE"),
    "timeouts": ({"UPSTREAM_TIMEOUT_S": "soon"}, "UPSTREAM_TIMEOUT_S"),
}


@pytest.mark.parametrize("env, setting", BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_a_bad_setting_stops_start_up_with_one_line_and_exit_code_2(upstream, tmp_path, env, setting):
    server = GunicornGateway.for_upstream(upstream.base_url, tmp_path, LOG_LEVEL="WARNING", **env)
    server.launch()
    assert server.proc.wait(30) == 2
    output = [line for line in server.log_text().splitlines() if line.strip()]
    assert len(output) == 1 and output[0].startswith("gateway: cannot start: ") and setting in output[0], output


def test_ctrl_c_stops_the_gateway_quietly(upstream, tmp_path):
    server = GunicornGateway.for_upstream(upstream.base_url, tmp_path, LOG_LEVEL="WARNING").start()
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(30) == 0
    assert "Traceback" not in server.log_text() and "KeyboardInterrupt" not in server.log_text()


def test_an_address_another_server_listens_on_is_refused(upstream, tmp_path):
    first = GunicornGateway.for_upstream(upstream.base_url, tmp_path / "first")
    (tmp_path / "first").mkdir()
    first.start()
    try:
        second = GunicornGateway.for_upstream(upstream.base_url, tmp_path)
        second.port, second.env["GATEWAY_PORT"] = first.port, str(first.port)
        second.launch()
        assert second.proc.wait(30) == 2, "a second gateway must not share a port (SO_REUSEPORT would allow it)"
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
