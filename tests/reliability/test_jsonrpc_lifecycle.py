"""JSON-RPC delegation loses nothing either: a host that disconnects mid-call has its calls cancelled
(upstream closed within a second, stored incomplete); a host that stops reading has its calls failed
and its connection closed, with bounded memory; a stopping gateway ends calls with
`response.failed` and still answers them."""
from __future__ import annotations

import json
import signal
import time

import pytest
import requests

from tests.checks import check_stream
from tests.fakes import upstream as fake
from tests.integration.test_jsonrpc import MODEL
from tests.integration.test_websocket import RawSocket
from tests.integration.test_websocket_load import drain
from tests.jsonrpc_host import CALL_URL, StdioHost, WebSocketHost
from tests.reliability.test_lifecycle import slow
from tests.support import wait_for

pytestmark = pytest.mark.integration
STORED = {"model": MODEL, "input": "a long answer", "store": True}


def stored(url: str, response_id: str) -> dict:
    """The stored response once it is no longer in progress."""
    return wait_for(lambda: (r := requests.get(f"{url}/v1/responses/{response_id}", timeout=10).json())
                    and r.get("status") != "in_progress" and r)


def test_a_host_that_disconnects_mid_call_has_it_cancelled(open_rpc_host, upstream):
    host = open_rpc_host()
    upstream.enqueue(slow(pieces=200, delay_s=0.1))
    closed_before = len(upstream.closed_at)
    host.call("leaves", STORED)
    events = host.wait_events("leaves", 4)
    left_at = time.monotonic()
    host.close()
    wait_for(lambda: len(upstream.closed_at) > closed_before, timeout_s=5)
    assert upstream.closed_at[closed_before] - left_at < 1.0, "the upstream was not closed within a second"
    response = stored(host.http_url, events[0]["response"]["id"])
    assert response["status"] == "incomplete" and response["error"] is None


def test_stdio_ends_calls_as_failed_on_sigterm_and_answers_them(gunicorn_gateway, upstream, tmp_path):
    host = StdioHost(gunicorn_gateway.env, tmp_path / "stdio.log")
    host.http_url = gunicorn_gateway.url
    upstream.enqueue(slow(pieces=200))
    msg_id = host.call("stopped", STORED)
    host.wait_events("stopped", 4)
    host.proc.send_signal(signal.SIGTERM)
    result = host.answer(msg_id)["result"]
    events = host.events["stopped"]
    final = check_stream(events)
    assert final["status"] == "failed" and "shutting down" in final["error"]["message"]
    assert result["status"] == 200 and "shutting down" in result["error"]
    assert host.proc.wait(15) == 0
    assert stored(host.http_url, final["id"])["status"] == "failed"


def test_a_stopping_worker_ends_websocket_calls_as_failed_answers_them_and_closes(gunicorn_factory, upstream):
    server = gunicorn_factory(GATEWAY_GRACEFUL_TIMEOUT="4")
    host = WebSocketHost(server.url)
    upstream.enqueue(slow(pieces=200))
    msg_id = host.call("stopped", STORED)
    host.wait_events("stopped", 4)
    server.proc.send_signal(signal.SIGTERM)
    result = host.answer(msg_id, timeout=15)["result"]
    final = check_stream(host.events["stopped"])
    assert final["status"] == "failed" and "shutting down" in final["error"]["message"]
    assert result["status"] == 200 and result["error"]
    wait_for(lambda: host.ended, timeout_s=10)
    assert server.proc.wait(15) == 0 and not host.problems


# A reply far larger than every buffer between the gateway and a host that does not read.
FLOOD = fake.Script(deltas=[{"content": "x" * 65536}] * 256)
LIMITS = {"WS_SEND_BUFFER_BYTES": "65536", "WS_SEND_TIMEOUT_S": "1", "LOG_LEVEL": "INFO"}


def test_a_stdio_host_that_stops_reading_has_its_calls_failed_and_the_process_exits(gunicorn_factory, upstream,
                                                                                     tmp_path):
    server = gunicorn_factory(**LIMITS)
    host = StdioHost({**server.env}, tmp_path / "stdio.log", read=False)
    upstream.enqueue(FLOOD)
    closed_before = len(upstream.closed_at)
    host.call("flood", STORED)
    assert host.proc.wait(20) == 1, "the process did not give up on a host that stopped reading"
    assert "host stopped reading" in host.stderr_text()
    wait_for(lambda: len(upstream.closed_at) > closed_before, timeout_s=5)
    [line] = [json.loads(line) for line in host.stderr_text().splitlines() if '"gateway.access"' in line]
    response = stored(server.url, line["response_id"])
    assert response["status"] == "failed"
    host.proc.stdout.close()


def test_a_websocket_host_that_stops_reading_has_its_calls_failed_and_is_dropped(gunicorn_factory, upstream):
    server = gunicorn_factory(**LIMITS)
    upstream.enqueue(FLOOD)
    closed_before = len(upstream.closed_at)
    raw = RawSocket(server.url, path="/v1/jsonrpc", rcvbuf=4096)
    try:
        assert raw.status == 101
        raw.send_text(json.dumps({"id": 1, "method": "responsesApi/call", "params": {
            "callId": "flood", "url": CALL_URL, "headers": {}, "body": STORED}}))
        created = raw.recv_json()["params"]["event"]
        assert created["type"] == "response.created"
        response = stored(server.url, created["response"]["id"])
        received, ending = drain(raw, 5.0)
    finally:
        raw.close()
    assert response["status"] == "failed" and response["error"]["code"] == "server_error"
    assert ending in ("eof", "reset") and received < 65536 * 256 // 4
    wait_for(lambda: len(upstream.closed_at) > closed_before, timeout_s=5)
    assert "host stopped reading" in server.log_text()


def test_a_websocket_message_over_the_request_limit_is_refused_and_the_connection_stays(make_gateway, upstream):
    host = WebSocketHost(make_gateway(llm_api_base=upstream.base_url, max_request_bytes=4096))
    try:
        host.call("big", {"model": MODEL, "input": "x" * 6000})
        answer = host.answer(None)
        assert answer["error"]["code"] == -32600 and "MAX_REQUEST_BYTES" in answer["error"]["message"]
        upstream.enqueue(fake.text("still here"))
        _, result = host.run_call("small", {"model": MODEL, "input": "small"})
        assert result["status"] == 200 and not host.events["big"]
    finally:
        host.stop()


def test_an_idle_websocket_is_closed_once_no_call_is_in_flight(make_gateway, upstream):
    host = WebSocketHost(make_gateway(llm_api_base=upstream.base_url, ws_idle_timeout_s=1.5))
    try:
        upstream.enqueue(fake.text("slow " * 10, delay_s=0.3))    # a call outlasting the idle timeout
        _, result = host.run_call("long", {"model": MODEL, "input": "hi"})
        assert result["status"] == 200 and not host.ended
        wait_for(lambda: host.ended, timeout_s=10)
    finally:
        host.stop()
