"""POST /v1/responses through gunicorn against the loopback fake vLLM: JSON and SSE."""
from __future__ import annotations

import json
import time

import pytest
import requests

from tests.checks import check_stream, collect_text, validate_response
from tests.fakes import upstream as fake
from tests.support import iter_sse, post_stream

pytestmark = pytest.mark.integration


def post_json(url, body):
    return requests.post(f"{url}/v1/responses", json=body, timeout=30)


def test_plain_text_json(gateway, upstream):
    upstream.enqueue(fake.text("Hello there, friend."))
    resp = post_json(gateway, {"model": "fake-model", "input": "hi"})
    assert resp.status_code == 200
    body = resp.json()
    validate_response(body)
    assert body["status"] == "completed"
    assert collect_text(body) == "Hello there, friend."
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0
    assert resp.headers["x-request-id"]


def test_plain_text_stream_events_are_valid_and_ordered(gateway, upstream):
    upstream.enqueue(fake.text("Hello there, friend."))
    resp, events = post_stream(gateway, {"model": "fake-model", "input": "hi"})
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert resp.headers["cache-control"] == "no-cache"
    assert resp.headers["x-accel-buffering"] == "no"
    final = check_stream(events)
    assert final["status"] == "completed"
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == "Hello there, friend."
    assert collect_text(final) == "Hello there, friend."


def test_first_text_delta_arrives_while_upstream_is_still_generating(gateway, upstream):
    upstream.enqueue(fake.text("one two three four five", pieces=["one ", "two ", "three ", "four ", "five"],
                               delay_s=0.25))
    started = time.monotonic()
    resp = requests.post(f"{gateway}/v1/responses", json={"model": "fake-model", "input": "x", "stream": True},
                         stream=True, timeout=30)
    first_delta_at = None
    for event in iter_sse(resp):
        if event["type"] == "response.output_text.delta" and first_delta_at is None:
            first_delta_at = time.monotonic() - started
    total = time.monotonic() - started
    # Five deltas 0.25 s apart: the first must be seen long before the stream ends.
    assert first_delta_at is not None and first_delta_at < 0.9 < total


def test_consecutive_streams_reuse_one_upstream_connection(make_gateway, upstream):
    url = make_gateway(llm_api_base=upstream.base_url)
    for n in range(4):
        upstream.enqueue(fake.text(f"answer {n}"))
        resp, events = post_stream(url, {"model": "fake-model", "input": "hi", "stream": True})
        assert check_stream(events)["status"] == "completed"
    assert upstream.connections_accepted == 1


def test_reasoning_becomes_a_reasoning_item_with_reasoning_text(gateway, upstream):
    upstream.enqueue(fake.text("The answer is 4.", reasoning="2 plus 2 is 4."))
    resp, events = post_stream(gateway, {"model": "fake-model", "input": "2+2?"})
    final = check_stream(events)
    reasoning, message = final["output"]
    assert reasoning["type"] == "reasoning"
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "2 plus 2 is 4."}]
    assert message["type"] == "message"
    kinds = [e["type"] for e in events]
    assert "response.reasoning_text.delta" in kinds and "response.reasoning_text.done" in kinds


def test_legacy_reasoning_content_field_is_read(gateway, upstream):
    upstream.enqueue(fake.text("ok", reasoning="thinking", reasoning_field="reasoning_content"))
    body = post_json(gateway, {"model": "fake-model", "input": "q"}).json()
    validate_response(body)
    assert body["output"][0]["content"][0]["text"] == "thinking"


def test_single_tool_call_streams_arguments(gateway, upstream):
    upstream.enqueue(fake.tool_calls([{"name": "get_weather", "arguments": {"city": "Paris"}}]))
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    resp, events = post_stream(gateway, {"model": "fake-model", "input": "weather?", "tools": tools})
    final = check_stream(events)
    (call,) = final["output"]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "Paris"}
    assert call["call_id"].startswith("call_")
    added = next(e for e in events if e["type"] == "response.output_item.added")
    assert added["item"]["arguments"] == "" and added["item"]["status"] == "in_progress"
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert len(deltas) > 1 and json.loads("".join(deltas)) == {"city": "Paris"}
    sent = upstream.chat_requests()[0]
    assert sent["tools"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize("interleave", [False, True])
def test_parallel_tool_calls(gateway, upstream, interleave):
    calls = [{"name": "get_weather", "arguments": {"city": "Paris"}},
             {"name": "get_weather", "arguments": {"city": "Tokyo, Japan"}}]
    upstream.enqueue(fake.tool_calls(calls, interleave=interleave))
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    resp, events = post_stream(gateway, {"model": "fake-model", "input": "two cities", "tools": tools})
    final = check_stream(events)
    assert [json.loads(i["arguments"]) for i in final["output"]] == [{"city": "Paris"}, {"city": "Tokyo, Japan"}]
    assert len({i["call_id"] for i in final["output"]}) == 2


def test_tool_call_round_trip_sends_history_upstream(gateway, upstream):
    upstream.enqueue(fake.text("It is sunny in Paris."))
    body = {"model": "fake-model", "tools": [{"type": "function", "name": "get_weather"}], "input": [
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}]}
    resp = post_json(gateway, body)
    validate_response(resp.json())
    messages = upstream.chat_requests()[0]["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "call_1"
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}


def test_structured_output_maps_to_response_format(gateway, upstream):
    upstream.enqueue(fake.text('{"answer": 4}'))
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    fmt = {"type": "json_schema", "name": "result", "schema": schema, "strict": True}
    body = post_json(gateway, {"model": "fake-model", "input": "2+2", "text": {"format": fmt}}).json()
    validate_response(body)
    assert json.loads(collect_text(body)) == {"answer": 4}
    assert body["text"]["format"]["name"] == "result"
    sent = upstream.chat_requests()[0]["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "result", "schema": schema, "strict": True}}


def test_length_cutoff_is_incomplete(gateway, upstream):
    upstream.enqueue(fake.length("This is cut"))
    resp, events = post_stream(gateway, {"model": "fake-model", "input": "long", "max_output_tokens": 3})
    final = check_stream(events)
    assert events[-1]["type"] == "response.incomplete"
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert upstream.chat_requests()[0]["max_tokens"] == 3


def test_alias_goes_upstream_with_real_name_and_is_reported(gateway, upstream):
    upstream.enqueue(fake.text("hi"))
    body = post_json(gateway, {"model": "alias-model", "input": "hi"}).json()
    assert body["model"] == "alias-model"
    assert upstream.chat_requests()[0]["model"] == "fake-model"


def test_sampling_fields_are_passed_and_echoed(gateway, upstream):
    upstream.enqueue(fake.text("ok"))
    body = post_json(gateway, {"model": "fake-model", "input": "hi", "temperature": 0.2, "top_p": 0.5,
                               "metadata": {"k": "v"}, "user": "u1", "prompt_cache_key": "thread-1",
                               "reasoning": {"effort": "high"}}).json()
    validate_response(body)
    assert (body["temperature"], body["top_p"], body["metadata"]) == (0.2, 0.5, {"k": "v"})
    assert body["prompt_cache_key"] == "thread-1"
    assert body["reasoning"] == {"effort": "high", "summary": None}
    sent = upstream.chat_requests()[0]
    assert (sent["temperature"], sent["top_p"], sent["user"], sent["reasoning_effort"]) == (0.2, 0.5, "u1", "high")
    assert "metadata" not in sent and "prompt_cache_key" not in sent


def test_every_delta_leaves_before_the_next_is_generated(gateway, upstream):
    # Keep-alive comments follow every event: buffered bytes that are not an event must not hold
    # a delta back until the next token arrives.
    script = fake.text("one two three four", pieces=["one ", "two ", "three ", "four"], delay_s=0.3)
    script.keepalive_comments = True
    upstream.enqueue(script)
    started = time.monotonic()
    resp = requests.post(f"{gateway}/v1/responses", json={"model": "fake-model", "input": "x", "stream": True},
                         stream=True, timeout=30)
    arrivals = [time.monotonic() - started for event in iter_sse(resp)
                if event["type"] == "response.output_text.delta"]
    assert len(arrivals) == 4
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
    assert min(gaps) > 0.15, gaps
