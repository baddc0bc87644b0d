"""How the engine streams a turn: the opening events before the upstream's output is read, then
one event at a time as the upstream produces it, the upstream always closed, nothing built lost."""
from __future__ import annotations

import pytest

from gateway.config import Settings
from gateway.crypto import ReasoningCipher
from gateway.engine import Engine
from gateway.errors import APIError
from tests.unit.helpers import check_events, content_chunk, finish_chunk, role_chunk, usage_chunk


class StubStream:
    """An open upstream stream that records how far the client had read when it was read."""

    def __init__(self, payloads, fail_with: APIError | None = None) -> None:
        self.payloads_, self.fail_with = payloads, fail_with
        self.closed = False
        self.read = 0

    def payloads(self):
        for payload in self.payloads_:
            self.read += 1
            yield payload
        if self.fail_with is not None:
            raise self.fail_with

    def close(self) -> None:
        self.closed = True


class StubClient:
    def __init__(self, stream: StubStream) -> None:
        self.stream = stream
        self.paths: list[str] = []

    def open_stream(self, path, body, headers=None):
        self.paths.append(path)
        return self.stream


def engine_for(stream: StubStream, **settings) -> tuple[Engine, StubClient]:
    client = StubClient(stream)
    engine = Engine(Settings(skip_llm_ready_check=True, **settings), client, repository=None,
                    cipher=ReasoningCipher(ReasoningCipher.generate_key()))
    return engine, client


def chat_turn(*words: str) -> list:
    return [role_chunk(), *[content_chunk(w) for w in words], finish_chunk("stop"), usage_chunk(1, len(words))]


def start(engine: Engine, **body):
    return engine.stream(engine.prepare({"model": "m", "input": "hi", "stream": True, "store": False, **body}))


def test_the_opening_events_leave_before_the_upstream_output_is_read():
    stream = StubStream(chat_turn(" a", " b"))
    events = start(engine_for(stream)[0])
    assert [next(events)["type"], next(events)["type"]] == ["response.created", "response.in_progress"]
    assert stream.read == 0


def test_each_event_leaves_as_soon_as_its_upstream_chunk_is_decoded():
    stream = StubStream(chat_turn(" a", " b", " c"))
    events = start(engine_for(stream)[0])
    seen = []
    for event in events:
        if event["type"] == "response.output_text.delta":
            seen.append((event["delta"], stream.read))
    assert seen == [(" a", 2), (" b", 3), (" c", 4)]  # the role chunk is read first


def test_the_upstream_is_closed_when_the_client_stops_reading():
    stream = StubStream(chat_turn(" a", " b"))
    events = start(engine_for(stream)[0])
    next(events), next(events)
    events.close()
    assert stream.closed


def test_events_built_before_an_upstream_failure_are_still_sent():
    error = APIError(502, "Upstream model server closed the stream unexpectedly.", type="server_error",
                     code="server_error")
    stream = StubStream([role_chunk(), content_chunk(" w0"), content_chunk(" w1")], fail_with=error)
    events = list(start(engine_for(stream)[0]))
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == [" w0", " w1"]
    assert events[-1]["type"] == "response.failed"
    assert check_events(events)["output"][0]["content"][0]["text"] == " w0 w1"
    assert stream.closed


@pytest.mark.parametrize("api, path", [("chat", "/chat/completions"), ("responses", "/responses")])
def test_the_upstream_kind_decides_where_the_request_goes(api, path):
    payloads = chat_turn(" a") if api == "chat" else [
        {"type": "response.output_text.delta", "output_index": 0, "delta": " a", "logprobs": []},
        {"type": "response.completed", "response": {"status": "completed", "usage": None}}]
    engine, client = engine_for(StubStream(payloads), upstream_api=api)
    events = list(engine.stream(engine.prepare({"model": "m", "input": "hi", "tools": [{"type": "custom", "name": "x"}]})))
    assert client.paths == [path]
    assert check_events(events)["output"][0]["content"][0]["text"] == " a"


def test_each_batch_holds_what_one_upstream_chunk_gave():
    engine, _ = engine_for(StubStream(chat_turn(" a", " b")))
    turn = engine.prepare({"model": "m", "input": "hi", "stream": True, "store": False})
    batches = [[event["type"] for event in batch] for batch in engine.stream_batches(turn)]
    assert batches == [["response.created", "response.in_progress"],
                       ["response.output_item.added", "response.content_part.added", "response.output_text.delta"],
                       ["response.output_text.delta"],
                       ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                        "response.completed"]]
