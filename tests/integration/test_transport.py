"""The upstream transport (gateway/transport.py): requests' adapter interface over http.client,
against the loopback fake vLLM and, where a case needs exact control of the connection, a
one-file HTTP server scripted per connection."""
from __future__ import annotations

import gzip
import json
import socket
import threading
import time

import pytest
import requests
from requests.adapters import HTTPAdapter

from gateway.config import Settings
from gateway.errors import APIError
from gateway.transport import HTTPClientAdapter, needs_proxy
from gateway.upstream import UpstreamClient
from tests.fakes import upstream as fake

pytestmark = pytest.mark.integration
BODY = json.dumps({"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "stream": True}).encode()


def client_for(base_url: str, **settings) -> UpstreamClient:
    return UpstreamClient(Settings(llm_api_base=base_url, skip_llm_ready_check=True, **settings))


def content_of(stream) -> str:
    try:
        return "".join((c["choices"][0]["delta"].get("content") or "") if c.get("choices") else ""
                       for c, _ in stream.with_lookahead())
    finally:
        stream.close()


class ScriptedServer:
    """Answers each request with the next scripted reply (raw bytes, or None: read the request and
    never answer), then does what the reply's `after` says: "keep" the connection, or "close" it."""

    def __init__(self, *replies: tuple[bytes | None, str]) -> None:
        self.replies = list(replies)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.closed = threading.Semaphore(0)  # released once per connection the server has closed
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.replies and not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                while self.replies and self._answer(conn):
                    pass
            self.closed.release()

    def _answer(self, conn: socket.socket) -> bool:
        """One request on `conn`; True when the connection stays open for the next."""
        request = b""
        while b"\r\n\r\n" not in request:
            data = conn.recv(65536)
            if not data:
                return False
            request += data
        reply, after = self.replies.pop(0)
        if reply is None:
            self._stop.wait(10)
            return False
        conn.sendall(reply)
        return after == "keep"

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


def sse_reply(text: str, *, extra_headers: str = "") -> bytes:
    events = b"".join(b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": word}}]}).encode()
                      + b"\n\n" for word in text.split(" "))
    events += b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" + extra_headers.encode()
            + b"Content-Length: %d\r\n\r\n" % len(events) + events)


@pytest.fixture
def scripted():
    servers: list[ScriptedServer] = []

    def start(*replies):
        server = ScriptedServer(*replies)
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.close()


def test_streams_share_one_kept_alive_connection(upstream):
    client = client_for(upstream.base_url)
    for first, second in (("a ", "b"), ("c ", "d"), ("e ", "f")):
        upstream.enqueue(fake.text(first + second, pieces=[first, second]))
        assert content_of(client.open_chat_stream(BODY)) == first + second
    assert upstream.connections_accepted == 1
    assert upstream.requests[-1]["headers"]["content-length"] == str(len(BODY))


def test_model_listing_releases_its_connection_for_the_next_call(upstream):
    client = client_for(upstream.base_url)
    models = [m["id"] for m in client.list_models()]
    assert "fake-model" in models
    upstream.enqueue(fake.text("x y", pieces=["x ", "y"]))
    assert content_of(client.open_chat_stream(BODY)) == "x y"
    assert [m["id"] for m in client.list_models()] == models
    assert upstream.connections_accepted == 1


def test_an_error_answer_is_read_whole_and_its_connection_reused(upstream):
    client = client_for(upstream.base_url)
    upstream.enqueue(fake.http_error(429, "busy"))
    with pytest.raises(APIError) as raised:
        client.open_chat_stream(BODY)
    assert raised.value.status == 429
    upstream.enqueue(fake.text("ok"))
    assert content_of(client.open_chat_stream(BODY)) == "ok"
    assert upstream.connections_accepted == 1


def test_a_connection_the_upstream_closed_while_idle_is_replaced_not_failed(scripted):
    server = scripted((sse_reply("one"), "close"), (sse_reply("two"), "keep"))
    client = client_for(server.url)
    assert content_of(client.open_chat_stream(BODY)) == "one"
    assert server.closed.acquire(timeout=5)  # the server has closed the pooled connection meanwhile
    assert content_of(client.open_chat_stream(BODY)) == "two"
    assert server.connections == 2


def test_a_reply_announcing_connection_close_is_not_pooled(scripted):
    server = scripted((sse_reply("one", extra_headers="Connection: close\r\n"), "close"), (sse_reply("two"), "keep"))
    client = client_for(server.url)
    assert content_of(client.open_chat_stream(BODY)) == "one"
    assert content_of(client.open_chat_stream(BODY)) == "two"
    assert server.connections == 2


def test_a_gzip_encoded_stream_is_decoded(scripted):
    events = b'data: {"choices":[{"index":0,"delta":{"content":"zipped"}}]}\n\n' \
             b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    body = gzip.compress(events)
    reply = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n"
             b"Content-Length: %d\r\n\r\n" % len(body) + body)
    server = scripted((reply, "keep"))
    assert content_of(client_for(server.url).open_chat_stream(BODY)) == "zipped"


def test_an_upstream_that_never_answers_is_a_read_timeout(scripted):
    server = scripted((None, "close"))
    client = client_for(server.url, upstream_timeout_s=(2.0, 0.3))
    started = time.monotonic()
    with pytest.raises(APIError) as raised:
        client.open_chat_stream(BODY)
    assert raised.value.status == 504
    assert time.monotonic() - started < 2


def test_a_refused_connection_raises_requests_connection_error():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    adapter = HTTPClientAdapter()
    request = requests.Request("POST", f"http://127.0.0.1:{port}/v1/chat/completions", data=b"{}").prepare()
    with pytest.raises(requests.ConnectionError):
        adapter.send(request, timeout=(1.0, 1.0))


def test_closing_the_adapter_closes_its_idle_connections(upstream):
    client = client_for(upstream.base_url)
    upstream.enqueue(fake.text("x y", pieces=["x ", "y"]))
    assert content_of(client.open_chat_stream(BODY)) == "x y"
    client.adapter.close()
    upstream.enqueue(fake.text("a b", pieces=["a ", "b"]))
    assert content_of(client.open_chat_stream(BODY)) == "a b"
    assert upstream.connections_accepted == 2


def test_a_proxied_upstream_goes_through_the_proxy_with_requests_own_adapter(upstream, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", upstream.base_url)  # the fake answers absolute-form targets too
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = client_for("http://model-server.invalid:8000")
    assert isinstance(client.adapter, HTTPAdapter)
    upstream.enqueue(fake.text("via proxy", pieces=["via ", "proxy"]))
    assert content_of(client.open_chat_stream(BODY)) == "via proxy"
    assert upstream.requests[-1]["target"] == "http://model-server.invalid:8000/v1/chat/completions"
    assert upstream.requests[-1]["headers"]["content-length"] == str(len(BODY))


def test_no_proxy_keeps_the_direct_transport(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = client_for("http://127.0.0.1:8000")
    assert isinstance(client.adapter, HTTPClientAdapter)
    assert needs_proxy("http://10.0.0.1:8000/v1", {"http": "http://proxy:3128"})
    assert not needs_proxy("https://10.0.0.1:8000/v1", {"http": "http://proxy:3128"})


def test_a_ca_bundle_that_will_not_load_is_the_tls_502_naming_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    client = client_for("https://127.0.0.1:9")  # the bundle is loaded before any connection
    with pytest.raises(APIError) as raised:
        client.open_chat_stream(BODY)
    assert raised.value.status == 502
    assert "REQUESTS_CA_BUNDLE" in raised.value.message


def test_a_full_pool_closes_the_connection_it_cannot_keep(upstream):
    adapter = HTTPClientAdapter(pool_maxsize=1)
    request = requests.Request("POST", f"{upstream.base_url}/v1/chat/completions", data=BODY,
                               headers={"Content-Type": "application/json"}).prepare()
    upstream.enqueue(fake.text("one"), fake.text("two"))
    first = adapter.send(request, stream=True, timeout=(5, 5))
    second = adapter.send(request, stream=True, timeout=(5, 5))  # the first is still open
    for response in (first, second):
        assert b"[DONE]" in response.raw.read()
        response.close()
    assert first.raw.connection.sock is not None  # pooled
    assert second.raw.connection.sock is None  # closed, not dropped from the pool unclosed
    upstream.enqueue(fake.text("three"))
    third = adapter.send(request, stream=True, timeout=(5, 5))
    assert third.raw.connection is first.raw.connection
    third.close()
    assert upstream.connections_accepted == 2
