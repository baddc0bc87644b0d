"""The upstream HTTP client (gateway/upstream/client.py) against the loopback fake vLLM and, where a
case needs exact control of the connection, a small HTTP server scripted per connection."""
from __future__ import annotations

import gzip
import json
import socket
import threading
import time

import pytest

from gateway.config import Settings
from gateway.errors import APIError
from gateway.upstream.client import UpstreamClient, forwardable
from tests.fakes import upstream as fake
from tests.fakes.tls import self_signed_certificate, server_context

pytestmark = pytest.mark.integration
CHAT = json.dumps({"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "stream": True}).encode()
RESPONSES = json.dumps({"model": "fake-model", "input": "hi", "stream": True}).encode()
PATHS = {"chat": ("/chat/completions", CHAT), "responses": ("/responses", RESPONSES)}


def client_for(base_url: str, **settings) -> UpstreamClient:
    return UpstreamClient(Settings(llm_api_base=base_url, skip_llm_ready_check=True, **settings))


def text_of(payload) -> str:
    """The text a chat chunk or a Responses event carries."""
    if payload.get("type") == "response.output_text.delta":
        return payload["delta"]
    return (payload["choices"][0]["delta"].get("content") or "") if payload.get("choices") else ""


def content_of(stream) -> str:
    try:
        return "".join(text_of(p) for p in stream.payloads())
    finally:
        stream.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_upstream(certificate):
    with fake.FakeUpstream(tls=server_context(*certificate)) as server:
        yield server


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


def sse_reply(text: str, *, extra_headers: bytes = b"", encode=lambda body: body) -> bytes:
    events = b"".join(b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": word}}]}).encode()
                      + b"\n\n" for word in text.split(" "))
    body = encode(events + b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" + extra_headers
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


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


@pytest.mark.parametrize("kind", PATHS)
def test_streams_share_one_kept_alive_connection(upstream, kind):
    path, body = PATHS[kind]
    client = client_for(upstream.base_url)
    for first, second in (("a ", "b"), ("c ", "d"), ("e ", "f")):
        upstream.enqueue(fake.text(first + second, pieces=[first, second]))
        assert content_of(client.open_stream(path, body)) == first + second
    assert upstream.connections_accepted == 1


@pytest.mark.parametrize("kind", PATHS)
def test_events_are_handed_on_as_they_arrive(upstream, kind):
    path, body = PATHS[kind]
    first_text = {"chat": 2, "responses": 5}[kind]  # events up to the first text delta
    upstream.enqueue(fake.stall_after(first_text, 10, fake.text("a b c", pieces=["a ", "b ", "c"])))
    stream = client_for(upstream.base_url).open_stream(path, body)
    payloads = stream.payloads()
    try:
        texts = [text_of(next(payloads)) for _ in range(first_text)]  # read while the upstream is stalled
        assert upstream.streams_sent == 0
        assert texts[-1] == "a "
    finally:
        upstream.reset()  # ends the stall
        stream.close()


def test_model_listing_releases_its_connection_for_the_next_call(upstream):
    client = client_for(upstream.base_url)
    models = [m["id"] for m in client.list_models()]
    assert "fake-model" in models
    upstream.enqueue(fake.text("x y", pieces=["x ", "y"]))
    assert content_of(client.open_stream(*PATHS["chat"])) == "x y"
    assert [m["id"] for m in client.list_models()] == models
    assert upstream.connections_accepted == 1


def test_an_error_answer_is_read_whole_and_its_connection_reused(upstream):
    client = client_for(upstream.base_url)
    upstream.enqueue(fake.http_error(429, "busy"))
    with pytest.raises(APIError) as raised:
        client.open_stream(*PATHS["chat"])
    assert raised.value.status == 429
    upstream.enqueue(fake.text("ok"))
    assert content_of(client.open_stream(*PATHS["chat"])) == "ok"
    assert upstream.connections_accepted == 1


def test_a_connection_the_upstream_closed_while_idle_is_replaced_not_failed(scripted):
    server = scripted((sse_reply("one"), "close"), (sse_reply("two"), "keep"))
    client = client_for(server.url)
    assert content_of(client.open_stream(*PATHS["chat"])) == "one"
    assert server.closed.acquire(timeout=5)  # the server has closed the pooled connection meanwhile
    assert content_of(client.open_stream(*PATHS["chat"])) == "two"
    assert server.connections == 2


def test_a_gzip_encoded_stream_is_decoded(scripted):
    server = scripted((sse_reply("zipped", extra_headers=b"Content-Encoding: gzip\r\n", encode=gzip.compress), "keep"))
    assert content_of(client_for(server.url).open_stream(*PATHS["chat"])) == "zipped"


def test_an_upstream_that_never_answers_is_a_504(scripted):
    server = scripted((None, "close"))
    client = client_for(server.url, upstream_timeout_s=(2.0, 0.3))
    started = time.monotonic()
    with pytest.raises(APIError) as raised:
        client.open_stream(*PATHS["chat"])
    assert raised.value.status == 504
    assert time.monotonic() - started < 2


def test_a_stall_inside_the_stream_is_a_504(upstream):
    upstream.enqueue(fake.stall_after(2, 10))
    stream = client_for(upstream.base_url, upstream_timeout_s=(2.0, 0.3)).open_stream(*PATHS["chat"])
    with pytest.raises(APIError) as raised:
        content_of(stream)
    assert raised.value.status == 504


def test_a_dropped_stream_is_a_502(upstream):
    upstream.enqueue(fake.drop_after(3))
    with pytest.raises(APIError) as raised:
        content_of(client_for(upstream.base_url).open_stream(*PATHS["chat"]))
    assert (raised.value.status, raised.value.code) == (502, "server_error")


def test_a_refused_connection_is_a_502():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    with pytest.raises(APIError) as raised:
        client_for(f"http://127.0.0.1:{port}").open_stream(*PATHS["chat"])
    assert raised.value.status == 502
    assert "Could not connect" in raised.value.message


def test_a_proxied_upstream_goes_through_the_proxy(upstream, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", upstream.base_url)  # the fake answers absolute-form targets too
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = client_for("http://model-server.invalid:8000")
    upstream.enqueue(fake.text("via proxy", pieces=["via ", "proxy"]))
    assert content_of(client.open_stream(*PATHS["chat"])) == "via proxy"
    assert upstream.requests[-1]["target"] == "http://model-server.invalid:8000/v1/chat/completions"


def test_no_proxy_is_read_once_at_start_up(upstream, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = client_for(upstream.base_url)
    monkeypatch.setenv("NO_PROXY", "")
    upstream.enqueue(fake.text("direct"))
    assert content_of(client.open_stream(*PATHS["chat"])) == "direct"


def test_a_tls_upstream_streams_with_a_ca_from_the_environment(certificate, tls_upstream, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    client = client_for(tls_upstream.base_url)
    for words in ("a b c", "x y"):
        tls_upstream.enqueue(fake.text(words))
        assert content_of(client.open_stream(*PATHS["chat"])) == words
    assert tls_upstream.connections_accepted == 1


def test_an_untrusted_tls_upstream_is_a_502_that_names_the_fix(tls_upstream, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with pytest.raises(APIError) as raised:
        client_for(tls_upstream.base_url).open_stream(*PATHS["chat"])
    assert raised.value.status == 502
    assert "REQUESTS_CA_BUNDLE" in raised.value.message


def test_a_ca_bundle_that_will_not_load_is_the_tls_502_naming_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(APIError) as raised:
        client_for("https://127.0.0.1:9").open_stream(*PATHS["chat"])
    assert raised.value.status == 502
    assert "REQUESTS_CA_BUNDLE" in raised.value.message


def test_only_end_to_end_client_headers_are_forwarded():
    kept = forwardable({"Authorization": "Bearer client-key", "Connection": "keep-alive", "Host": "gw",
                        "Content-Length": "10", "X-Request-Id": "req-1", "User-Agent": "sdk/1", "TE": "trailers"})
    assert kept == {"X-Request-Id": "req-1", "User-Agent": "sdk/1"}
