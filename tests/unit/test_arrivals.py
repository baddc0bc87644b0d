"""Reading an upstream body as it arrives: chunked decoding, and counting the events each arrival
completes (gateway/arrivals.py)."""
from __future__ import annotations

import http.client
import io
import time

import pytest
from sseclient import SSEClient

from gateway.arrivals import ArrivalCounter, Dechunker, MalformedChunk, dechunked, plain

EVENT = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'


def chunked(*pieces: bytes, trailer: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n" + trailer + b"\r\n"


class Arrivals:
    """A reader whose every read1 returns the next of the given arrivals (b"" once they run out)."""

    def __init__(self, *arrivals: bytes) -> None:
        self.arrivals = list(arrivals)
        self.reads = 0

    def read1(self, size: int = -1) -> bytes:
        self.reads += 1
        return self.arrivals.pop(0) if self.arrivals else b""


# -- chunked decoding ------------------------------------------------------------------------

def test_a_whole_body_decodes_in_one_feed():
    decoder = Dechunker()
    assert decoder.feed(chunked(b"hello ", b"world")) == b"hello world"
    assert decoder.done


def test_every_split_point_decodes_the_same_bytes():
    body = chunked(b"data: a\n\n", b"data: bb\n\n" * 3, trailer=b"X-Trailer: 1\r\n")
    for cut in range(len(body) + 1):
        decoder = Dechunker()
        data = decoder.feed(body[:cut]) + decoder.feed(body[cut:])
        assert data == b"data: a\n\n" + b"data: bb\n\n" * 3, cut
        assert decoder.done, cut


def test_byte_by_byte_arrival_decodes_the_same_bytes():
    body = chunked(EVENT, EVENT)
    decoder = Dechunker()
    assert b"".join(decoder.feed(body[i:i + 1]) for i in range(len(body))) == EVENT * 2
    assert decoder.done


def test_chunk_extensions_uppercase_hex_and_trailers_are_understood():
    decoder = Dechunker()
    body = b"1A;name=value\r\n" + b"z" * 26 + b"\r\n0\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n"
    assert decoder.feed(body) == b"z" * 26
    assert decoder.done


def test_a_one_letter_trailer_line_is_not_the_end():
    decoder = Dechunker()
    decoder.feed(b"3\r\nabc\r\n0\r\nX\n")
    assert not decoder.done
    decoder.feed(b"\n")
    assert decoder.done


def test_bare_lf_line_ends_and_blanks_around_the_size_are_tolerated_like_http_client():
    decoder = Dechunker()
    assert decoder.feed(b" 3 ;x\nabc\r\n0\n\n") == b"abc"
    assert decoder.done


def test_the_decoder_stops_at_the_end_of_the_body():
    decoder = Dechunker()
    assert decoder.feed(chunked(b"last") + b"HTTP/1.1 200 OK\r\n") == b"last"
    assert decoder.done


def test_the_body_is_not_done_before_the_empty_line_after_the_last_chunk():
    decoder = Dechunker()
    decoder.feed(b"3\r\nabc\r\n0\r\n")
    assert not decoder.done
    decoder.feed(b"\r\n")
    assert decoder.done


@pytest.mark.parametrize("body", [b"zz\r\nab\r\n", b"-1\r\n", b"0x3\r\nabc\r\n", b"\r\n", b"1 2\r\n"])
def test_an_invalid_chunk_size_is_malformed(body):
    with pytest.raises(MalformedChunk):
        Dechunker().feed(body)


def test_chunk_data_without_its_crlf_is_malformed():
    with pytest.raises(MalformedChunk, match="CRLF"):
        Dechunker().feed(b"3\r\nabcX\r\n0\r\n\r\n")


def test_an_endless_size_line_is_malformed():
    decoder = Dechunker()
    with pytest.raises(MalformedChunk, match="too long"):
        for _ in range(3):
            decoder.feed(b"f" * 40000)


def test_malformed_is_an_http_error():
    assert issubclass(MalformedChunk, http.client.HTTPException)


def test_dechunked_yields_one_piece_per_read_that_completed_data():
    reader = Arrivals(b"5\r\nhel", b"lo\r\n", b"1\r\n", b"!\r\n0\r\n\r\n")
    assert list(dechunked(reader)) == [b"hel", b"lo", b"!"]
    assert reader.reads == 4


def test_dechunked_does_not_read_past_the_end_of_the_body():
    reader = Arrivals(chunked(b"all"), b"never read")
    assert list(dechunked(reader)) == [b"all"]
    assert reader.reads == 1


def test_a_connection_closed_mid_body_is_an_incomplete_read():
    with pytest.raises(http.client.IncompleteRead):
        list(dechunked(Arrivals(b"5\r\nhel")))


def test_plain_reads_until_the_end():
    assert list(plain(io.BufferedReader(io.BytesIO(b"abc")))) == [b"abc"]


# -- counting the events each arrival completes ----------------------------------------------

def flags(*arrivals: bytes) -> list[tuple[str, bool]]:
    """(data, more) for each event sseclient hands out when the body arrives in these pieces."""
    counter = ArrivalCounter()
    out = []
    for event in SSEClient(counter.track(arrivals)).events():
        counter.took_one()
        out.append((event.data, counter.more))
    return out


def test_events_that_arrived_together_report_more_until_the_last():
    assert flags(b"data: a\n\ndata: b\n\ndata: c\n\n") == [("a", True), ("b", True), ("c", False)]


def test_an_event_completed_by_the_next_arrival_is_not_waiting_before_it_comes():
    assert flags(b"data: a\n\ndata: b", b"\n\ndata: c\n\n") == [("a", False), ("b", True), ("c", False)]


def test_a_blank_line_split_across_arrivals_is_counted_once_it_completes():
    assert flags(b"data: a\n", b"\ndata: b\n\n") == [("a", True), ("b", False)]


def test_comments_are_not_events():
    assert flags(b"data: a\n\n: keep-alive\n\n") == [("a", False)]
    assert flags(b": ping\n\ndata: a\n\n") == [("a", False)]


def test_crlf_streams_are_counted():
    assert flags(b"data: a\r\n\r\ndata: b\r\n\r\n") == [("a", True), ("b", False)]


def test_multi_line_events_count_once():
    assert flags(b"event: x\ndata: a\ndata: b\n\ndata: c\n\n") == [("a\nb", True), ("c", False)]


def test_mixed_line_endings_hand_each_event_on_alone():
    assert flags(b"data: a\n\ndata: b\r\n\r\ndata: c\n\n") == [("a", False), ("b", False), ("c", False)]


def test_nothing_is_waiting_before_anything_arrived():
    assert not ArrivalCounter().more


def test_a_huge_event_is_not_counted_so_nothing_is_ever_held_for_it():
    huge = b"data: " + b"x" * 300_000 + b"\n\n"
    pieces = [huge[i:i + 4096] for i in range(0, len(huge), 4096)]
    pieces[-1] += b"data: a\n\n"
    pieces.append(b"data: b\n\ndata: c\n\n")
    # The uncounted huge event uses up the count of `a`, which came with its end: both are handed
    # on at once (an undercount only costs a write, never holds an event back). The next arrival
    # is counted exactly again.
    assert [(len(data), more) for data, more in flags(*pieces)] == [(300_000, False), (1, False), (1, True), (1, False)]


def test_a_huge_event_costs_linear_time():
    huge = b"data: " + b"x" * 4_000_000 + b"\n\n"
    counter = ArrivalCounter()
    started = time.perf_counter()
    for _ in counter.track(huge[i:i + 4096] for i in range(0, len(huge), 4096)):
        pass
    assert time.perf_counter() - started < 1.0  # quadratic re-splitting took minutes
