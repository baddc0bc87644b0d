"""`ChatStream` over a real socket pair and http.client's real response parser: which events it
reports as arrived together, how it ends the body, and `answer_waiting()` before reading.

urllib3 and requests are stand-ins here, so each case decides exactly which bytes have arrived
when; the integration tests (tests/integration/test_upstream_client.py) use the real stack.
"""
from __future__ import annotations

import http.client
import json
import socket
from types import SimpleNamespace

import pytest

from gateway.errors import APIError
from gateway.arrivals import parse_chunk
from gateway.upstream import ChatStream

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def event(text: str) -> bytes:
    return b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]}).encode() + b"\n\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


END = chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"


class Upstream:
    """The server side of a socket pair; `stream()` opens the client side once the head is sent."""

    def __init__(self) -> None:
        self.client, self.server = socket.socketpair()
        self.client.settimeout(5.0)
        self.released = self.dropped = False

    def send(self, data: bytes) -> None:
        self.server.sendall(data)

    def stream(self) -> ChatStream:
        response = http.client.HTTPResponse(self.client, method="POST")
        response.begin()
        raw = SimpleNamespace(_fp=response, connection=SimpleNamespace(sock=self.client),
                              drain_conn=response.read, release_conn=lambda: setattr(self, "released", True))
        requests_response = SimpleNamespace(raw=raw, headers={},
                                            close=lambda: setattr(self, "dropped", True))
        return ChatStream(requests_response, "http://upstream")


@pytest.fixture
def upstream():
    pair = Upstream()
    yield pair
    pair.client.close()
    pair.server.close()


def texts_and_flags(stream: ChatStream) -> list[tuple[str, bool]]:
    try:
        return [(c["choices"][0]["delta"]["content"], more) for c, more in stream.with_lookahead()]
    finally:
        stream.close()


def test_a_reply_that_arrived_whole_reports_every_event_but_the_end_as_followed(upstream):
    upstream.send(HEAD + b"".join(chunk(event(t)) for t in "abc") + END)
    assert texts_and_flags(upstream.stream()) == [("a", True), ("b", True), ("c", True)]  # [DONE] follows c


def test_events_report_only_what_had_arrived_when_they_were_handed_out(upstream):
    upstream.send(HEAD + chunk(event("a") + event("b")))
    stream = upstream.stream()
    pairs = stream.with_lookahead()
    assert next(pairs)[1] is True
    assert next(pairs)[1] is False  # nothing behind b yet
    upstream.send(chunk(event("c")) + END)
    assert [more for _, more in pairs] == [True]
    stream.close()


def test_the_body_is_read_to_its_end_and_the_connection_released(upstream):
    upstream.send(HEAD + chunk(event("a")) + chunk(b"data: [DONE]\n\n"))
    stream = upstream.stream()
    pairs = stream.with_lookahead()
    next(pairs)
    upstream.send(b"0\r\n\r\n")  # the last chunk comes after [DONE]
    assert list(pairs) == []
    stream.close()
    assert upstream.released and not upstream.dropped
    assert stream._response.raw._fp.isclosed()  # http.client: the reply is complete


def test_a_body_cut_off_after_done_drops_the_connection(upstream):
    upstream.send(HEAD + chunk(event("a")) + chunk(b"data: [DONE]\n\n"))
    stream = upstream.stream()
    upstream.server.close()
    assert [text for text, _ in texts_and_flags(stream)] == ["a"]
    assert upstream.dropped and not upstream.released


def test_a_connection_closed_mid_stream_is_a_502(upstream):
    upstream.send(HEAD + chunk(event("a")) + b"40\r\ndata: {")
    stream = upstream.stream()
    upstream.server.close()
    with pytest.raises(APIError) as raised:
        texts_and_flags(stream)
    assert raised.value.status == 502 and "closed the stream" in raised.value.message
    assert upstream.dropped


def test_broken_chunk_framing_is_a_502_that_says_so(upstream):
    upstream.send(HEAD + b"3\r\nabcX\r\n")
    with pytest.raises(APIError) as raised:
        texts_and_flags(upstream.stream())
    assert raised.value.status == 502 and "malformed chunked body" in raised.value.message


def test_a_stall_is_a_504(upstream):
    upstream.send(HEAD + chunk(event("a")))
    upstream.client.settimeout(0.2)
    stream = upstream.stream()
    with pytest.raises(APIError) as raised:
        texts_and_flags(stream)
    assert raised.value.status == 504


def test_a_content_length_body_is_read_too(upstream):
    body = event("a") + event("b") + b"data: [DONE]\n\n"
    upstream.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    assert texts_and_flags(upstream.stream()) == [("a", True), ("b", True)]
    assert upstream.released


# -- answer_waiting(): before the first read ---------------------------------------------------

def test_an_answer_that_came_with_the_head_is_waiting(upstream):
    upstream.send(HEAD + chunk(event("a")))
    assert upstream.stream().answer_waiting()


def test_half_an_event_is_not_an_answer(upstream):
    upstream.send(HEAD + chunk(event("a"))[:20])
    assert not upstream.stream().answer_waiting()


def test_a_keep_alive_comment_is_not_an_answer(upstream):
    upstream.send(HEAD + chunk(b": keep-alive\n\n"))
    assert not upstream.stream().answer_waiting()


def test_nothing_arrived_answers_at_once_and_leaves_the_socket_blocking(upstream):
    upstream.send(HEAD)
    stream = upstream.stream()
    assert not stream.answer_waiting()
    assert upstream.client.gettimeout() == 5.0
    upstream.send(chunk(event("a")) + END)
    assert texts_and_flags(stream) == [("a", True)]


# -- parse_chunk: json.loads, faster for the common case ------------------------------------------

@pytest.mark.parametrize("text", ['{"a":[1,2.5,"x",null,true]}', ' {"a":1}', '{"a":1}\n', "[1]", '"s"', "12",
                                  '{"a":"\\u00e9\\ud83d\\ude00"}', "NaN"])
def test_parse_chunk_reads_what_json_loads_reads(text):
    assert json.dumps(parse_chunk(text)) == json.dumps(json.loads(text))  # NaN != NaN, its JSON is equal


@pytest.mark.parametrize("text", ["", "{", '{"a":1} x', '{"a":1}{"b":2}', "data: {}", "[DONE]"])
def test_parse_chunk_fails_like_json_loads(text):
    with pytest.raises(json.JSONDecodeError) as ours:
        parse_chunk(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert str(ours.value) == str(theirs.value)
