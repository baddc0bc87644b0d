"""JSON-RPC delegation: protocol hygiene, per-connection limits and keys, over both transports
(the simulated host of tests/jsonrpc_host.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from tests.fakes import upstream as fake
from tests.support import ROOT
from tests.integration.test_jsonrpc import MODEL, completed

pytestmark = pytest.mark.integration
CALL = "responsesApi/call"
GOOD = {"callId": "x", "url": "http://gateway.invalid/v1/responses", "body": {"model": MODEL, "input": "hi"}}

# (what the host sends, the JSON-RPC error code it gets, the id the error answers)
MALFORMED = [
    pytest.param("{not json", -32700, None, id="parse-error"),
    pytest.param('{"id": 1, "method": "initialize"', -32700, None, id="truncated"),
    pytest.param("[1, 2]", -32600, None, id="batch"),
    pytest.param('"hello"', -32600, None, id="not-an-object"),
    pytest.param('{"id": 7}', -32600, 7, id="no-method"),
    pytest.param('{"id": 8, "method": 5}', -32600, 8, id="method-not-a-string"),
    pytest.param('{"jsonrpc": "1.0", "id": 9, "method": "initialize"}', -32600, 9, id="wrong-version"),
    pytest.param('{"id": true, "method": "initialize"}', -32600, None, id="id-not-string-or-integer"),
    pytest.param('{"id": 10, "method": "initialize", "params": 3}', -32600, 10, id="params-not-structured"),
    pytest.param('{"id": 11, "method": "no/such/method"}', -32601, 11, id="unknown-method"),
    pytest.param(json.dumps({"id": 12, "method": CALL, "params": {}}), -32602, 12, id="no-call-id"),
    pytest.param(json.dumps({"id": 13, "method": CALL, "params": [1]}), -32602, 13, id="params-array"),
    pytest.param(json.dumps({"id": 14, "method": CALL, "params": {**GOOD, "headers": {"a": 1}}}), -32602, 14,
                 id="header-not-a-string"),
    pytest.param(json.dumps({"id": 15, "method": CALL, "params": {**GOOD, "headers": {"a": "x\r\ny: z"}}}), -32602,
                 15, id="header-injection"),
    pytest.param(json.dumps({"id": 16, "method": CALL, "params": {**GOOD, "stream": "yes"}}), -32602, 16,
                 id="stream-not-a-boolean"),
    pytest.param(json.dumps({"id": 17, "method": CALL, "params": {k: v for k, v in GOOD.items() if k != "body"}}),
                 -32602, 17, id="no-body"),
    pytest.param(json.dumps({"id": 18, "method": CALL, "params": {**GOOD, "callId": ""}}), -32602, 18,
                 id="empty-call-id"),
]


@pytest.mark.parametrize("raw, code, answer_id", MALFORMED)
def test_a_malformed_message_gets_its_error_and_the_connection_survives(rpc_host, upstream, raw, code, answer_id):
    rpc_host.send_raw(raw)
    answer = rpc_host.answer(answer_id)
    assert answer["error"]["code"] == code and answer["error"]["message"], answer
    assert "jsonrpc" not in answer       # the host's dialect: it never sent the member
    upstream.enqueue(fake.text("still here"))
    events, result = rpc_host.run_call("after", GOOD["body"])
    completed(events, result)
    assert not upstream.chat_requests()[:-1], "the malformed message reached the upstream"


def test_notifications_and_stray_answers_get_no_reply(rpc_host):
    rpc_host.send({"method": "initialized"})
    rpc_host.send({"method": "some/unknown/notification", "params": {"x": 1}})
    rpc_host.send({"id": 99, "result": {}})              # an answer to nothing the gateway asked
    answer = rpc_host.answer(rpc_host.request("initialize"))
    assert "result" in answer
    assert set(rpc_host.answers) == {answer["id"]} and not rpc_host.events and not rpc_host.others


def test_the_jsonrpc_member_is_accepted_and_then_sent_back(rpc_host, upstream):
    rpc_host.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
    assert rpc_host.answer(1)["jsonrpc"] == "2.0"
    upstream.enqueue(fake.text("tagged"))
    rpc_host.send({"jsonrpc": "2.0", "id": 2, "method": CALL, "params": {**GOOD, "callId": "tagged"}})
    assert rpc_host.answer(2)["jsonrpc"] == "2.0" and rpc_host.answer(2)["result"]["status"] == 200
    assert all(message.get("jsonrpc") == "2.0" for message in rpc_host.received)


def test_a_call_id_already_in_flight_is_refused(rpc_host, upstream):
    upstream.enqueue(fake.stall_after(2, seconds=2))
    first = rpc_host.call("same", GOOD["body"])
    rpc_host.wait_events("same", 2)
    answer = rpc_host.answer(rpc_host.call("same", GOOD["body"]))
    assert answer["error"]["code"] == -32602 and "already in flight" in answer["error"]["message"]
    assert rpc_host.answer(first, timeout=30)["result"]["status"] == 200


def test_calls_past_the_per_connection_limit_are_answered_429(open_rpc_host, upstream):
    host = open_rpc_host(JSONRPC_MAX_CALLS="2")
    upstream.enqueue(fake.stall_after(2, seconds=2), fake.stall_after(2, seconds=2))
    running = [host.call(f"run-{i}", GOOD["body"]) for i in range(2)]
    host.wait_events("run-0", 2)
    host.wait_events("run-1", 2)
    answer = host.answer(host.call("third", GOOD["body"]))
    assert answer["result"]["status"] == 429 and "JSONRPC_MAX_CALLS" in answer["result"]["error"]
    assert not host.events["third"]
    assert all(host.answer(msg_id, timeout=30)["result"]["status"] == 200 for msg_id in running)


def test_each_call_authenticates_and_acts_as_its_tenant(open_rpc_host, upstream, request):
    host = open_rpc_host(key="key-a", GATEWAY_API_KEYS="key-a,key-b")
    stdio = "stdio" in request.node.callspec.id
    events, result = host.run_call("no-key", GOOD["body"])
    if stdio:       # no handshake: a call without a key of its own is refused
        assert (result["status"], events) == (401, []) and "API key" in result["error"]
    else:           # the handshake's key
        assert result["status"] == 200 and _owner(host, events[0]["response"]["id"]) == "key-a"
    events, result = host.run_call("wrong-key", GOOD["body"], headers={"Authorization": "Bearer nope"})
    assert (result["status"], events) == (401, [])

    upstream.enqueue(fake.text("for b"))
    events, result = host.run_call("as-b", GOOD["body"], headers={"Authorization": "Bearer key-b"})
    b_response = completed(events, result)["id"]
    assert _owner(host, b_response) == "key-b"
    events, result = host.run_call("a-continues-b", {**GOOD["body"], "previous_response_id": b_response},
                                   headers={"Authorization": "Bearer key-a"})
    assert (result["status"], events) == (400, []) and b_response in result["error"]   # as over HTTP


def _owner(host, response_id: str) -> str | None:
    """Which of the two keys reads the stored response (the other gets 404)."""
    readers = [key for key in ("key-a", "key-b") if requests.get(
        f"{host.http_url}/v1/responses/{response_id}", headers={"Authorization": f"Bearer {key}"},
        timeout=10).status_code == 200]
    assert len(readers) <= 1, readers
    return readers[0] if readers else None


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}], ids=["no-key", "wrong-key"])
def test_the_websocket_handshake_needs_a_key(gunicorn_factory, headers):
    server = gunicorn_factory(GATEWAY_API_KEYS="key-a")
    resp = requests.get(f"{server.url}/v1/jsonrpc", timeout=10, headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **headers})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("env, setting", [({"JSONRPC_MAX_CALLS": "0"}, "JSONRPC_MAX_CALLS"),
                                          ({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL")],
                         ids=["max-calls", "database"])
def test_the_stdio_peer_refuses_a_bad_setting_in_one_line_and_writes_nothing_to_stdout(env, setting):
    proc = subprocess.run([sys.executable, "-m", "gateway.jsonrpc"], cwd=ROOT, env={**os.environ, **env},
                          input=b"", capture_output=True, timeout=30)
    lines = [line for line in proc.stderr.decode().splitlines() if line.strip()]
    assert proc.returncode == 2 and proc.stdout == b""
    assert len(lines) == 1 and lines[0].startswith("gateway: cannot start: ") and setting in lines[0], lines
