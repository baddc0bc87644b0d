"""Responses request + history items → one Chat Completions request. The only seam upward.

Deterministic: the same items always give the same messages, so vLLM's prefix cache keeps
hitting across the near-identical requests of an agent loop.

Reasoning items: their text (reasoning_text content, else the summary) is attached as
`reasoning_content` to the assistant message that follows them, which is where the chat
templates of reasoning models (Qwen3, GLM, DeepSeek) look for earlier reasoning; templates that
do not use it ignore the field. `REASONING_REPLAY=drop` leaves reasoning out entirely.
"""
from __future__ import annotations

import base64
import json
import binascii
from typing import Any

from gateway.errors import invalid_request
from gateway.tools import ToolMap

# One encoder for all compact JSON here (json.dumps with options builds a new encoder per call).
_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

TEXT_PARTS = ("input_text", "output_text", "text")
_EFFORT_UPSTREAM = {"none": None, "minimal": "low", "low": "low", "medium": "medium",
                    "high": "high", "xhigh": "high", "max": "high"}
_TEXT_MIME_PREFIXES = ("text/", "application/json", "application/xml", "application/x-yaml")


def normalize_item(item: dict[str, Any]) -> dict[str, Any]:
    """Messages in the canonical stored/listed form: `type` set and content as a list of parts."""
    if item.get("type", "message") != "message" or not isinstance(item.get("content"), str):
        return item if "type" in item else {"type": "message", **item}
    if item.get("role") == "assistant":
        part = {"type": "output_text", "text": item["content"], "annotations": []}
    else:
        part = {"type": "input_text", "text": item["content"]}
    return {**item, "type": "message", "content": [part]}


def normalize_input(raw: Any) -> list[dict[str, Any]]:
    """`input` as a string is one user message; messages get `type` and content parts."""
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}]
    return [normalize_item(item) for item in raw or []]


def _file_text(part: dict[str, Any], param: str) -> str:
    """Inline a text file sent as a data URL; anything else cannot reach a chat upstream."""
    data = part.get("file_data") or ""
    if data.startswith("data:") and "," in data:
        header, payload = data[5:].split(",", 1)
        mime = header.split(";")[0]
        if mime.startswith(_TEXT_MIME_PREFIXES) and header.endswith(";base64"):
            try:
                text = base64.b64decode(payload, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise invalid_request("input_file file_data is not valid base64 UTF-8 text.", param=param)
            name = part.get("filename") or "file"
            return f"[file: {name}]\n{text}"
    raise invalid_request("input_file content cannot be sent to the upstream model server: only text "
                          "files given inline as a base64 data URL (file_data) are supported.", param=param)


def _user_content(content: Any, param: str) -> Any:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        kind = part["type"]
        where = f"{param}[{index}]"
        if kind in TEXT_PARTS:
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image":
            if not part.get("image_url"):
                raise invalid_request("input_image by file_id is not supported: send image_url "
                                      "(an https or data URL).", param=f"{where}.file_id")
            image: dict[str, Any] = {"url": part["image_url"]}
            if part.get("detail") in ("auto", "low", "high"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file":
            parts.append({"type": "text", "text": _file_text(part, where)})
        else:
            raise invalid_request(f"Content part type {kind!r} cannot be used in a message.", param=f"{where}.type")
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _assistant_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text") or p.get("refusal") or "" for p in content)


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    texts = [p["text"] for p in output if p.get("type") in TEXT_PARTS and isinstance(p.get("text"), str)]
    return "\n".join(texts)


def _tool_call(item: dict[str, Any], tool_map: ToolMap) -> dict[str, Any]:
    """A replayed client call as the upstream function call the model originally made."""
    kind = item["type"]
    if kind == "custom_tool_call":
        name, arguments = item["name"], json.dumps({"input": item["input"]}, ensure_ascii=False)
    elif kind == "tool_search_call":
        name, arguments = "tool_search", json.dumps(item.get("arguments") or {}, ensure_ascii=False)
    else:
        name, arguments = item["name"], item["arguments"]
    return {"id": item["call_id"], "type": "function",
            "function": {"name": tool_map.upstream_name(name, item.get("namespace")), "arguments": arguments}}


def _loaded_tools_text(tools: list[dict[str, Any]]) -> str:
    """What a tool_search returned, as the tool result the model reads."""
    names = []
    for tool in tools:
        if tool.get("type") == "namespace":
            names += [ToolMap.upstream_name(m.get("name", ""), tool.get("name")) for m in tool.get("tools") or []]
        elif tool.get("name"):
            names.append(tool["name"])
    return "Loaded tools: " + ", ".join(names) if names else "No tools found."


def reasoning_text(item: dict[str, Any]) -> str:
    parts = item.get("content") or []
    text = "".join(p.get("text", "") for p in parts if p.get("type") == "reasoning_text")
    if not text:
        text = "\n".join(p.get("text", "") for p in item.get("summary") or [] if p.get("text"))
    return text


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
                out.new_assistant(_assistant_text(item["content"]))
            else:
                out.add({"role": "system" if role in ("system", "developer") else "user",
                         "content": _user_content(item["content"], f"{param}.content")})
        elif kind in ("function_call", "custom_tool_call", "tool_search_call"):
            out.open_assistant().setdefault("tool_calls", []).append(_tool_call(item, tool_map))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            out.add({"role": "tool", "tool_call_id": item["call_id"], "content": _output_text(item["output"])})
        elif kind == "tool_search_output":
            out.add({"role": "tool", "tool_call_id": item.get("call_id") or "",
                     "content": _loaded_tools_text(item.get("tools") or [])})
        elif kind == "reasoning":
            out.reasoning(reasoning_text(item))
        elif kind in ("item_reference",):
            raise invalid_request("item_reference items need stored responses to resolve against.",
                                  param=f"{param}.id")
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
    effort = _EFFORT_UPSTREAM.get(((request.get("reasoning") or {}).get("effort")) or "")
    if effort:
        payload["reasoning_effort"] = effort
    return payload


def encode_messages(messages: list[dict[str, Any]]) -> str:
    """Chat messages as comma-joined JSON objects: the unit stored as a response's fragment."""
    return ",".join(map(_compact, messages))


def join_fragments(*fragments: str) -> str:
    return ",".join(f for f in fragments if f)


def encode_chat_request(payload: dict[str, Any], history: str = "", history_index: int = 0) -> bytes:
    """The request body, with already-encoded history messages spliced in at `history_index`
    (after the instructions). Stored history is never decoded, whatever the chain's depth."""
    messages = payload["messages"]
    head = encode_messages(messages[:history_index])
    tail = encode_messages(messages[history_index:])
    rest = _compact({k: v for k, v in payload.items() if k != "messages"})
    body = '{"messages":[' + join_fragments(head, history, tail) + "]" + ("," + rest[1:] if rest != "{}" else "}")
    return body.encode("utf-8")
