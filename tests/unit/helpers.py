"""Small builders shared by the unit tests: vLLM chunks, an SSE parser, a stream checker."""
from __future__ import annotations

import copy
import json
from typing import Any

from tests.checks import check_stream

# The contract (responses-api.md §3.4, §5.2, §8.5) puts `context_length_exceeded` into
# `response.failed` — OpenAI and Codex use it — but the openai SDK's `ResponseError.code`
# Literal does not list it, so `validate_response` would reject a correct stream.
CONTRACT_CODES_MISSING_FROM_SDK = frozenset({"context_length_exceeded"})


def check_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """`check_stream` over the events; returns the terminal Response (unaltered).

    Identical to `check_stream` except that the contract-only error codes above are swapped
    for `server_error` in a copy before the SDK validates it.
    """
    checked = copy.deepcopy(events)
    for event in checked:
        error = (event.get("response") or {}).get("error")
        if error and error.get("code") in CONTRACT_CODES_MISSING_FROM_SDK:
            error["code"] = "server_error"
    check_stream(checked)
    return events[-1]["response"]


def parse_sse(body: str) -> list[dict[str, Any]]:
    """`event: <type>` / `data: <json>` blocks → event dicts (the `event:` name must match)."""
    events = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        name = data = None
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                data = line[len("data: "):]
        assert data is not None, f"SSE block without data: {block!r}"
        event = json.loads(data)
        assert name == event["type"], f"event: {name!r} but type {event['type']!r}"
        events.append(event)
    return events


# -- vLLM chat.completion.chunk builders ------------------------------------------------------

def chunk(delta: dict[str, Any] | None = None, *, finish_reason: str | None = None,
          logprobs: dict[str, Any] | None = None, index: int = 0) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "upstream-model",
            "choices": [{"index": index, "delta": delta or {}, "logprobs": logprobs,
                         "finish_reason": finish_reason, "stop_reason": None}],
            "usage": None}


def role_chunk() -> dict[str, Any]:
    return chunk({"role": "assistant", "content": ""})


def reasoning_chunk(text: str, field: str = "reasoning") -> dict[str, Any]:
    return chunk({field: text})


def content_chunk(text: str, logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return chunk({"content": text}, logprobs={"content": logprobs} if logprobs is not None else None)


def tool_chunk(index: int, *, name: str | None = None, arguments: str = "") -> dict[str, Any]:
    """A tool-call fragment; `name` marks the first fragment of a call (vLLM sends id/type then)."""
    fragment: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if name is not None:
        fragment.update(id=f"chatcmpl-tool-{index}", type="function")
        fragment["function"]["name"] = name
    return chunk({"tool_calls": [fragment]})


def finish_chunk(reason: str) -> dict[str, Any]:
    return chunk({}, finish_reason=reason)


def usage_chunk(prompt: int, completion: int, *, cached: int | None = None,
                reasoning: int | None = None) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                             "total_tokens": prompt + completion}
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    if reasoning is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "upstream-model", "choices": [], "usage": usage}


def sse_body(chunks: list[dict[str, Any]]) -> str:
    """An upstream SSE body as vLLM writes it, ending with `[DONE]`."""
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
