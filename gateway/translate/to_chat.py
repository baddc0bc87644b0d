"""Responses request + history items → one Chat Completions request (the chat upstream's seam up).

Reasoning items: their text (reasoning_text content, else the summary) is attached as
`reasoning_content` to the assistant message that follows them, which is where the chat
templates of reasoning models (Qwen3, GLM, DeepSeek) look for earlier reasoning; templates that
do not use it ignore the field. `REASONING_REPLAY=drop` leaves reasoning out entirely.
"""
from __future__ import annotations

from typing import Any

from gateway.tools import ToolMap
from gateway.translate.inputs import (CALL_OUTPUT_TYPES, CALL_TYPES, EFFORT_UPSTREAM, assistant_text, encode_objects,
                                      encode_with_history, loaded_tools_text, lowered_call, output_text,
                                      reasoning_text, user_content)


def _chat_part(part: dict[str, Any]) -> dict[str, Any]:
    if "text" in part:
        return {"type": "text", "text": part["text"]}
    image = {"url": part["image_url"], **({"detail": part["detail"]} if part["detail"] else {})}
    return {"type": "image_url", "image_url": image}


def _user_content(content: Any, param: str) -> Any:
    content = user_content(content, param)
    return content if isinstance(content, str) else [_chat_part(part) for part in content]


class _MessageList:
    """Accumulates chat messages; calls join the assistant message just before them."""

    def __init__(self, replay_reasoning: bool) -> None:
        self.messages: list[dict[str, Any]] = []
        self.pending_reasoning = ""
        self.replay_reasoning = replay_reasoning

    def add(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    def new_assistant(self, content: str | None) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if self.pending_reasoning:
            message["reasoning_content"] = self.pending_reasoning
            self.pending_reasoning = ""
        self.messages.append(message)
        return message

    def open_assistant(self) -> dict[str, Any]:
        """The assistant message calls attach to: the last message if it is one, else a new one."""
        last = self.messages[-1] if self.messages else None
        if last is not None and last["role"] == "assistant" and not self.pending_reasoning:
            return last
        return self.new_assistant(None)

    def reasoning(self, text: str) -> None:
        if self.replay_reasoning and text:
            self.pending_reasoning += text


def build_messages(items: list[dict[str, Any]], instructions: str | None, tool_map: ToolMap,
                   replay_reasoning: bool = True) -> list[dict[str, Any]]:
    out = _MessageList(replay_reasoning)
    if instructions:
        out.add({"role": "system", "content": instructions})
    for index, item in enumerate(items):
        kind = item.get("type")
        param = f"input[{index}]"
        if kind == "message":
            role = item["role"]
            if role == "assistant":
                out.new_assistant(assistant_text(item["content"]))
            else:
                out.add({"role": "system" if role in ("system", "developer") else "user",
                         "content": _user_content(item["content"], f"{param}.content")})
        elif kind in CALL_TYPES:
            name, arguments = lowered_call(item, tool_map)
            out.open_assistant().setdefault("tool_calls", []).append(
                {"id": item["call_id"], "type": "function", "function": {"name": name, "arguments": arguments}})
        elif kind in CALL_OUTPUT_TYPES:
            out.add({"role": "tool", "tool_call_id": item["call_id"], "content": output_text(item["output"])})
        elif kind == "tool_search_output":
            out.add({"role": "tool", "tool_call_id": item.get("call_id") or "",
                     "content": loaded_tools_text(item.get("tools") or [])})
        elif kind == "reasoning":
            out.reasoning(reasoning_text(item))
        # Other item types (hosted tool calls, unknown types) carry nothing a chat model can use.
    return out.messages


def _response_format(text: dict[str, Any] | None) -> dict[str, Any] | None:
    fmt = (text or {}).get("format") or {}
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema":
        schema: dict[str, Any] = {"name": fmt["name"], "schema": fmt["schema"]}
        if fmt.get("strict") is not None:
            schema["strict"] = fmt["strict"]
        if fmt.get("description"):
            schema["description"] = fmt["description"]
        return {"type": "json_schema", "json_schema": schema}
    return None


def build_chat_request(request: dict[str, Any], items: list[dict[str, Any]], tool_map: ToolMap,
                       upstream_model: str, replay_reasoning: bool = True) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": upstream_model,
        "messages": build_messages(items, request.get("instructions"), tool_map, replay_reasoning),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    tool_choice, tools = tool_map.lower_tool_choice(request.get("tool_choice"))
    if tools:
        payload["tools"] = tools
        if tool_choice is not None:
            payload["tool_choice"] = tool_choice
        if request.get("parallel_tool_calls") is not None:
            payload["parallel_tool_calls"] = request["parallel_tool_calls"]
    for ours, theirs in (("max_output_tokens", "max_tokens"), ("temperature", "temperature"),
                         ("top_p", "top_p"), ("user", "user")):
        if request.get(ours) is not None:
            payload[theirs] = request[ours]
    if request.get("top_logprobs"):
        payload["logprobs"] = True
        payload["top_logprobs"] = request["top_logprobs"]
    response_format = _response_format(request.get("text"))
    if response_format:
        payload["response_format"] = response_format
    effort = EFFORT_UPSTREAM.get(((request.get("reasoning") or {}).get("effort")) or "")
    if effort:
        payload["reasoning_effort"] = effort
    return payload


def encode_chat_request(payload: dict[str, Any], history: str = "", history_index: int = 0) -> bytes:
    """The request body with the stored history messages spliced in after the instructions."""
    return encode_with_history(payload, "messages", history, history_index)


def encode_messages(items: list[dict[str, Any]], tool_map: ToolMap, replay_reasoning: bool = True) -> str:
    """Items as the chat messages they translate to, encoded: a stored response's chat fragment."""
    return encode_objects(build_messages(items, None, tool_map, replay_reasoning))
