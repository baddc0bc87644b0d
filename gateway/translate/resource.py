"""The Response object (Open Responses `ResponseResource` + OpenAI fields), built from a request.

Every key is always present with a non-null value where validators demand one, so the same
snapshot satisfies the openai SDK and strict Open Responses validators.
"""
from __future__ import annotations

import time
from typing import Any

from gateway.ids import new_id


def _echo_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    echoed = []
    for tool in tools or []:
        tool = dict(tool)
        if tool.get("type") == "function":
            tool.setdefault("description", None)
            tool.setdefault("parameters", None)
            if tool.get("strict") is None:
                tool["strict"] = False
        echoed.append(tool)
    return echoed


def _echo_reasoning(reasoning: dict[str, Any] | None) -> dict[str, Any] | None:
    if not reasoning:
        return None
    return {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")}


def new_response(request: dict[str, Any], *, response_id: str | None = None) -> dict[str, Any]:
    """A fresh `in_progress` Response for a validated create request (client-facing model)."""
    response: dict[str, Any] = {
        "id": response_id or new_id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "completed_at": None,
        "status": "in_progress",
        "incomplete_details": None,
        "error": None,
        "model": request["model"],
        "previous_response_id": request.get("previous_response_id"),
        "instructions": request.get("instructions"),
        "output": [],
        "tools": _echo_tools(request.get("tools")),
        "tool_choice": request.get("tool_choice") or "auto",
        "truncation": request.get("truncation") or "disabled",
        "parallel_tool_calls": request.get("parallel_tool_calls") is not False,
        "text": request.get("text") or {"format": {"type": "text"}},
        "reasoning": _echo_reasoning(request.get("reasoning")),
        "temperature": 1.0 if request.get("temperature") is None else request["temperature"],
        "top_p": 1.0 if request.get("top_p") is None else request["top_p"],
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "top_logprobs": request.get("top_logprobs") or 0,
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"),
        "usage": None,
        "store": request.get("store", True),
        "background": bool(request.get("background")),
        "service_tier": request.get("service_tier") or "default",
        "metadata": request.get("metadata") or {},
        "safety_identifier": request.get("safety_identifier"),
        "prompt_cache_key": request.get("prompt_cache_key"),
    }
    if request.get("user") is not None:
        response["user"] = request["user"]
    return response


def _usage(prompt: Any, completion: Any, cached: Any, reasoning: Any, total: Any) -> dict[str, Any]:
    prompt, completion = int(prompt or 0), int(completion or 0)
    return {"input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": int(cached or 0), "cache_write_tokens": 0},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": int(reasoning or 0)},
            "total_tokens": int(total or prompt + completion)}


def usage_from_chat(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if not usage:
        return None
    return _usage(usage.get("prompt_tokens"), usage.get("completion_tokens"),
                  (usage.get("prompt_tokens_details") or {}).get("cached_tokens"),
                  (usage.get("completion_tokens_details") or {}).get("reasoning_tokens"), usage.get("total_tokens"))


def usage_from_responses(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """A Responses upstream's usage with only the standard keys (vLLM adds `*_per_turn` lists and
    `tool_output_tokens`)."""
    if not usage:
        return None
    return _usage(usage.get("input_tokens"), usage.get("output_tokens"),
                  (usage.get("input_tokens_details") or {}).get("cached_tokens"),
                  (usage.get("output_tokens_details") or {}).get("reasoning_tokens"), usage.get("total_tokens"))


def snapshot(response: dict[str, Any]) -> dict[str, Any]:
    """The Response as of now. Shallow: snapshots are serialized before the builder touches the
    response again, and output items are only mutated while open (none are at lifecycle events)."""
    return {**response, "output": list(response["output"])}
