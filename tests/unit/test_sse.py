"""SSE framing: the text-delta fast path must produce exactly what the generic encoder does."""
import json

import pytest

from gateway.sse import _ENCODER, encode_event, encode_stream, event_json


def text_delta(delta: str, **overrides) -> dict:
    event = {"type": "response.output_text.delta", "sequence_number": 7, "item_id": "msg_abc",
             "output_index": 2, "content_index": 0, "delta": delta, "logprobs": []}
    event.update(overrides)
    return event


@pytest.mark.parametrize("delta", ["plain", " leading space", 'quote " and \\ backslash', "line\nbreak\ttab\r",
                                   "ctrl \x00\x01\x1f", "unicode é ☃ 😀 中文", "</script>", "", "\u2028\u2029"])
def test_text_delta_fast_path_matches_the_encoder(delta):
    event = text_delta(delta)
    assert event_json(event) == _ENCODER.encode(event)
    assert json.loads(event_json(event)) == event


def test_text_delta_with_logprobs_takes_the_generic_path():
    event = text_delta("x", logprobs=[{"token": "x", "logprob": -0.1, "bytes": [120], "top_logprobs": []}])
    assert json.loads(event_json(event)) == event


def test_text_delta_with_an_unexpected_key_keeps_that_key():
    event = text_delta("x", obfuscation="abc")
    assert json.loads(event_json(event))["obfuscation"] == "abc"


def test_event_json_keeps_key_order_and_non_ascii():
    event = {"type": "response.created", "sequence_number": 0, "response": {"z": 1, "a": "é"}}
    assert event_json(event) == '{"type":"response.created","sequence_number":0,"response":{"z":1,"a":"é"}}'


def test_encode_event_frames_one_sse_event():
    assert encode_event(text_delta("hi")) == (
        b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":7,'
        b'"item_id":"msg_abc","output_index":2,"content_index":0,"delta":"hi","logprobs":[]}\n\n')


def test_encode_stream_writes_each_batch_as_one_bytes_object_of_whole_events():
    batches = [[text_delta("a"), text_delta("b")], [text_delta("c")]]
    out = list(encode_stream(iter(batches)))
    assert out == [encode_event(batches[0][0]) + encode_event(batches[0][1]), encode_event(batches[1][0])]
