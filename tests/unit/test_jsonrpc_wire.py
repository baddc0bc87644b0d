"""The JSON-RPC wire format: how messages are read (gateway.jsonrpc.protocol), how stdio splits
them into lines (gateway.jsonrpc.stdio.read_lines), and that an event notification carries the
event exactly as SSE does."""
from __future__ import annotations

import json
import os
import threading

import pytest

from gateway.jsonrpc.protocol import RpcError, event_notification, read_message, result_message
from gateway.jsonrpc.stdio import read_lines
from gateway.sse import event_json

DELTA = {"type": "response.output_text.delta", "sequence_number": 4, "item_id": "msg_1", "output_index": 0,
         "content_index": 0, "delta": "h\u00e9\"llo\n", "logprobs": []}


@pytest.mark.parametrize("tagged", [False, True])
def test_an_event_notification_carries_the_event_as_sse_does(tagged):
    raw = event_notification('call "1"', DELTA, tagged)
    message = json.loads(raw)
    assert message == {**({"jsonrpc": "2.0"} if tagged else {}), "method": "responsesApi/event",
                       "params": {"callId": 'call "1"', "event": DELTA}}
    assert event_json(DELTA) in raw and "\n" not in raw


def test_messages_are_read_with_or_without_the_jsonrpc_member():
    plain = read_message('{"id": 3, "method": "initialize"}')
    tagged = read_message(b'{"jsonrpc": "2.0", "id": "a", "method": "x/y", "params": {"k": 1}}')
    assert (plain.kind, plain.id, plain.tagged) == ("request", 3, False)
    assert (tagged.kind, tagged.id, tagged.params, tagged.tagged) == ("request", "a", {"k": 1}, True)
    assert read_message('{"method": "initialized"}').kind == "notification"
    assert read_message('{"id": 5, "result": {}}').kind == "response"


def test_an_unusable_message_is_an_error_naming_a_usable_id_only():
    with pytest.raises(RpcError) as caught:
        read_message('{"id": 1.5, "method": "initialize"}')
    assert (caught.value.code, caught.value.id) == (-32600, None)
    with pytest.raises(RpcError) as caught:
        read_message('{"id": 4, "method": "initialize", "jsonrpc": 2}')
    assert (caught.value.code, caught.value.id) == (-32600, 4)
    with pytest.raises(RpcError) as caught:
        read_message('{"id": 1, "method": "x", "p": NaN}')
    assert caught.value.code == -32700


def test_answers_follow_the_hosts_dialect():
    assert json.loads(result_message(1, {"status": 200}, False)) == {"id": 1, "result": {"status": 200}}
    assert json.loads(result_message(1, {}, True))["jsonrpc"] == "2.0"


def lines_through_a_pipe(chunks: list[bytes], max_bytes: int) -> list[bytes | None]:
    read_fd, write_fd = os.pipe()

    def write() -> None:
        for chunk in chunks:
            os.write(write_fd, chunk)
        os.close(write_fd)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        return list(read_lines(read_fd, max_bytes))
    finally:
        writer.join()
        os.close(read_fd)


def test_lines_are_split_across_reads_and_the_last_needs_no_line_break():
    assert lines_through_a_pipe([b'{"a":', b'1}\n{"b"', b":2}\r\n\n", b'{"c":3}'], 100) == \
        [b'{"a":1}', b'{"b":2}\r', b"", b'{"c":3}']


def test_a_line_over_the_limit_is_skipped_without_being_held():
    long_line = b"x" * 200_000
    lines = lines_through_a_pipe([b"short\n", long_line[:70_000], long_line[70_000:] + b"\nafter\n",
                                  b"y" * 150 + b"\n"], 100)
    assert lines == [b"short", None, b"after", None]
