"""SSE framing and event JSON. One event → one bytes object, so each event goes out in a single write."""
from __future__ import annotations

import json
from json.encoder import encode_basestring
from typing import Any, Iterable, Iterator

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
SSE_MIMETYPE = "text/event-stream"

# One encoder for every event (json.dumps with options builds a new encoder per call).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_TEXT_DELTA_KEYS = ("type", "sequence_number", "item_id", "output_index", "content_index", "delta", "logprobs")
_TEXT_DELTA = ('{"type":"response.output_text.delta","sequence_number":%d,"item_id":%s,"output_index":%d,'
               '"content_index":%d,"delta":%s,"logprobs":[]}')


def event_json(event: dict[str, Any]) -> str:
    """The event as compact JSON, keys in insertion order (SSE data and WebSocket frames alike).

    A plain text delta — most events of a stream, one per token — is formatted from its fixed
    shape (same bytes as the encoder produces: tests/unit/test_sse.py), which costs a tenth of
    encoding the dict."""
    if event["type"] == "response.output_text.delta" and not event["logprobs"] and tuple(event) == _TEXT_DELTA_KEYS:
        return _TEXT_DELTA % (event["sequence_number"], encode_basestring(event["item_id"]), event["output_index"],
                              event["content_index"], encode_basestring(event["delta"]))
    return _ENCODER.encode(event)


def encode_event(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {event_json(event)}\n\n".encode("utf-8")


def encode_stream(batches: Iterable[list[dict[str, Any]]]) -> Iterator[bytes]:
    """One bytes object, so one write, per batch of events, as soon as it is there: each event goes
    out whole, and the events one upstream chunk produced go out together."""
    for batch in batches:
        yield b"".join(map(encode_event, batch))
