"""Input items as both upstream kinds need them: normalized, their text pulled out, replayed calls
in their lowered (upstream) form, and the compact JSON fragments history is stored and spliced as.

Everything here is deterministic: the same items always give the same bytes upstream, so vLLM's
prefix cache keeps hitting across the near-identical requests of an agent loop.
"""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from gateway.errors import invalid_request
from gateway.tools import ToolMap

# One encoder for all compact JSON here (json.dumps with options builds a new encoder per call).
compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

TEXT_PARTS = ("input_text", "output_text", "text")
CALL_TYPES = ("function_call", "custom_tool_call", "tool_search_call")
CALL_OUTPUT_TYPES = ("function_call_output", "custom_tool_call_output")
# Responses `reasoning.effort` → what open-weight servers accept (low/medium/high).
EFFORT_UPSTREAM = {"none": None, "minimal": "low", "low": "low", "medium": "medium",
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


def file_text(part: dict[str, Any], param: str) -> str:
    """Inline a text file sent as a data URL; open-weight servers take no file content parts."""
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


def _image(part: dict[str, Any], param: str) -> dict[str, Any]:
    if not part.get("image_url"):
        raise invalid_request("input_image by file_id is not supported: send image_url "
                              "(an https or data URL).", param=f"{param}.file_id")
    detail = part.get("detail")
    return {"image_url": part["image_url"], "detail": detail if detail in ("auto", "low", "high") else None}


def user_content(content: Any, param: str) -> str | list[dict[str, Any]]:
    """User or system message content: one string when it is all text (text files inlined), else
    neutral parts, `{"text"}` or `{"image_url", "detail"}` (a known detail, else None), which each
    upstream kind writes in its own form."""
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        kind, where = part["type"], f"{param}[{index}]"
        if kind in TEXT_PARTS:
            parts.append({"text": part["text"]})
        elif kind == "input_image":
            parts.append(_image(part, where))
        elif kind == "input_file":
            parts.append({"text": file_text(part, where)})
        else:
            raise invalid_request(f"Content part type {kind!r} cannot be used in a message.", param=f"{where}.type")
    if all("text" in p for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def assistant_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text") or p.get("refusal") or "" for p in content)


def output_text(output: Any) -> str:
    """A tool output as text: array outputs join their text parts with newlines."""
    if isinstance(output, str):
        return output
    texts = [p["text"] for p in output if p.get("type") in TEXT_PARTS and isinstance(p.get("text"), str)]
    return "\n".join(texts)


def lowered_call(item: dict[str, Any], tool_map: ToolMap) -> tuple[str, str]:
    """A replayed client call as the upstream function call the model originally made: (name, arguments)."""
    kind = item["type"]
    if kind == "custom_tool_call":
        name, arguments = item["name"], json.dumps({"input": item["input"]}, ensure_ascii=False)
    elif kind == "tool_search_call":
        name, arguments = "tool_search", json.dumps(item.get("arguments") or {}, ensure_ascii=False)
    else:
        name, arguments = item["name"], item["arguments"]
    return tool_map.upstream_name(name, item.get("namespace")), arguments


def loaded_tools_text(tools: list[dict[str, Any]]) -> str:
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


def encode_objects(objects: list[dict[str, Any]]) -> str:
    """JSON objects (chat messages or upstream items), comma-joined: the unit stored as a response's
    fragment and spliced into request bodies without being decoded again."""
    return ",".join(map(compact, objects))


def join_fragments(*fragments: str) -> str:
    return ",".join(f for f in fragments if f)


def encode_with_history(payload: dict[str, Any], field: str, history: str, history_index: int = 0) -> bytes:
    """The request body, with already-encoded history objects spliced into the array `field` at
    `history_index`. Stored history is never decoded, whatever the chain's depth."""
    entries = payload[field]
    head = encode_objects(entries[:history_index])
    tail = encode_objects(entries[history_index:])
    rest = compact({k: v for k, v in payload.items() if k != field})
    body = f'{{"{field}":[' + join_fragments(head, history, tail) + "]" + ("," + rest[1:] if rest != "{}" else "}")
    return body.encode("utf-8")
