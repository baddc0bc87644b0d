"""The gateway's lifecycle loses nothing: a SIGTERM ends long streams with a terminal event and
stores them; responses of a worker killed with SIGKILL are marked failed, not lost or left in
progress; a non-streaming client that leaves stops the upstream within a second and its response
is stored incomplete."""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import pytest
import requests

from tests.fakes import upstream as fake
from tests.integration.test_websocket import Socket
from tests.support import iter_sse, wait_for

pytestmark = pytest.mark.integration
MODEL = "fake-model"


def slow(pieces: int = 60, delay_s: float = 0.25) -> fake.Script:
    return fake.Script(deltas=[{"content": f"w{i} "} for i in range(pieces)], delay_s=delay_s)



def workers_of(master_pid: int) -> list[int]:
    with open(f"/proc/{master_pid}/task/{master_pid}/children") as children:
        return [int(pid) for pid in children.read().split()]


def stored_response(url: str, response_id: str) -> dict | None:
    """The stored response, or None while no worker answers (one was just killed)."""
    try:
        return requests.get(f"{url}/v1/responses/{response_id}", timeout=10).json()
    except requests.ConnectionError:
        return None


class StreamReader(threading.Thread):
    """Reads one SSE stream to its end in the background, keeping every event and how it ended."""

    def __init__(self, url: str, body: dict) -> None:
        super().__init__(daemon=True)
        self.url, self.body = url, body
        self.events: list[dict] = []
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            resp = requests.post(f"{self.url}/v1/responses", json={**self.body, "stream": True}, stream=True,
                                 timeout=60)
            for event in iter_sse(resp):
                self.events.append(event)
        except Exception as exc:  # the connection dropping is one of the outcomes tests look at
            self.error = exc

    def first_delta(self) -> bool:
        return any(e["type"] == "response.output_text.delta" for e in self.events)


def sigterm_while_streaming(server, upstream, pieces: int) -> StreamReader:
    """Start a slow stream, send SIGTERM once its first delta arrived, and read it to its end."""
    upstream.enqueue(slow(pieces=pieces))
    reader = StreamReader(server.url, {"model": MODEL, "input": "an answer"})
    reader.start()
    wait_for(reader.first_delta)
    server.proc.send_signal(signal.SIGTERM)
    reader.join(15)
    return reader


def test_sigterm_ends_a_long_stream_with_a_terminal_event_and_stores_it(gunicorn_factory, upstream):
    server = gunicorn_factory(GATEWAY_GRACEFUL_TIMEOUT="4")
    reader = sigterm_while_streaming(server, upstream, pieces=200)
    assert not reader.is_alive() and reader.error is None, reader.error
    terminal = reader.events[-1]
    assert terminal["type"] == "response.failed"
    assert terminal["response"]["error"]["code"] == "server_error"
    assert "shutting down" in terminal["response"]["error"]["message"]
    assert server.proc.wait(15) == 0
    restarted = gunicorn_factory()
    stored = requests.get(f"{restarted.url}/v1/responses/{terminal['response']['id']}", timeout=10).json()
    assert stored["status"] == "failed" and stored["output"][0]["content"][0]["text"].startswith("w0 ")


def test_sigterm_lets_a_stream_that_fits_the_graceful_period_finish(gunicorn_factory, upstream):
    server = gunicorn_factory(GATEWAY_GRACEFUL_TIMEOUT="10")
    reader = sigterm_while_streaming(server, upstream, pieces=8)
    assert reader.events[-1]["type"] == "response.completed"


def test_responses_of_a_killed_worker_are_marked_failed_when_a_worker_starts(gunicorn_factory, upstream):
    server = gunicorn_factory()
    upstream.enqueue(slow(pieces=200))
    reader = StreamReader(server.url, {"model": MODEL, "input": "work"})
    reader.start()
    wait_for(reader.first_delta)
    response_id = reader.events[0]["response"]["id"]
    in_progress = requests.get(f"{server.url}/v1/responses/{response_id}", timeout=10).json()
    assert in_progress["status"] == "in_progress", "a stored response exists from its start"
    (worker,) = workers_of(server.proc.pid)
    os.kill(worker, signal.SIGKILL)
    reader.join(15)
    stored = wait_for(lambda: (r := stored_response(server.url, response_id)) and r["status"] != "in_progress" and r)
    assert stored["status"] == "failed"
    assert stored["error"] == {"code": "server_error", "message": stored["error"]["message"]}
    assert "stopped before it finished" in stored["error"]["message"]


def test_a_non_streaming_client_that_leaves_stops_the_upstream_within_a_second(gunicorn_factory, upstream):
    server = gunicorn_factory(LOG_LEVEL="INFO")
    upstream.enqueue(slow(pieces=200, delay_s=0.1))
    closed_before = len(upstream.closed_at)
    body = json.dumps({"model": MODEL, "input": "q"}).encode()
    client = socket.create_connection(("127.0.0.1", server.port))
    client.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    wait_for(lambda: upstream.chat_requests())    # the upstream is streaming the answer
    left_at = time.monotonic()
    client.close()
    wait_for(lambda: len(upstream.closed_at) > closed_before, timeout_s=5)
    assert upstream.closed_at[closed_before] - left_at < 1.0
    response_id = wait_for(lambda: next((line for line in server.log_text().splitlines()
                                         if '"gateway.access"' in line and '"status": 499' in line), None))
    stored_id = json.loads(response_id)["response_id"]
    stored = requests.get(f"{server.url}/v1/responses/{stored_id}", timeout=10).json()
    assert stored["status"] == "incomplete" and stored["error"] is None
    assert all(item["status"] == "incomplete" for item in stored["output"])


def test_sigterm_closes_websockets_with_an_error_frame_once_their_response_ended(gunicorn_factory, upstream):
    server = gunicorn_factory(GATEWAY_GRACEFUL_TIMEOUT="4")
    upstream.enqueue(slow(pieces=200))
    with Socket(server.url) as idle, Socket(server.url) as busy:
        busy.send_create(model=MODEL, input="long", store=True)
        first = busy.receive()
        wait_for(lambda: upstream.chat_requests())
        server.proc.send_signal(signal.SIGTERM)
        assert idle.receive()["error"]["code"] == "server_shutting_down"
        events = [first] + busy.events(timeout=15)
        assert events[-1]["type"] == "response.failed"
        assert busy.receive()["error"]["code"] == "server_shutting_down"
    assert server.proc.wait(15) == 0


def test_sigterm_ends_a_proxied_stream_too(gunicorn_factory, upstream):
    server = gunicorn_factory(GATEWAY_GRACEFUL_TIMEOUT="4", UPSTREAM_API="responses")
    upstream.enqueue(slow(pieces=200))
    reader = StreamReader(server.url, {"model": MODEL, "input": "a long answer", "store": False})
    reader.start()
    wait_for(reader.first_delta)
    server.proc.send_signal(signal.SIGTERM)
    reader.join(15)
    assert not reader.is_alive() and reader.error is None, reader.error
    assert reader.events[-1]["type"] == "response.failed"
    assert "shutting down" in reader.events[-1]["response"]["error"]["message"]


def test_a_proxied_non_streaming_client_that_leaves_stops_the_upstream_within_a_second(gunicorn_factory, upstream):
    server = gunicorn_factory(LOG_LEVEL="INFO", UPSTREAM_API="responses")
    upstream.enqueue(slow(pieces=200, delay_s=0.1))
    body = json.dumps({"model": MODEL, "input": "q", "store": False}).encode()
    client = socket.create_connection(("127.0.0.1", server.port))
    client.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    wait_for(lambda: upstream.responses_requests())
    left_at = time.monotonic()
    client.close()
    # The gateway gives up on the upstream answer (its socket shut down) and logs the request as 499.
    wait_for(lambda: '"status": 499' in server.log_text(), timeout_s=5)
    assert time.monotonic() - left_at < 1.0
