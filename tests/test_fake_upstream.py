"""Specification of the fake vLLM upstream (tests/fakes/upstream.py).

Every other streaming test trusts this fake, so its wire behaviour is pinned
here with a plain ``requests`` client.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.fakes.upstream import (
    FakeUpstream, context_overflow, drop_after, http_error, length, no_finish, stall_after,
    stream_error, text, tool_calls,
)

ROOT = Path(__file__).resolve().parents[1]
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather",
    "parameters": {"type": "object", "required": ["location", "days", "metric", "extra"],
                   "properties": {"location": {"type": "string"}, "days": {"type": "integer"},
                                  "metric": {"type": "boolean"}, "extra": {"type": "object"}}}}}


@pytest.fixture
def fake():
    with FakeUpstream() as server:
        yield server


def chat(fake, *, stream=True, model="fake-model", messages=None, headers=None, **extra):
    body = {"model": model, "stream": stream,
            "messages": messages or [{"role": "user", "content": "Hello there"}], **extra}
    return requests.post(f"{fake.base_url}/v1/chat/completions", json=body, headers=headers,
                         stream=stream, timeout=5)


def events(resp) -> list:
    """SSE payloads of a streamed response: dicts, and the string "[DONE]"."""
    out = []
    for line in resp.iter_lines():
        if line.startswith(b"data: "):
            data = line[len(b"data: "):].decode()
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def deltas(evs) -> list[dict]:
    return [e["choices"][0]["delta"] for e in evs if isinstance(e, dict) and e.get("choices")]


def joined(evs, key="content") -> str:
    return "".join(d.get(key, "") for d in deltas(evs))


def tool_fragments(evs) -> list[dict]:
    return [tc for d in deltas(evs) for tc in d.get("tool_calls", [])]


def finish_reasons(evs) -> list:
    return [e["choices"][0]["finish_reason"] for e in evs
            if isinstance(e, dict) and e.get("choices") and e["choices"][0]["finish_reason"]]


# --- streaming wire format ---------------------------------------------------


def test_stream_is_chunked_one_event_per_chunk_and_flushed_immediately(fake):
    fake.enqueue(text("Hi", pieces=["Hi"], delay_s=0.3))
    start = time.monotonic()
    resp = chat(fake)
    assert resp.headers["Transfer-Encoding"] == "chunked"
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    chunks, first_at = [], None
    for chunk in resp.iter_content(chunk_size=None):
        first_at = first_at or time.monotonic() - start
        chunks.append(chunk)
    total = time.monotonic() - start
    assert first_at < 0.25 and total >= 0.85  # role chunk arrived long before the end
    assert all(c.startswith(b"data: ") and c.endswith(b"\n\n") and c.count(b"data: ") == 1
               for c in chunks)
    assert chunks[-1] == b"data: [DONE]\n\n"


def test_text_stream_has_vllm_chunk_shape(fake):
    fake.enqueue(text("Hello world"))
    evs = events(chat(fake))
    first = evs[0]
    assert first["id"].startswith("chatcmpl-") and first["object"] == "chat.completion.chunk"
    assert isinstance(first["created"], int) and first["model"] == "fake-model"
    assert first["choices"] == [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                 "logprobs": None, "finish_reason": None}]
    assert len({e["id"] for e in evs[:-1]}) == 1
    assert deltas(evs)[1:4] == [{"content": "Hell"}, {"content": "o wo"}, {"content": "rld"}]
    assert evs[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None,
                                     "finish_reason": "stop"}
    assert evs[-1] == "[DONE]"


def test_reasoning_streams_before_content_in_chosen_field(fake):
    fake.enqueue(text("Answer", reasoning="Let me think"),
                 text("Answer", reasoning="Hmm", reasoning_field="reasoning_content"))
    new, old = events(chat(fake)), events(chat(fake))
    assert joined(new, "reasoning") == "Let me think" and joined(new, "reasoning_content") == ""
    assert list(deltas(new)[1]) == ["reasoning"] and list(deltas(new)[-2]) == ["content"]
    assert joined(old, "reasoning_content") == "Hmm" and joined(old, "reasoning") == ""


def test_tool_call_first_fragment_has_id_and_name_later_only_arguments(fake):
    args = {"location": "Paris", "unit": "celsius"}
    fake.enqueue(tool_calls([{"name": "get_weather", "arguments": args}], arg_piece=8))
    evs = events(chat(fake))
    head, *rest = tool_fragments(evs)
    assert head["index"] == 0 and head["id"].startswith("chatcmpl-tool-")
    assert head["type"] == "function" and head["function"] == {"name": "get_weather",
                                                               "arguments": ""}
    assert rest and all(f.keys() == {"index", "function"} and f["function"].keys() == {"arguments"}
                        for f in rest)
    assert all(len(f["function"]["arguments"]) <= 8 for f in rest)
    assert json.loads("".join(f["function"]["arguments"] for f in rest)) == args
    assert finish_reasons(evs) == ["tool_calls"]


def test_parallel_tool_calls_by_index_sequential_and_interleaved(fake):
    calls = [{"name": "a", "arguments": {"x": "one-long-value"}, "id": "call-a"},
             {"name": "b", "arguments": '{"y": "two-long-value"}'}]
    fake.enqueue(tool_calls(calls), tool_calls(calls, interleave=True))
    for evs, interleaved in ((events(chat(fake)), False), (events(chat(fake)), True)):
        frags = tool_fragments(evs)
        order = [f["index"] for f in frags]
        assert order[:4] == [0, 1, 0, 1] if interleaved else order == sorted(order)
        rebuilt = {i: "".join(f["function"]["arguments"] for f in frags if f["index"] == i)
                   for i in (0, 1)}
        assert json.loads(rebuilt[0]) == {"x": "one-long-value"}
        assert json.loads(rebuilt[1]) == {"y": "two-long-value"}
        assert frags[0]["id"] == "call-a"


def test_usage_chunk_only_with_include_usage(fake):
    fake.enqueue(text("abcdefgh"), text("abcdefgh"))
    without = events(chat(fake))
    with_usage = events(chat(fake, stream_options={"include_usage": True}))
    assert all("usage" not in e for e in without if isinstance(e, dict))
    usage_chunk = with_usage[-2]
    assert usage_chunk["choices"] == [] and with_usage[-3]["choices"][0]["finish_reason"] == "stop"
    # "Hello there" = 11 chars -> 2 prompt tokens; 2 content deltas
    assert usage_chunk["usage"] == {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4,
                                    "prompt_tokens_details": {"cached_tokens": 0}}


def test_usage_override(fake):
    fake.enqueue(text("abc", usage={"prompt_tokens": 100, "completion_tokens": 7}))
    usage = events(chat(fake, stream_options={"include_usage": True}))[-2]["usage"]
    assert usage["prompt_tokens"] == 100 and usage["total_tokens"] == 107


def test_length_and_no_finish(fake):
    fake.enqueue(length("truncated"), no_finish("unfinished"))
    cut, unfinished = events(chat(fake)), events(chat(fake))
    assert finish_reasons(cut) == ["length"] and joined(cut) == "truncated"
    assert finish_reasons(unfinished) == [] and joined(unfinished) == "unfinished"
    assert unfinished[-1] == "[DONE]"


def test_non_streaming_returns_aggregated_completion(fake):
    fake.enqueue(text("Hi there", reasoning="why"),
                 tool_calls([{"name": "f", "arguments": {"a": 1}, "id": "t1"}], content="ok"))
    plain = chat(fake, stream=False).json()
    assert plain["object"] == "chat.completion"
    assert plain["choices"][0]["message"] == {"role": "assistant", "content": "Hi there",
                                              "reasoning": "why", "tool_calls": []}
    assert plain["choices"][0]["finish_reason"] == "stop"
    assert plain["usage"]["completion_tokens"] == 3
    call = chat(fake, stream=False).json()["choices"][0]
    assert call["message"]["tool_calls"] == [
        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]
    assert call["message"]["content"] == "ok" and call["finish_reason"] == "tool_calls"


# --- failures ------------------------------------------------------------------


def test_http_error_nested_shape_with_headers(fake):
    fake.enqueue(http_error(429, "Too many requests", headers={"Retry-After": "3"}))
    resp = chat(fake)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "3"
    assert resp.json() == {"error": {"message": "Too many requests", "type": "RateLimitError",
                                     "param": None, "code": 429}}


def test_http_error_flat_shape_and_default_types(fake):
    fake.enqueue(http_error(503, "overloaded", flat=True), http_error(400, "bad", param="x"),
                 http_error(418, "teapot", err_type="TeapotError"))
    assert chat(fake).json() == {"object": "error", "message": "overloaded",
                                 "type": "InternalServerError", "param": None, "code": 503}
    assert chat(fake).json()["error"] == {"message": "bad", "type": "BadRequestError",
                                          "param": "x", "code": 400}
    assert chat(fake).json()["error"]["type"] == "TeapotError"


def test_context_overflow_messages(fake):
    fake.enqueue(context_overflow(), context_overflow(new_style=False))
    new, old = chat(fake), chat(fake)
    assert new.status_code == old.status_code == 400
    assert new.json()["error"]["message"] == (
        "You passed 40000 input tokens and requested 1000 output tokens. However, the model's "
        "context length is only 32768 tokens, resulting in a maximum input length of 31768 "
        "tokens. Please reduce the length of the input prompt. "
        "(parameter=input_tokens, value=40000)")
    assert new.json()["error"]["param"] == "input_tokens"
    assert new.json()["error"]["type"] == "BadRequestError"
    assert old.json()["error"]["message"] == (
        "This model's maximum context length is 32768 tokens. However, you requested 41000 "
        "tokens (40000 in the messages, 1000 in the completion). Please reduce the length of "
        "the messages or completion.")


def test_drop_after_closes_connection_without_done(fake):
    fake.enqueue(drop_after(3))
    received = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for chunk in chat(fake).iter_content(chunk_size=None):
            received.append(chunk)
    assert len(received) == 3 and b"[DONE]" not in b"".join(received)


def test_stall_after_really_delays_the_rest(fake):
    fake.enqueue(stall_after(2, 0.4, base=text("abcdefgh")))
    stamps = []
    start = time.monotonic()
    for _chunk in chat(fake).iter_content(chunk_size=None):
        stamps.append(time.monotonic() - start)
    assert len(stamps) == 5  # role, 2 content, finish, [DONE]
    assert stamps[2] - stamps[1] >= 0.35 and stamps[1] < 0.2


def test_stop_interrupts_a_stall_quickly():
    server = FakeUpstream().start()
    server.enqueue(stall_after(1, 30))
    resp = chat(server)
    chunks = resp.iter_content(chunk_size=None)
    assert next(chunks).startswith(b"data: ")
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 1
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        list(chunks)
    assert time.monotonic() - start < 2
    server.stop()  # idempotent


def test_stream_error_event_then_done(fake):
    fake.enqueue(stream_error("engine died", after=2))
    evs = events(chat(fake))
    assert len(evs) == 4 and evs[-1] == "[DONE]"
    assert evs[2] == {"error": {"message": "engine died", "type": "InternalServerError",
                                "param": None, "code": 500}}
    assert finish_reasons(evs) == []


# --- auto responder -------------------------------------------------------------


def test_auto_echoes_last_user_message_joining_text_parts(fake):
    messages = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "Hello"},
                                             {"type": "text", "text": "again"}]}]
    evs = events(chat(fake, messages=messages))
    assert joined(evs) == "You said: Hello again" and finish_reasons(evs) == ["stop"]


def test_auto_reasoning_when_reasoning_effort(fake):
    evs = events(chat(fake, reasoning_effort="low"))
    assert joined(evs, "reasoning") == "Thinking about the request."
    assert joined(evs) == "You said: Hello there"


def test_auto_calls_first_tool_with_schema_arguments(fake):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    evs = events(chat(fake, messages=messages, tools=[WEATHER_TOOL, {"type": "function",
                                                                     "function": {"name": "z"}}]))
    head, *rest = tool_fragments(evs)
    assert head["function"]["name"] == "get_weather"
    assert json.loads("".join(f["function"]["arguments"] for f in rest)) == {
        "location": "Paris", "days": 1, "metric": True, "extra": None}
    assert finish_reasons(evs) == ["tool_calls"]


def test_auto_ignores_tools_when_tool_choice_none(fake):
    evs = events(chat(fake, tools=[WEATHER_TOOL], tool_choice="none"))
    assert joined(evs) == "You said: Hello there" and tool_fragments(evs) == []


def test_auto_answers_tool_results(fake):
    messages = [{"role": "user", "content": "weather?"},
                {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {
                    "name": "get_weather", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny, 21C"}]
    evs = events(chat(fake, messages=messages, tools=[WEATHER_TOOL]))
    assert joined(evs) == "The tool returned: sunny, 21C" and tool_fragments(evs) == []


def test_auto_max_tokens_truncates_with_length(fake):
    evs = events(chat(fake, max_tokens=2))
    assert joined(evs) == "You said" and finish_reasons(evs) == ["length"]


def test_auto_token_count_and_delay_headers(fake):
    start = time.monotonic()
    evs = events(chat(fake, headers={"x-fake-tokens": "20", "x-fake-delay-ms": "10"},
                      stream_options={"include_usage": True}))
    assert len([d for d in deltas(evs) if d.get("content")]) == 20
    assert evs[-2]["usage"]["completion_tokens"] == 20
    assert time.monotonic() - start >= 0.2


def test_auto_non_streaming(fake):
    body = chat(fake, stream=False).json()
    assert body["choices"][0]["message"]["content"] == "You said: Hello there"


# --- queue, endpoints, bookkeeping ------------------------------------------------


def test_scripts_are_consumed_fifo_then_auto(fake):
    fake.enqueue(text("one"), text("two"))
    assert fake.pending == 2
    answers = [joined(events(chat(fake))) for _ in range(3)]
    assert answers == ["one", "two", "You said: Hello there"] and fake.pending == 0


def test_models_endpoint(fake):
    server = FakeUpstream(models=("a", "b"), max_model_len=4096)
    body = requests.get(f"{server.start().base_url}/v1/models", timeout=5).json()
    server.stop()
    assert body["object"] == "list" and [m["id"] for m in body["data"]] == ["a", "b"]
    assert body["data"][0] == {"id": "a", "object": "model", "created": body["data"][0]["created"],
                               "owned_by": "vllm", "root": "a", "parent": None,
                               "max_model_len": 4096, "permission": []}


def test_health_status_is_configurable_and_reset(fake):
    assert requests.get(f"{fake.base_url}/health", timeout=5).status_code == 200
    fake.health_status = 503
    resp = requests.get(f"{fake.base_url}/health", timeout=5)
    assert resp.status_code == 503 and resp.content == b""
    fake.reset()
    assert requests.get(f"{fake.base_url}/health", timeout=5).status_code == 200


def test_requests_are_logged_and_reset_clears_them(fake):
    fake.enqueue(text("x"), text("unused"))
    chat(fake, headers={"X-Trace": "abc"}).content
    requests.get(f"{fake.base_url}/v1/models", timeout=5)
    log = fake.requests
    assert [(r["method"], r["path"]) for r in log] == [("POST", "/v1/chat/completions"),
                                                      ("GET", "/v1/models")]
    assert log[0]["headers"]["x-trace"] == "abc" and log[1]["json"] is None
    assert fake.chat_requests() == [log[0]["json"]] and log[0]["json"]["model"] == "fake-model"
    fake.reset()
    assert fake.requests == [] and fake.pending == 0


def test_unknown_model_and_unknown_path_are_404(fake):
    fake.enqueue(text("kept"))
    resp = chat(fake, model="nope")
    assert resp.status_code == 404 and resp.json() == {"error": {
        "message": "The model `nope` does not exist.", "type": "NotFoundError",
        "param": "model", "code": 404}}
    assert fake.pending == 1  # rejected before consuming a script
    resp = requests.get(f"{fake.base_url}/v2/whatever", timeout=5)
    assert resp.status_code == 404 and resp.json() == {"error": {
        "message": "Not Found", "type": "NotFoundError", "param": None, "code": 404}}


def test_keep_alive_reuses_the_connection(fake):
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    conn.request("GET", "/v1/models")
    conn.getresponse().read()
    sock = conn.sock
    conn.request("POST", "/v1/chat/completions", body=json.dumps(
        {"model": "fake-model", "stream": True, "messages": [{"role": "user", "content": "hi"}]}),
        headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert b"data: [DONE]" in resp.read()  # http.client de-chunks
    assert sock is not None and conn.sock is sock
    conn.close()


def test_cli_serves_and_stops_on_sigterm():
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.upstream", "--port", "0",
                             "--model", "demo-model", "--tokens", "3"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("fake upstream listening on http://127.0.0.1:")
        base = line.rsplit(" ", 1)[1]
        assert requests.get(f"{base}/v1/models", timeout=5).json()["data"][0]["id"] == "demo-model"
        resp = requests.post(f"{base}/v1/chat/completions", timeout=5, json={
            "model": "demo-model", "messages": [{"role": "user", "content": "hi"}]})
        assert resp.json()["choices"][0]["message"]["content"] == "lorem ipsum dolor "
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_stream_counts_as_sent_once_its_terminator_is_written(fake):
    fake.enqueue(text("a b", pieces=["a ", "b"], delay_s=0.3))
    resp = chat(fake)
    assert not fake.wait_for_streams_sent(1, timeout_s=0.1)  # still pacing its deltas
    assert fake.wait_for_streams_sent(1, timeout_s=5)
    assert resp.content.endswith(b"data: [DONE]\n\n") and fake.streams_sent == 1
