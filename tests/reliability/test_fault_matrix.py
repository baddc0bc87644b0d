"""The fault matrix: every way the upstream fails, over SSE, JSON, WebSocket and JSON-RPC, under
gunicorn. For each: what the client sees (the terminal event's error code, or the HTTP status: for
JSON, and for a JSON-RPC call the upstream refused before streaming, the answer's), what is
stored (the response, failed with the same code, no longer in progress), and that the gateway
closed its upstream connection (the fake saw it end) where the upstream's answer was cut short; an
upstream error answer is complete, so its connection goes back to the pool for the next request."""
from __future__ import annotations

import socket
import sqlite3
import time

import pytest
import requests

from tests.fakes import upstream as fake
from tests.integration.test_websocket import Socket
from tests.jsonrpc_host import WebSocketHost
from tests.support import GunicornGateway, free_port, post_stream

pytestmark = pytest.mark.integration
MODEL = "fake-model"
BODY = {"model": MODEL, "input": "hi"}

# fault: (script for the fake or None, which gateway, code in the failed response, HTTP status for JSON)
FAULTS = {
    "refused": (None, "refused", "server_error", 502),
    "connect-timeout": (None, "blackhole", "server_error", 504),
    "stall-before-stream": (fake.stall_after(0, seconds=5), "fake", "server_error", 504),
    "stall-during-stream": (fake.stall_after(3, seconds=5), "fake", "server_error", 504),
    "drop": (fake.drop_after(4), "fake", "server_error", 502),
    "5xx": (fake.http_error(503, "engine down"), "fake", "server_error", 502),
    "429": (fake.http_error(429, "busy", headers={"Retry-After": "1"}), "fake", "rate_limit_exceeded", 429),
    "context-overflow": (fake.context_overflow(), "fake", "context_length_exceeded", 400),
    "malformed-chunk": (fake.malformed_after(3), "fake", "server_error", 502),
}
# Faults that happen before the first event: a JSON-RPC call is answered with the status, no events.
REFUSED_BEFORE_STREAMING = ("refused", "connect-timeout", "5xx", "429", "context-overflow")


@pytest.fixture(scope="module")
def blackhole():
    """A loopback listener whose accept queue is full: connecting to it times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    # Linux queues one connection for a backlog of 0: once this one is established (create_connection
    # returns after the handshake), every later SYN is dropped and connecting times out.
    fillers = [socket.create_connection(listener.getsockname(), timeout=5)]
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    for sock in fillers + [listener]:
        sock.close()


@pytest.fixture(scope="module")
def gateways(fake_upstream, blackhole, tmp_path_factory):
    started = {}
    for name, base in (("fake", fake_upstream.base_url), ("refused", f"http://127.0.0.1:{free_port()}"),
                       ("blackhole", blackhole)):
        tmp = tmp_path_factory.mktemp(name)
        started[name] = (GunicornGateway.for_upstream(base, tmp, UPSTREAM_TIMEOUT_S="1,1").start(), tmp)
    yield started
    for server, _ in started.values():
        server.stop()


def stored_rows(tmp) -> list[tuple]:
    with sqlite3.connect(tmp / "gateway.db") as database:
        return database.execute("SELECT id, status, worker, response FROM responses ORDER BY rowid").fetchall()


def run(transport: str, url: str) -> tuple[str | int, str | None]:
    """What the client saw: (the failed response's error code or the HTTP status, the response id)."""
    if transport == "sse":
        resp, events = post_stream(url, BODY)
        assert resp.status_code == 200 and events[-1]["type"] == "response.failed", events[-1]
        assert sum(e["type"] in ("response.completed", "response.failed", "response.incomplete") for e in events) == 1
        return events[-1]["response"]["error"]["code"], events[-1]["response"]["id"]
    if transport == "json":
        return requests.post(f"{url}/v1/responses", json=BODY, timeout=30).status_code, None
    if transport == "jsonrpc":
        host = WebSocketHost(url)
        try:
            events, result = host.run_call("fault", BODY)
        finally:
            host.stop()
        if not events:
            return result["status"], None
        assert events[-1]["type"] == "response.failed" and result["status"] == 200 and result["error"], result
        return events[-1]["response"]["error"]["code"], events[-1]["response"]["id"]
    with Socket(url) as ws:
        events = ws.create(**BODY)
    assert events[-1]["type"] == "response.failed", events[-1]
    return events[-1]["response"]["error"]["code"], events[-1]["response"]["id"]


@pytest.mark.parametrize("transport", ["sse", "json", "websocket", "jsonrpc"])
@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_fault(fault, transport, gateways, upstream):
    script, which, code, status = FAULTS[fault]
    server, tmp = gateways[which]
    if script is not None:
        upstream.enqueue(script)
    closed_before = len(upstream.closed_at)
    before = len(stored_rows(tmp))
    seen, response_id = run(transport, server.url)
    answered_with_status = transport == "json" or (transport == "jsonrpc" and fault in REFUSED_BEFORE_STREAMING)
    assert seen == (status if answered_with_status else code)
    rows = stored_rows(tmp)
    assert len(rows) == before + 1, "exactly the one response was stored"
    rid, row_status, worker, _ = rows[-1]
    assert (row_status, worker) == ("failed", None) and (response_id is None or rid == response_id)
    stored = requests.get(f"{server.url}/v1/responses/{rid}", timeout=10).json()
    assert stored["status"] == "failed" and stored["error"]["code"] == code
    if which == "fake" and fault not in ("5xx", "429", "context-overflow"):
        deadline = time.monotonic() + 5
        while len(upstream.closed_at) <= closed_before:
            assert time.monotonic() < deadline, "the gateway did not close its upstream connection"
            time.sleep(0.02)
