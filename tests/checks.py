"""Assertions every emitted Response and stream must pass.

`validate_response` / `validate_event` use the official openai SDK's pydantic types;
`check_stream` is an event-order checker for the rules of responses-api.md §6.5.
"""
from __future__ import annotations

from typing import Any

from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

_EVENT = TypeAdapter(ResponseStreamEvent)
TERMINAL = ("response.completed", "response.incomplete", "response.failed")
_PART_DELTAS = {"response.output_text.delta", "response.reasoning_text.delta", "response.refusal.delta"}
_ITEM_DELTAS = {"response.function_call_arguments.delta", "response.custom_tool_call_input.delta"}
_SUMMARY_DELTAS = {"response.reasoning_summary_text.delta"}
REQUIRED_RESPONSE_KEYS = (
    "id", "object", "created_at", "completed_at", "status", "incomplete_details", "error", "model",
    "previous_response_id", "instructions", "output", "tools", "tool_choice", "truncation",
    "parallel_tool_calls", "text", "reasoning", "temperature", "top_p", "presence_penalty",
    "frequency_penalty", "top_logprobs", "max_output_tokens", "max_tool_calls", "usage", "store",
    "background", "service_tier", "safety_identifier", "prompt_cache_key")


# Codex acts on this failure code; the SDK's ResponseError literal does not list it yet.
EXTRA_ERROR_CODES = ("context_length_exceeded",)


def validate_response(body: dict[str, Any]) -> Response:
    missing = [k for k in REQUIRED_RESPONSE_KEYS if k not in body]
    assert not missing, f"Response lacks {missing}"
    for key in ("temperature", "top_p", "presence_penalty", "frequency_penalty", "top_logprobs"):
        assert body[key] is not None, f"{key} must not be null"
    assert isinstance(body["service_tier"], str)
    assert body["reasoning"] is None or set(body["reasoning"]) >= {"effort", "summary"}
    if body["usage"] is not None:
        assert "input_tokens_details" in body["usage"] and "output_tokens_details" in body["usage"]
    for item in body["output"]:
        if item["type"] == "reasoning":
            assert item.get("encrypted_content", "") is not None, "encrypted_content must not be null"
    if body["error"] and body["error"]["code"] in EXTRA_ERROR_CODES:
        body = {**body, "error": {**body["error"], "code": "server_error"}}
    return Response.model_validate(body)


def validate_event(event: dict[str, Any]) -> Any:
    if "response" in event:
        validate_response(event["response"])
        error = event["response"]["error"]
        if error and error["code"] in EXTRA_ERROR_CODES:
            event = {**event, "response": {**event["response"], "error": {**error, "code": "server_error"}}}
    return _EVENT.validate_python(event)


class _Open:
    def __init__(self, item: dict[str, Any]) -> None:
        self.item = item
        self.parts: set[int] = set()
        self.done_parts: set[int] = set()
        self.summaries: set[int] = set()


def check_stream(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Assert ordering invariants; returns the terminal event's response."""
    assert events, "empty stream"
    for expected, event in enumerate(events):
        validate_event(event)
        assert event["sequence_number"] == expected, f"sequence_number {event['sequence_number']} != {expected}"
    start = 1 if events[0]["type"] == "response.queued" else 0     # a background response's log
    assert events[start]["type"] == "response.created"
    assert events[start + 1]["type"] == "response.in_progress"
    terminals = [e for e in events if e["type"] in TERMINAL]
    assert len(terminals) == 1 and events[-1] is terminals[0], "exactly one terminal event, last"
    response_id = events[0]["response"]["id"]
    assert terminals[0]["response"]["id"] == response_id
    done_items: list[dict[str, Any]] = []
    open_item: _Open | None = None
    for event in events[start + 2:-1]:
        kind = event["type"]
        if kind == "response.output_item.added":
            assert open_item is None, "items must be sequential"
            assert event["output_index"] == len(done_items)
            open_item = _Open(event["item"])
            continue
        assert open_item is not None, f"{kind} outside an open item"
        assert event["output_index"] == len(done_items)
        if "item_id" in event:
            assert event["item_id"] == open_item.item["id"]
        if kind == "response.output_item.done":
            assert open_item.parts == open_item.done_parts, "content parts left open"
            assert event["item"]["id"] == open_item.item["id"]
            done_items.append(event["item"])
            open_item = None
        elif kind == "response.content_part.added":
            assert event["content_index"] not in open_item.parts
            open_item.parts.add(event["content_index"])
        elif kind == "response.content_part.done":
            assert event["content_index"] in open_item.parts - open_item.done_parts
            open_item.done_parts.add(event["content_index"])
        elif kind == "response.reasoning_summary_part.added":
            open_item.summaries.add(event["summary_index"])
        elif kind in _PART_DELTAS or kind.endswith("text.done") and "content_index" in event:
            assert event["content_index"] in open_item.parts - open_item.done_parts, f"{kind} outside its part"
        elif kind in _SUMMARY_DELTAS:
            assert event["summary_index"] in open_item.summaries
        elif kind in _ITEM_DELTAS:
            assert open_item.item["type"] in ("function_call", "custom_tool_call")
    assert open_item is None, "an item was never closed"
    final = terminals[0]["response"]
    assert final["output"] == done_items, "terminal output must equal the done items"
    return final


def collect_text(response: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for item in response["output"] if item["type"] == "message"
                   for part in item["content"])
