"""A Responses upstream's events through the ResponsesDecoder and the EventBuilder: the client sees
the gateway's own ids and numbering, restored tool shapes, the configured reasoning form, and a
status taken from the upstream's final response, not from its terminal event's type."""
from __future__ import annotations

import pytest

from gateway.errors import APIError
from gateway.tools import ToolMap
from gateway.translate.from_responses import ResponsesDecoder
from gateway.translate.from_upstream import EventBuilder
from gateway.translate.resource import new_response
from tests.fakes import scripts
from tests.fakes.responses_api import render_responses
from tests.unit.helpers import check_events

FILES = {"type": "namespace", "name": "mcp__files", "description": "File tools.",
         "tools": [{"type": "function", "name": "read_file", "parameters": {"type": "object", "properties": {}}}]}
PATCH = {"type": "custom", "name": "apply_patch", "format": {"type": "text"}}


def upstream_events(script, tools=None):
    return render_responses(script, model="m", body={"tools": tools or []}, prompt_tokens=7)


def drive(events, tools=None, mode="text", seal=None):
    builder = EventBuilder(new_response({"model": "client-model", "tools": tools}), ToolMap.build(tools), mode, seal)
    decoder = ResponsesDecoder(builder)
    out = builder.start()
    for event in events:
        out += decoder.feed(event)
    out += decoder.end()
    out.append(builder.terminal_event())
    return out, check_events(out)


def test_text_becomes_the_gateways_own_message():
    events, final = drive(upstream_events(scripts.text("Hello there.")))
    assert final["status"] == "completed" and final["model"] == "client-model"
    [item] = final["output"]
    assert item["id"].startswith("msg_") and len(item["id"]) == 36  # minted here, not the upstream's
    assert item["content"][0]["text"] == "Hello there."
    assert final["usage"]["input_tokens"] == 7 and "input_tokens_per_turn" not in final["usage"]["input_tokens_details"]


def test_reasoning_is_normalized_and_sealed_like_the_chat_upstreams():
    events, final = drive(upstream_events(scripts.text("Answer.", reasoning="Let me think.")), mode="summary",
                          seal=lambda text: f"sealed:{text}")
    reasoning, message = final["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Let me think."}]
    assert reasoning["encrypted_content"] == "sealed:Let me think."
    assert "response.reasoning_summary_text.delta" in [e["type"] for e in events]
    assert not [e for e in events if "reasoning_part" in e["type"]]


def test_calls_come_back_in_their_codex_shapes():
    script = scripts.tool_calls([{"name": "agentic_ns__mcp__files__read_file", "arguments": {}},
                                 {"name": "apply_patch", "arguments": {"input": "*** Begin Patch"}}])
    _, final = drive(upstream_events(script, [FILES, PATCH]), tools=[FILES, PATCH])
    call, custom = final["output"]
    assert (call["type"], call["namespace"], call["name"]) == ("function_call", "mcp__files", "read_file")
    assert call["call_id"].startswith("call_") and "async" not in call
    assert (custom["type"], custom["input"]) == ("custom_tool_call", "*** Begin Patch")


def test_an_incomplete_response_is_incomplete_whatever_its_terminal_event_says():
    events, final = drive(upstream_events(scripts.length("Cut off")))
    assert events[-1]["type"] == "response.incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][-1]["status"] == "incomplete"


def test_content_delivered_only_in_done_events_is_not_lost():
    upstream = [e for e in upstream_events(scripts.tool_calls([{"name": "f", "arguments": {"a": 1}}], content="Hi"))
                if not e["type"].endswith(".delta")]
    events, final = drive(upstream, tools=[{"type": "function", "name": "f"}])
    message, call = final["output"]
    assert message["content"][0]["text"] == "Hi"
    assert call["arguments"] == '{"a": 1}'


def test_a_done_event_repeating_the_deltas_adds_nothing():
    _, final = drive(upstream_events(scripts.text("Once only.")))
    assert final["output"][0]["content"][0]["text"] == "Once only."


def test_a_failed_upstream_response_fails_with_its_mapped_error():
    failed = {"type": "response.failed", "response": {"status": "failed", "usage": None, "error": {
        "code": "server_error", "message": "This model's maximum context length is 10 tokens."}}}
    events, final = drive([failed])
    assert events[-1]["type"] == "response.failed"
    assert final["error"]["code"] == "context_length_exceeded"


def test_a_stream_without_a_terminal_event_fails():
    events, final = drive(upstream_events(scripts.no_finish("Half an answ")))
    assert final["status"] == "failed" and final["output"][0]["status"] == "incomplete"
    assert "no terminal event" in final["error"]["message"]


def test_an_error_event_is_raised_as_the_mapped_error():
    decoder = ResponsesDecoder(EventBuilder(new_response({"model": "m"}), ToolMap()))
    with pytest.raises(APIError) as raised:
        decoder.feed({"type": "error", "code": "500", "message": "engine died", "param": None})
    assert raised.value.status == 502 and "engine died" in raised.value.message


def test_an_event_that_is_not_an_object_is_a_malformed_stream():
    decoder = ResponsesDecoder(EventBuilder(new_response({"model": "m"}), ToolMap()))
    with pytest.raises(APIError) as raised:
        decoder.feed(["not", "an", "event"])
    assert raised.value.status == 502
