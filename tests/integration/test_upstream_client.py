"""The upstream client against the loopback fake vLLM: knowing which chunks arrived together."""
from __future__ import annotations

import json
import time

import pytest

from gateway.config import Settings
from gateway.errors import APIError
from gateway.upstream import UpstreamClient
from tests.fakes import upstream as fake
from tests.fakes.tls import self_signed_certificate, server_context

pytestmark = pytest.mark.integration
BODY = json.dumps({"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "stream": True}).encode()


@pytest.fixture
def client(upstream):
    return UpstreamClient(Settings(llm_api_base=upstream.base_url, skip_llm_ready_check=True))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_upstream(certificate):
    with fake.FakeUpstream(tls=server_context(*certificate)) as server:
        yield server


def text_of(chunk):
    """The content delta a chat chunk carries ("" for role, finish and usage chunks)."""
    return (chunk["choices"][0]["delta"].get("content") or "") if chunk.get("choices") else ""


def content_of(stream):
    try:
        return "".join(text_of(c) for c, _ in stream.with_lookahead())
    finally:
        stream.close()


def lookahead(stream):
    try:
        return [(bool(text_of(c)), more) for c, more in stream.with_lookahead()]
    finally:
        stream.close()


def test_paced_chunks_report_nothing_more_arrived(client, upstream):
    upstream.enqueue(fake.text("a b c", pieces=["a ", "b ", "c"], delay_s=0.15))
    pairs = lookahead(client.open_chat_stream(BODY))
    content = [more for has_content, more in pairs if has_content]
    assert content == [False, False, False]


def test_lookahead_keeps_the_connection_reusable(client, upstream):
    for _ in range(3):
        upstream.enqueue(fake.text("x y", pieces=["x ", "y"]))
        assert len(lookahead(client.open_chat_stream(BODY))) >= 2
    assert upstream.connections_accepted == 1


def test_a_keep_alive_comment_is_not_a_next_event(client, upstream):
    script = fake.text("a b c", pieces=["a ", "b ", "c"], delay_s=0.15)
    script.keepalive_comments = True
    upstream.enqueue(script)
    pairs = lookahead(client.open_chat_stream(BODY))
    content = [more for has_content, more in pairs if has_content]
    assert content == [False, False, False]


def test_closing_the_adapter_forgets_its_pools(client, upstream):
    upstream.enqueue(fake.text("x y", pieces=["x ", "y"]))
    assert content_of(client.open_chat_stream(BODY)) == "x y"
    client.adapter.close()
    upstream.enqueue(fake.text("a b", pieces=["a ", "b"]))
    assert content_of(client.open_chat_stream(BODY)) == "a b"
    assert upstream.connections_accepted == 2  # a new pool, so a new connection


def test_a_reply_sent_whole_is_handed_on_as_arrived_together(client, upstream):
    upstream.enqueue(fake.text("a b c d e f", pieces=["a ", "b ", "c ", "d ", "e ", "f"]))
    stream = client.open_chat_stream(BODY)
    assert upstream.wait_for_streams_sent(1)
    content = [more for has_content, more in lookahead(stream) if has_content]
    # Only the cut made by reading the head can fall between two events.
    assert content.count(True) >= 5


def test_nothing_arrived_yet_over_tls_is_no_answer_and_does_not_block(certificate, tls_upstream, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    client = UpstreamClient(Settings(llm_api_base=tls_upstream.base_url, skip_llm_ready_check=True))
    tls_upstream.enqueue(fake.stall_after(0, 0.3, fake.text("a b", pieces=["a ", "b"])))  # head first
    stream = client.open_chat_stream(BODY)
    try:
        started = time.monotonic()
        assert stream.answer_waiting() is False
        assert time.monotonic() - started < 0.2
        assert content_of(stream) == "a b"
    finally:
        stream.close()


def test_a_tls_upstream_streams_with_a_ca_from_the_environment(certificate, tls_upstream, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    client = UpstreamClient(Settings(llm_api_base=tls_upstream.base_url, skip_llm_ready_check=True))
    tls_upstream.enqueue(fake.text("a b c", pieces=["a ", "b ", "c"]))
    stream = client.open_chat_stream(BODY)
    assert tls_upstream.wait_for_streams_sent(1)
    assert stream.answer_waiting() in (True, False)  # TLS: looks without raising or blocking
    pairs = lookahead(stream)
    assert [has_content for has_content, _ in pairs].count(True) == 3
    tls_upstream.enqueue(fake.text("x y", pieces=["x ", "y"], delay_s=0.05))
    assert content_of(client.open_chat_stream(BODY)) == "x y"
    assert tls_upstream.connections_accepted == 1


def test_an_untrusted_tls_upstream_is_a_502_that_names_the_fix(tls_upstream, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    client = UpstreamClient(Settings(llm_api_base=tls_upstream.base_url, skip_llm_ready_check=True))
    with pytest.raises(APIError) as raised:
        client.open_chat_stream(BODY)
    assert raised.value.status == 502
    assert "REQUESTS_CA_BUNDLE" in raised.value.message


class TunnelledSocket:
    """Stands in for urllib3's SSLTransport (TLS inside an HTTPS proxy's tunnel): socket-like, not
    a socket, and it refuses recv flags."""

    def __init__(self, sock):
        self.sock = sock

    def recv(self, size, flags=0):
        if flags:
            raise ValueError("non-zero flags not allowed in calls to recv")
        return self.sock.recv(size)

    def __getattr__(self, name):
        return getattr(self.sock, name)


def test_a_tunnelled_connection_is_never_peeked_and_still_streams(client, upstream):
    upstream.enqueue(fake.text("a b c", pieces=["a ", "b ", "c"]))
    stream = client.open_chat_stream(BODY)
    connection = stream._response.raw.connection
    real = connection.sock
    connection.sock = TunnelledSocket(real)
    assert upstream.wait_for_streams_sent(1)  # a plain socket would have an answer waiting
    try:
        assert not stream.answer_waiting()
        pairs = [(c, more) for c, more in stream.with_lookahead()]
    finally:
        connection.sock = real
        stream.close()
    assert "".join(text_of(c) for c, _ in pairs) == "a b c"
