"""Responses request + history items → one request to a Responses upstream (the responses kind's
seam up), for the stateful path.

The upstream gets what the chat upstream would get, in Responses form: only function tools
(namespace members, custom tools and tool_search lowered by the same ToolMap), replayed calls
under their lowered names, tool results as `function_call_output`, reasoning as `reasoning_text`
content (the gateway's encrypted blobs already opened), `developer` as `system`, files inlined as
text, and `store: false`: the gateway keeps the state, the upstream is only asked to generate.
"""
from __future__ import annotations

from typing import Any

from gateway.tools import ToolMap
from gateway.translate.inputs import (CALL_OUTPUT_TYPES, CALL_TYPES, EFFORT_UPSTREAM, assistant_text, encode_objects,
                                      encode_with_history, loaded_tools_text, lowered_call, output_text,
                                      reasoning_text, user_content)

LOGPROBS_INCLUDE = "message.output_text.logprobs"


def _responses_part(part: dict[str, Any]) -> dict[str, Any]:
    if "text" in part:
        return {"type": "input_text", "text": part["text"]}
    return {"type": "input_image", "image_url": part["image_url"], "detail": part["detail"] or "auto"}


def _content(content: Any, param: str) -> Any:
    content = user_content(content, param)
    return content if isinstance(content, str) else [_responses_part(part) for part in content]


def build_items(items: list[dict[str, Any]], tool_map: ToolMap, replay_reasoning: bool = True) -> list[dict[str, Any]]:
    """Client items as upstream input items, one for one (hosted and unknown item types carry
    nothing an open-weight model can use and are left out)."""
    out: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        kind, param = item.get("type"), f"input[{index}]"
        if kind == "message":
            role = item["role"]
            if role == "assistant":
                out.append({"type": "message", "role": "assistant", "content": assistant_text(item["content"])})
            else:
                out.append({"type": "message", "role": "system" if role in ("system", "developer") else "user",
                            "content": _content(item["content"], f"{param}.content")})
        elif kind in CALL_TYPES:
            name, arguments = lowered_call(item, tool_map)
            out.append({"type": "function_call", "call_id": item["call_id"], "name": name, "arguments": arguments})
        elif kind in CALL_OUTPUT_TYPES:
            out.append({"type": "function_call_output", "call_id": item["call_id"],
                        "output": output_text(item["output"])})
        elif kind == "tool_search_output":
            out.append({"type": "function_call_output", "call_id": item.get("call_id") or "",
                        "output": loaded_tools_text(item.get("tools") or [])})
        elif kind == "reasoning":
            text = reasoning_text(item)
            if replay_reasoning and text:
                out.append({"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": text}]})
    return out


def _function_tool(entry: dict[str, Any]) -> dict[str, Any]:
    """A lowered function (chat `tools` form, as the ToolMap keeps them) in Responses form."""
    function = entry["function"]
    tool = {"type": "function", "name": function["name"], "parameters": function["parameters"]}
    for key in ("description", "strict"):
        if function.get(key) is not None:
            tool[key] = function[key]
    return tool


def build_responses_request(request: dict[str, Any], items: list[dict[str, Any]], tool_map: ToolMap,
                            upstream_model: str, replay_reasoning: bool = True) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": upstream_model, "input": build_items(items, tool_map, replay_reasoning),
                               "store": False, "stream": True}
    if request.get("instructions"):
        payload["instructions"] = request["instructions"]
    tool_choice, tools = tool_map.lower_tool_choice(request.get("tool_choice"))
    if tools:
        payload["tools"] = [_function_tool(t) for t in tools]
        # vLLM's default without a choice is "none"; the API's is "auto"
        payload["tool_choice"] = {"type": "function", "name": tool_choice["function"]["name"]} \
            if isinstance(tool_choice, dict) else tool_choice or "auto"
        if request.get("parallel_tool_calls") is not None:
            payload["parallel_tool_calls"] = request["parallel_tool_calls"]
    for key in ("max_output_tokens", "temperature", "top_p"):
        if request.get(key) is not None:
            payload[key] = request[key]
    if request.get("top_logprobs"):
        payload["top_logprobs"] = request["top_logprobs"]
        payload["include"] = [LOGPROBS_INCLUDE]
    fmt = (request.get("text") or {}).get("format")
    if fmt and fmt.get("type") != "text":
        payload["text"] = {"format": fmt}
    effort = EFFORT_UPSTREAM.get(((request.get("reasoning") or {}).get("effort")) or "")
    if effort:
        payload["reasoning"] = {"effort": effort}
    return payload


def encode_responses_request(payload: dict[str, Any], history: str = "") -> bytes:
    """The request body with the stored history items spliced in before the new input."""
    return encode_with_history(payload, "input", history)


def encode_items(items: list[dict[str, Any]], tool_map: ToolMap, replay_reasoning: bool = True) -> str:
    """Items as the upstream items they translate to, encoded: a stored response's responses fragment."""
    return encode_objects(build_items(items, tool_map, replay_reasoning))
