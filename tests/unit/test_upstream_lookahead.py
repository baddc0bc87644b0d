"""`ChatStream.more_arrived()`: which bytes it looks at, on a real socket pair.

The connection's read buffer is a stand-in here, so each case can put exactly the bytes it
needs in front of the socket; the socket is real, so peeking really leaves its bytes in place.
"""
from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest

from gateway import upstream as upstream_module
from gateway.upstream import ChatStream

EVENT = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'


class ReadBuffer:
    """Holds fixed bytes, like urllib3's buffered reader after some reads."""

    def __init__(self, held: bytes) -> None:
        self.held = held

    def peek(self, size: int = 1) -> bytes:
        return self.held


@pytest.fixture
def sockets():
    ours, theirs = socket.socketpair()
    ours.settimeout(5.0)
    yield ours, theirs
    ours.close()
    theirs.close()


@pytest.fixture
def socket_peeks(monkeypatch):
    calls = []
    real = upstream_module._peek_socket
    monkeypatch.setattr(upstream_module, "_peek_socket", lambda sock: calls.append(sock) or real(sock))
    return calls


def stream_over(sock: socket.socket, held: bytes) -> ChatStream:
    raw = SimpleNamespace(_fp=SimpleNamespace(fp=ReadBuffer(held)), connection=SimpleNamespace(sock=sock))
    return ChatStream(SimpleNamespace(raw=raw), "http://upstream")


def test_a_complete_event_in_the_buffer_is_enough(sockets, socket_peeks):
    ours, _ = sockets
    assert stream_over(ours, b"\r\n3a\r\n" + EVENT).more_arrived()
    assert socket_peeks == []


def test_the_tail_of_a_chunk_in_the_buffer_looks_behind_it_into_the_socket(sockets, socket_peeks):
    ours, theirs = sockets
    theirs.sendall(b"3a\r\n" + EVENT)
    assert stream_over(ours, b"\r\n").more_arrived()
    assert ours.recv(100).startswith(b"3a\r\ndata:")  # still there for the next read
    assert ours.gettimeout() == 5.0  # and the socket is blocking again


def test_half_an_event_in_the_buffer_and_nothing_behind_it_is_not_an_event(sockets):
    ours, _ = sockets
    assert not stream_over(ours, b"\r\n3a\r\n" + EVENT[:20]).more_arrived()


def test_a_keep_alive_comment_is_not_an_event(sockets):
    ours, theirs = sockets
    theirs.sendall(b"\r\nd\r\n: keep-alive\n\n")
    assert not stream_over(ours, b"\r\n").more_arrived()


def test_an_empty_buffer_was_already_refilled_from_the_socket_so_it_is_not_peeked_again(sockets, socket_peeks):
    ours, _ = sockets
    assert not stream_over(ours, b"").more_arrived()
    assert socket_peeks == []
