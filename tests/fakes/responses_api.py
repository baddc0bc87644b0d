"""The fake upstream's `POST /v1/responses`: the same Scripts rendered the way vLLM's own
Responses API streams them, quirks included (../shared/reference/vllm-cpu.md).

Events carry `event:` and `data:` lines and contiguous `sequence_number`s from 0 (a Script's
`sequence` can make them go missing or restart); there is no `[DONE]`. The terminal event is
`response.completed` even when the response is `incomplete` (its items still say `completed`);
`text` is null, `tool_choice` defaults to `none` without tools, calls carry `async`/`caller`/
`namespace` nulls, snapshots carry `kv_transfer_params`, `input_messages`, `output_messages` and
`*_per_turn` usage lists, and `content_part.added` has `logprobs: []` where the done events have
null. Reasoning streams with vLLM's own `response.reasoning_part.*`. A mid-stream failure is an
`error` event after which the stream just ends.
"""
from __future__ import annotations

import time
import uuid
from typing import Any, Callable

from tests.fakes.scripts import Script, text_of

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _hex() -> str:
    return uuid.uuid4().hex[:16]


def chat_view(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses request seen as the chat request the auto responder understands."""
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    items = body.get("input") or []
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            messages.append({"role": item.get("role", "user"), "content": text_of(item.get("content"))})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "content": item.get("output") if isinstance(item.get("output"), str)
                             else text_of(item.get("output"))})
        elif kind == "function_call":
            messages.append({"role": "assistant", "content": None})
    tools = [{"type": "function", "function": {k: v for k, v in t.items() if k != "type"}}
             for t in body.get("tools") or [] if t.get("type") == "function"]
    choice = body.get("tool_choice", "auto")
    if isinstance(choice, dict) and choice.get("name"):
        choice = {"type": "function", "function": {"name": choice["name"]}}
    view = {"messages": messages, "tools": tools, "tool_choice": choice}
    if body.get("max_output_tokens"):
        view["max_tokens"] = body["max_output_tokens"]
    if (body.get("reasoning") or {}).get("effort"):
        view["reasoning_effort"] = body["reasoning"]["effort"]
    return view


def _usage(script: Script, prompt_tokens: int) -> dict[str, Any]:
    completion = sum(1 for d in script.deltas if d)
    usage = {"input_tokens": prompt_tokens,
             "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0, "input_tokens_per_turn": [],
                                      "cached_tokens_per_turn": []},
             "output_tokens": completion,
             "output_tokens_details": {"reasoning_tokens": 0, "tool_output_tokens": 0, "output_tokens_per_turn": [],
                                       "tool_output_tokens_per_turn": []},
             "total_tokens": prompt_tokens + completion}
    extra = script.usage or {}
    usage["input_tokens"] = extra.get("prompt_tokens", usage["input_tokens"])
    usage["output_tokens"] = extra.get("completion_tokens", usage["output_tokens"])
    usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    return usage


def _response(body: dict[str, Any], model: str, status: str) -> dict[str, Any]:
    return {"id": f"resp_{_hex()}", "created_at": int(time.time()), "incomplete_details": None,
            "instructions": body.get("instructions"), "metadata": None, "model": model, "object": "response",
            "output": [], "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "temperature": body.get("temperature", 1.0),
            "tool_choice": body.get("tool_choice") or ("auto" if body.get("tools") else "none"),
            "tools": body.get("tools") or [], "top_p": body.get("top_p", 1.0), "background": False,
            "max_output_tokens": body.get("max_output_tokens") or 400, "max_tool_calls": None,
            "previous_response_id": None, "prompt": None, "reasoning": None, "service_tier": "auto",
            "status": status, "text": None, "top_logprobs": None, "truncation": "disabled", "usage": None,
            "user": None, "presence_penalty": 0.0, "frequency_penalty": 0.0, "kv_transfer_params": None,
            "ec_transfer_params": None, "input_messages": None, "output_messages": None}


def _runs(script: Script) -> list[tuple[str, Any]]:
    """The script's deltas grouped into upstream items: ("reasoning" | "text", [pieces]) runs and
    ("call", {id, name, pieces}) per tool call, in the order they start."""
    runs: list[tuple[str, Any]] = []
    calls: dict[int, dict[str, Any]] = {}
    for delta in script.deltas:
        for fragment in delta.get("tool_calls") or []:
            call = calls.get(fragment["index"])
            if call is None:
                call = calls[fragment["index"]] = {"call_id": fragment.get("id") or f"chatcmpl-tool-{_hex()}",
                                                   "name": fragment["function"].get("name"), "pieces": []}
                runs.append(("call", call))
            if fragment["function"].get("arguments"):
                call["pieces"].append(fragment["function"]["arguments"])
        for kind, key in (("reasoning", "reasoning"), ("reasoning", "reasoning_content"), ("text", "content")):
            if delta.get(key):
                if not runs or runs[-1][0] != kind:
                    runs.append((kind, []))
                runs[-1][1].append(delta[key])
    return runs


def _item_events(kind: str, run: Any, index: int, emit: Callable[..., None]) -> dict[str, Any]:
    """Emit one item's events; returns the finished item."""
    if kind == "call":
        item = {"arguments": "", "call_id": run["call_id"], "name": run["name"], "type": "function_call",
                "id": f"fc_{_hex()}", "async": None, "caller": None, "namespace": None, "status": "in_progress"}
        emit("response.output_item.added", item=dict(item), output_index=index)
        for piece in run["pieces"]:
            emit("response.function_call_arguments.delta", delta=piece, item_id=item["id"], output_index=index)
        item.update(arguments="".join(run["pieces"]), status="completed")
        emit("response.function_call_arguments.done", arguments=item["arguments"], item_id=item["id"],
             output_index=index, name=item["name"])
    elif kind == "reasoning":
        item = {"id": f"rs_{_hex()}", "summary": [], "type": "reasoning", "content": None, "encrypted_content": None,
                "status": "in_progress"}
        ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
        emit("response.output_item.added", item=dict(item), output_index=index)
        emit("response.reasoning_part.added", part={"text": "", "type": "reasoning_text"}, **ids)
        for piece in run:
            emit("response.reasoning_text.delta", delta=piece, **ids)
        text = "".join(run)
        emit("response.reasoning_text.done", text=text, **ids)
        emit("response.reasoning_part.done", part={"text": text, "type": "reasoning_text"}, **ids)
        item.update(content=[{"text": text, "type": "reasoning_text"}], status="completed")
    else:
        item = {"id": f"msg_{_hex()}", "content": [], "role": "assistant", "status": "in_progress", "type": "message",
                "phase": None}
        ids = {"content_index": 0, "item_id": item["id"], "output_index": index}
        emit("response.output_item.added", item=dict(item), output_index=index)
        emit("response.content_part.added", part={"annotations": [], "text": "", "type": "output_text", "logprobs": []},
             **ids)
        for piece in run:
            emit("response.output_text.delta", delta=piece, logprobs=[], **ids)
        text = "".join(run)
        emit("response.output_text.done", logprobs=[], text=text, **ids)
        part = {"annotations": [], "text": text, "type": "output_text", "logprobs": None}
        emit("response.content_part.done", part=part, **ids)
        item.update(content=[part], status="completed")
    emit("response.output_item.done", item=item, output_index=index)
    return item


def render_responses(script: Script, *, model: str, body: dict[str, Any], prompt_tokens: int) -> list[dict[str, Any]]:
    """Every event of a stream, in order (the terminal one last, unless the script has none)."""
    events: list[dict[str, Any]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append({**fields, "sequence_number": len(events), "type": kind})

    response = _response(body, model, "in_progress")
    emit("response.created", response=dict(response))
    emit("response.in_progress", response=dict(response))
    output = [_item_events(kind, run, index, emit) for index, (kind, run) in enumerate(_runs(script))]
    if script.finish_reason is not None:
        final = _response(body, model, "incomplete" if script.finish_reason in _INCOMPLETE else "completed")
        final.update(id=response["id"], created_at=response["created_at"], output=output,
                     usage=_usage(script, prompt_tokens))
        if script.finish_reason in _INCOMPLETE:
            final["incomplete_details"] = {"reason": _INCOMPLETE[script.finish_reason]}
        emit("response.completed", response=final)  # even for an incomplete response, as vLLM does
    if script.sequence == "missing":
        for event in events:
            del event["sequence_number"]
    elif script.sequence == "restart":
        for event in events[2:]:
            event["sequence_number"] -= 2
    return events


def render_responses_object(script: Script, *, model: str, body: dict[str, Any], prompt_tokens: int) -> dict[str, Any]:
    """The non-streaming answer: the final Response of the same stream."""
    events = render_responses(script, model=model, body=body, prompt_tokens=prompt_tokens)
    return events[-1]["response"]


def error_event(message: str, sequence_number: int) -> dict[str, Any]:
    return {"type": "error", "code": "500", "message": message, "param": None, "sequence_number": sequence_number}
