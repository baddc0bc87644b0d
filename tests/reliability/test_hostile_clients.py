"""Careless and hostile clients as gunicorn meets them: what it cannot parse comes back in the
OpenAI JSON shape, a malformed chunked body is a 400, and slow clients cannot hold the workers'
threads: a request must arrive within REQUEST_READ_TIMEOUT_S, and 300 slowloris connections leave
the API answering normally."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests

pytestmark = pytest.mark.integration


def exchange(port: int, raw: bytes, timeout: float = 5.0) -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < content_length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    return int(head.split()[1]), json.loads(body)


def content_length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


BAD_REQUESTS = {
    "request-line": (b"GARBAGE\r\n\r\n", 400),
    "header-too-large": (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    "chunk-size": (b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n", 400),
}


@pytest.mark.parametrize("raw, status", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_what_gunicorn_cannot_parse_gets_the_openai_error_shape(gunicorn_factory, raw, status):
    server = gunicorn_factory()
    got, body = exchange(server.port, raw)
    assert got == status
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_a_request_that_does_not_arrive_in_time_is_cut_off(gunicorn_factory):
    server = gunicorn_factory(REQUEST_READ_TIMEOUT_S="1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed_after = None
        while time.monotonic() - started < 8:
            try:
                sock.sendall(b"X")
                sock.settimeout(0.25)
                if sock.recv(1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except socket.timeout:
                continue
            except OSError:
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None and closed_after < 4, closed_after


class Slowloris(threading.Thread):
    """`count` connections that send a request head one byte every `interval_s`, until stopped."""

    def __init__(self, port: int, count: int, interval_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.port, self.count, self.interval_s = port, count, interval_s
        self.stop = threading.Event()
        self.opened = 0

    def run(self) -> None:
        socks = []
        for _ in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port))
            sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\n")
            socks.append(sock)
            self.opened += 1
        while not self.stop.wait(self.interval_s):
            for sock in socks:
                try:
                    sock.sendall(b"X")
                except OSError:
                    pass
        for sock in socks:
            sock.close()


def test_three_hundred_slowloris_connections_leave_the_api_answering(gunicorn_factory, upstream):
    server = gunicorn_factory(GATEWAY_WORKERS="2")    # the shipped threads and read timeout
    attack = Slowloris(server.port, 300)
    attack.start()
    try:
        deadline = time.monotonic() + 20
        while attack.opened < 300:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        latencies = []
        for index in range(20):
            started = time.monotonic()
            answer = requests.post(f"{server.url}/v1/responses", json={"model": "fake-model", "input": f"q{index}"},
                                   headers={"Connection": "close"}, timeout=10)
            latencies.append(time.monotonic() - started)
            assert answer.status_code == 200, answer.text
        assert sorted(latencies)[len(latencies) // 2] < 0.5, latencies
    finally:
        attack.stop.set()
        attack.join(10)
