"""Reading an upstream SSE body as it arrives, and knowing which events arrived together.

The engine answers upstream chunks that arrived together with one write instead of one each, so
the reader must tell, for every event, whether the next one is already here. http.client reads a
chunked body one HTTP chunk at a time and cannot say what else has arrived; asking the socket
after every chunk cost about a fifth of the upstream client's work. Here the body is read one
arrival at a time instead (each read of the connection takes everything that is there), the
HTTP/1.1 chunked framing is decoded from those bytes, and the SSE events each arrival completes
are counted before sseclient parses them. Also here: spotting a complete event in raw bytes, and
parsing an event's JSON payload.
"""
from __future__ import annotations

import http.client
import json
import re
from typing import Any, Iterable, Iterator, Protocol

READ_SIZE = 65536
_MAX_PARTIAL = 65536  # bytes of an incomplete event kept for counting it (ArrivalCounter)
_MAX_LINE = 65536  # http.client's own limit for a chunk-size or trailer line

# Decoder states besides "n > 0 bytes of chunk data are next".
_CRLF = 0             # the CRLF that ends a chunk's data
_SIZE_LINE_NEXT = -1  # a chunk-size line (with optional extensions)
_TRAILER = -2         # trailer lines, up to the empty line that ends the body


class MalformedChunk(http.client.HTTPException):
    """The upstream's chunked framing is broken."""


class Reader(Protocol):
    def read1(self, size: int = ..., /) -> bytes: ...


_NO_CRLF = "chunk data is not followed by CRLF"
# A chunk-size line: hex digits, optional extensions (skipped), CRLF (a bare LF is accepted, as
# http.client does).
_SIZE_LINE = re.compile(rb"[ \t]*([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r?\n")


class Dechunker:
    """Incremental HTTP/1.1 chunked transfer decoding (RFC 9112 §7.1): `feed` the bytes that
    arrived, get back the body data they complete. Extensions and trailers are skipped."""

    def __init__(self) -> None:
        self.done = False
        self._state = _SIZE_LINE_NEXT
        self._pending = b""  # bytes that do not yet complete a line or a chunk's CRLF

    def feed(self, data: bytes) -> bytes:
        buffer = self._pending + data if self._pending else data
        pos, end, out = 0, len(buffer), []
        while not self.done:
            state = self._state
            if state == _SIZE_LINE_NEXT:
                match = _SIZE_LINE.match(buffer, pos)
                if match is None:
                    self._check_incomplete_line(buffer, pos)
                    break  # the line has not fully arrived
                size, pos = int(match.group(1), 16), match.end()
                if not size:
                    self._state = _TRAILER
                elif pos + size + 2 <= end:  # the whole chunk is here: the common case
                    if buffer[pos + size:pos + size + 2] != b"\r\n":
                        raise MalformedChunk(_NO_CRLF)
                    out.append(buffer[pos:pos + size])
                    pos += size + 2
                else:
                    self._state = size
            elif state > 0:  # the rest of a chunk's data
                piece = buffer[pos:pos + state]
                if not piece:
                    break
                out.append(piece)
                pos += len(piece)
                self._state = state - len(piece)
            elif state == _CRLF:
                if end - pos < 2:
                    break
                if buffer[pos:pos + 2] != b"\r\n":
                    raise MalformedChunk(_NO_CRLF)
                pos += 2
                self._state = _SIZE_LINE_NEXT
            else:  # _TRAILER
                line_end = self._line_end(buffer, pos)
                if line_end < 0:
                    break
                self.done = buffer[pos:line_end + 1] in (b"\r\n", b"\n")
                pos = line_end + 1
        self._pending = buffer[pos:]
        return b"".join(out)

    def _check_incomplete_line(self, buffer: bytes, pos: int) -> None:
        """The chunk-size line at `pos` did not parse: fine while it is incomplete, else malformed."""
        line_end = self._line_end(buffer, pos)
        if line_end >= 0:
            raise MalformedChunk(f"invalid chunk-size line {buffer[pos:line_end + 1][:40]!r}")

    @staticmethod
    def _line_end(buffer: bytes, pos: int) -> int:
        """Where the line at `pos` ends (its LF), or -1 while it is incomplete."""
        line_end = buffer.find(b"\n", pos, pos + _MAX_LINE + 1)
        if line_end < 0 and len(buffer) - pos > _MAX_LINE:
            raise MalformedChunk("chunk-size or trailer line too long")
        return line_end


def dechunked(reader: Reader) -> Iterator[bytes]:
    """The data of a chunked body, one piece per read of `reader` that completed some."""
    decoder = Dechunker()
    while not decoder.done:
        data = reader.read1(READ_SIZE)
        if not data:
            raise http.client.IncompleteRead(b"")
        piece = decoder.feed(data)
        if piece:
            yield piece


def plain(reader: Reader) -> Iterator[bytes]:
    """A body without chunked framing, one piece per read."""
    while True:
        data = reader.read1(READ_SIZE)
        if not data:
            return
        yield data


def _complete_events(data: bytes) -> tuple[int, bytes]:
    """How many complete SSE events carrying data `data` holds, and the bytes after the last one.

    Events end with a blank line, as sseclient sees them: `\\n\\n`, or `\\r\\n\\r\\n` in a
    stream that ends every line with CRLF. Any other mix counts as nothing (each event is then
    handed on alone, never held back for one that is not there)."""
    if b"\r" not in data:
        end, field = b"\n\n", b"\ndata:"
    elif data.count(b"\r") == data.count(b"\n") == data.count(b"\r\n"):
        end, field = b"\r\n\r\n", b"\r\ndata:"
    else:
        return 0, b""
    *events, rest = data.split(end)
    return sum(1 for event in events if event.startswith(b"data:") or field in event), rest


class ArrivalCounter:
    """Counts the events of each arrival as it passes to the SSE parser, so that when the parser
    hands an event out, `more` tells whether another one had already arrived behind it.

    The start of an event still arriving is kept to count it once complete, up to
    `_MAX_PARTIAL` bytes. A longer event is not counted, so an event of megabytes arriving in
    many pieces costs linear time, not quadratic; an undercount only makes events leave in more
    writes, it never holds one back."""

    def __init__(self) -> None:
        self._waiting = 0
        self._rest = b""

    def track(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            events, rest = _complete_events(self._rest + piece)
            self._rest = rest if len(rest) <= _MAX_PARTIAL else b""
            self._waiting = max(self._waiting, 0) + events
            yield piece

    def took_one(self) -> None:
        self._waiting -= 1

    @property
    def more(self) -> bool:
        return self._waiting > 0


_EVENT_ENDS = (b"\n\n", b"\r\n\r\n", b"\r\r")  # an SSE event ends with a blank line


def holds_event(data: bytes) -> bool:
    """Whether `data` holds the start of a `data:` field and, after it, the blank line ending it."""
    start = data.find(b"data:")
    return start >= 0 and any(data.find(end, start) >= 0 for end in _EVENT_ENDS)


_scan_once = json.JSONDecoder().scan_once


def parse_chunk(data: str) -> Any:
    """`json.loads(data)`, with the common case (the value alone, no surrounding whitespace) read
    by the decoder's C scanner directly: json.loads wraps it in two Python layers and two regex
    matches, which cost more than parsing a chunk of a few hundred bytes."""
    try:
        value, end = _scan_once(data, 0)
        if end == len(data):
            return value
    except StopIteration:
        pass
    return json.loads(data)  # whitespace around the value, more after it, or the error itself
