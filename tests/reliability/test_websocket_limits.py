"""A WebSocket client cannot make a worker hold unbounded memory or a thread forever: oversized
frames and frames queued behind a running response are refused with error frames on a connection
that stays open, idle connections are closed, and a malformed handshake is refused."""
from __future__ import annotations

import json
import time

import pytest
import simple_websocket

from tests.fakes import upstream as fake
from tests.integration.test_websocket import MODEL, Socket, handshake

pytestmark = pytest.mark.integration


def test_a_frame_over_the_request_limit_is_refused_and_the_socket_stays_open(make_gateway, upstream):
    url = make_gateway(llm_api_base=upstream.base_url, max_request_bytes=4096)
    upstream.enqueue(fake.text("still here"))
    with Socket(url) as ws:
        ws.send(json.dumps({"type": "response.create", "model": MODEL, "input": "x" * 6000}))
        frame = ws.receive()
        assert (frame["type"], frame["status"], frame["error"]["code"]) == ("error", 413, "request_too_large")
        _, final = ws.completed(input="small", store=False)
    assert final["status"] == "completed"


def test_frames_queued_behind_a_running_response_are_bounded(make_gateway, upstream):
    url = make_gateway(llm_api_base=upstream.base_url, ws_queued_frames=2)
    upstream.enqueue(fake.Script(deltas=[{"content": "slow "}] * 10, delay_s=0.2))
    with Socket(url) as ws:
        ws.send_create(input="long", store=False)
        assert ws.receive()["type"] == "response.created"
        for _ in range(5):
            ws.send(json.dumps({"type": "response.create", "model": MODEL, "input": "queued", "store": False}))
        frames = []
        while len([f for f in frames if f["type"] == "error"]) < 3:
            frames.append(ws.receive())
        refused = [f for f in frames if f["type"] == "error"]
        assert all(f["error"]["code"] == "too_many_queued_frames" for f in refused)


def test_an_idle_websocket_is_closed_after_the_idle_timeout(make_gateway, upstream):
    url = make_gateway(llm_api_base=upstream.base_url, ws_idle_timeout_s=0.5)
    ws = simple_websocket.Client.connect(url.replace("http://", "ws://") + "/v1/responses")
    started = time.monotonic()
    with pytest.raises(simple_websocket.ConnectionClosed) as closed:
        ws.receive(timeout=10)
    assert closed.value.reason == 1000 and time.monotonic() - started < 5


@pytest.mark.parametrize("key", ["not-base64!", "c2hvcnQ=", ""])
def test_an_invalid_websocket_key_is_refused(make_gateway, upstream, key):
    url = make_gateway(llm_api_base=upstream.base_url)
    raw = handshake(url, headers={"Sec-WebSocket-Key": key})
    assert raw.status == 400 and raw.json()["error"]["code"] == "invalid_websocket_handshake"
