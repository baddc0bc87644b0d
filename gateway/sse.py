"""SSE framing. One event → one bytes object, so each event goes out in a single write."""
from __future__ import annotations

import json
from typing import Any, Iterable, Iterator

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
SSE_MIMETYPE = "text/event-stream"


def encode_event(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode("utf-8")


def encode_stream(batches: Iterable[list[dict[str, Any]]]) -> Iterator[bytes]:
    """One bytes object per batch: events that became ready together leave in one write (each
    event whole), and nothing waits for later events."""
    for batch in batches:
        yield b"".join(encode_event(event) for event in batch)
