"""How the engine groups events into writes: the first events at once, then one batch per group
of upstream chunks that had already arrived together, and nothing built is ever lost."""
from __future__ import annotations

from gateway.config import Settings
from gateway.crypto import ReasoningCipher
from gateway.engine import _MAX_BATCH, Engine
from gateway.errors import APIError
from tests.unit.helpers import check_events, chunk, content_chunk, role_chunk


class StubStream:
    """An open upstream stream: (chunk, more-already-arrived) pairs, optionally failing at the end."""

    def __init__(self, pairs, fail_with: APIError | None = None) -> None:
        self.pairs, self.fail_with, self.closed = pairs, fail_with, False

    def answer_waiting(self) -> bool:
        """Whether body bytes were already there when the upstream answered."""
        return bool(self.pairs) and self.pairs[0][1]

    def with_lookahead(self):
        yield from self.pairs
        if self.fail_with is not None:
            raise self.fail_with

    def close(self) -> None:
        self.closed = True


class StubUpstream:
    def __init__(self, stream: StubStream) -> None:
        self.stream = stream

    def open_chat_stream(self, body):
        return self.stream


def run(pairs, fail_with=None):
    stream = StubStream(pairs, fail_with)
    engine = Engine(Settings(skip_llm_ready_check=True), StubUpstream(stream), repository=None,
                    cipher=ReasoningCipher(ReasoningCipher.generate_key()))
    turn = engine.prepare({"model": "m", "input": "hi", "stream": True, "store": False})
    batches = list(engine.stream_batches(turn))
    assert stream.closed
    return batches


def words(n: int, more: bool):
    return [(content_chunk(f" w{i}"), more) for i in range(n)]


def finish():
    usage = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "upstream-model",
             "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}}
    return [(chunk({}, finish_reason="stop"), True), (usage, True)]  # [DONE] came with them


def kinds(batch):
    return [event["type"] for event in batch]


def test_chunks_that_arrived_together_leave_in_one_batch_after_the_first_delta():
    batches = run([(role_chunk(), True)] + words(5, True) + finish())
    assert kinds(batches[0]) == ["response.created", "response.in_progress", "response.output_item.added",
                                 "response.content_part.added", "response.output_text.delta"]
    assert len(batches) == 2  # the four other deltas travel with the closing events
    assert kinds(batches[1]).count("response.output_text.delta") == 4
    assert kinds(batches[1])[-1] == "response.completed"
    check_events([e for b in batches for e in b])


def test_response_created_leaves_before_the_model_has_answered():
    batches = run([(role_chunk(), False)] + words(2, False) + finish())
    assert kinds(batches[0]) == ["response.created", "response.in_progress"]
    assert kinds(batches[1])[-1] == "response.output_text.delta"


def test_opening_events_are_not_held_when_the_first_chunk_carries_no_output():
    batches = run([(role_chunk(), True), (role_chunk(), False)] + words(1, False) + finish())
    assert kinds(batches[0]) == ["response.created", "response.in_progress"]


def test_chunks_that_arrived_apart_leave_one_by_one():
    batches = run([(role_chunk(), False)] + words(4, False) + finish())
    delta_batches = [b for b in batches if "response.output_text.delta" in kinds(b)]
    assert len(delta_batches) == 4


def test_a_long_burst_is_split_into_bounded_batches():
    batches = run([(role_chunk(), True)] + words(3 * _MAX_BATCH, True) + finish())
    assert max(len(b) for b in batches) <= _MAX_BATCH + 6
    assert sum(kinds(b).count("response.output_text.delta") for b in batches) == 3 * _MAX_BATCH


def test_events_built_before_an_upstream_failure_are_still_sent():
    error = APIError(502, "Upstream model server closed the stream unexpectedly.", type="server_error",
                     code="server_error")
    batches = run([(role_chunk(), True)] + words(4, True), fail_with=error)
    events = [e for b in batches for e in b]
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == [" w0", " w1", " w2", " w3"]
    assert events[-1]["type"] == "response.failed"
    final = check_events(events)
    assert final["output"][0]["content"][0]["text"] == " w0 w1 w2 w3"
