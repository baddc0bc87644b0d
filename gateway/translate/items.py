"""Per-item state machines used by the EventBuilder: open → deltas → close.

Each holds the authoritative item dict that ends up in `response.output`, and emits the
events of its row in the event-order table (message, reasoning, function call).
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable, Hashable

from gateway.ids import new_id
from gateway.tools import CallTarget
from gateway.tools.lowering import custom_input, search_arguments

log = logging.getLogger(__name__)
Emit = Callable[..., dict[str, Any]]


def _logprobs(raw: list | None) -> list[dict[str, Any]]:
    """Chat `logprobs.content` entries already have the Responses shape; keep the known keys."""
    out = []
    for entry in raw or []:
        out.append({"token": entry.get("token", ""), "logprob": entry.get("logprob", 0.0),
                    "bytes": entry.get("bytes") or [],
                    "top_logprobs": [{"token": t.get("token", ""), "logprob": t.get("logprob", 0.0),
                                      "bytes": t.get("bytes") or []} for t in entry.get("top_logprobs") or []]})
    return out


class MessageItem:
    def __init__(self, item_id: str, key: Hashable = None) -> None:
        self.key = key  # the upstream item it comes from (None: the chat upstream's one message)
        self.item: dict[str, Any] = {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant",
                                     "content": []}
        self.output_index = 0
        self._text: list[str] = []
        self._logprobs: list[dict[str, Any]] = []

    def _ids(self) -> dict[str, Any]:
        return {"item_id": self.item["id"], "output_index": self.output_index, "content_index": 0}

    def open(self, emit: Emit) -> list[dict[str, Any]]:
        return [emit("response.output_item.added", output_index=self.output_index, item=dict(self.item, content=[])),
                emit("response.content_part.added", **self._ids(),
                     part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})]

    def delta(self, emit: Emit, text: str, logprobs: list | None = None) -> list[dict[str, Any]]:
        # Runs once per token: the event is spelled out rather than assembled from _ids().
        self._text.append(text)
        mapped = _logprobs(logprobs) if logprobs else []
        self._logprobs += mapped
        return [emit("response.output_text.delta", item_id=self.item["id"], output_index=self.output_index,
                     content_index=0, delta=text, logprobs=mapped)]

    def close(self, emit: Emit, status: str) -> list[dict[str, Any]]:
        text = "".join(self._text)
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": self._logprobs}
        self.item["content"] = [part]
        self.item["status"] = status
        return [emit("response.output_text.done", **self._ids(), text=text, logprobs=self._logprobs),
                emit("response.content_part.done", **self._ids(), part=part),
                emit("response.output_item.done", output_index=self.output_index, item=dict(self.item))]


class ReasoningItem:
    """Upstream reasoning as raw `reasoning_text` content (default) or as a summary."""

    def __init__(self, item_id: str, mode: str = "text", seal: Callable[[str], str] | None = None,
                 key: Hashable = None) -> None:
        self.key = key
        self.mode = mode
        self.seal = seal
        self.item: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": [], "status": "in_progress"}
        if mode == "text":
            self.item["content"] = []
        self.output_index = 0
        self._text: list[str] = []

    def _ids(self) -> dict[str, Any]:
        index = {"content_index": 0} if self.mode == "text" else {"summary_index": 0}
        return {"item_id": self.item["id"], "output_index": self.output_index, **index}

    def _part(self, text: str) -> dict[str, Any]:
        return {"type": "reasoning_text" if self.mode == "text" else "summary_text", "text": text}

    def open(self, emit: Emit) -> list[dict[str, Any]]:
        part_event = "response.content_part.added" if self.mode == "text" else "response.reasoning_summary_part.added"
        return [emit("response.output_item.added", output_index=self.output_index,
                     item=json.loads(json.dumps(self.item))),
                emit(part_event, **self._ids(), part=self._part(""))]

    def delta(self, emit: Emit, text: str) -> list[dict[str, Any]]:
        self._text.append(text)
        kind = "response.reasoning_text.delta" if self.mode == "text" else "response.reasoning_summary_text.delta"
        return [emit(kind, **self._ids(), delta=text)]

    def close(self, emit: Emit, status: str) -> list[dict[str, Any]]:
        text = "".join(self._text)
        part = self._part(text)
        self.item["content" if self.mode == "text" else "summary"] = [part]
        self.item["status"] = status
        if self.seal is not None:
            self.item["encrypted_content"] = self.seal(text)
        if self.mode == "text":
            names = ("response.reasoning_text.done", "response.content_part.done")
        else:
            names = ("response.reasoning_summary_text.done", "response.reasoning_summary_part.done")
        return [emit(names[0], **self._ids(), text=text),
                emit(names[1], **self._ids(), part=part),
                emit("response.output_item.done", output_index=self.output_index,
                     item=json.loads(json.dumps(self.item)))]


class CallItem:
    """A client tool call assembled from the upstream fragments of one `index`.

    The ToolMap target decides its shape: `function_call` streams its arguments live;
    `custom_tool_call` decodes the raw `input` from the lowered `{"input": …}` arguments and emits
    it with `custom_tool_call_input.delta/done`; `tool_search_call` carries its arguments as an
    object and has no delta events.
    """

    _PREFIX = {"function_call": "fc", "custom_tool_call": "ctc", "tool_search_call": "tsc"}

    def __init__(self, call_id: str, target: CallTarget) -> None:
        self.target = target
        self.kind = target.item_type
        self.item: dict[str, Any] = {"id": new_id(self._PREFIX[self.kind]), "type": self.kind,
                                     "status": "in_progress", "call_id": call_id}
        if self.kind == "function_call":
            self.item.update(name=target.name, arguments="")
        elif self.kind == "custom_tool_call":
            self.item.update(name=target.name, input="")
        else:
            self.item.update(execution="client", arguments={})
        if target.namespace:
            self.item["namespace"] = target.namespace
        self.output_index = 0
        self.closed = False
        self._arguments: list[str] = []

    def append(self, arguments: str) -> None:
        if arguments:
            self._arguments.append(arguments)

    def open(self, emit: Emit) -> list[dict[str, Any]]:
        return [emit("response.output_item.added", output_index=self.output_index, item=dict(self.item))]

    def _ids(self) -> dict[str, Any]:
        return {"item_id": self.item["id"], "output_index": self.output_index}

    def delta(self, emit: Emit, arguments: str) -> list[dict[str, Any]]:
        if not arguments:
            return []
        self._arguments.append(arguments)
        if self.kind != "function_call":
            return []
        return [emit("response.function_call_arguments.delta", **self._ids(), delta=arguments)]

    def flush(self, emit: Emit) -> list[dict[str, Any]]:
        """A buffered function call: all its arguments as one delta."""
        text = "".join(self._arguments)
        if self.kind != "function_call" or not text:
            return []
        return [emit("response.function_call_arguments.delta", **self._ids(), delta=text)]

    def close(self, emit: Emit, status: str) -> list[dict[str, Any]]:
        self.closed = True
        self.item["status"] = status
        raw = "".join(self._arguments)  # kept verbatim: raw custom input keeps its whitespace
        events: list[dict[str, Any]] = []
        if self.kind == "function_call":
            arguments = raw.strip() or "{}"
            try:
                json.loads(arguments)
            except ValueError:
                log.warning("tool call %s has arguments that are not valid JSON; passed on unchanged",
                            self.item["name"])
            self.item["arguments"] = arguments
            events.append(emit("response.function_call_arguments.done", **self._ids(), arguments=arguments,
                               name=self.item["name"]))
        elif self.kind == "custom_tool_call":
            self.item["input"] = custom_input(raw)
            if self.item["input"]:
                events.append(emit("response.custom_tool_call_input.delta", **self._ids(), delta=self.item["input"]))
            events.append(emit("response.custom_tool_call_input.done", **self._ids(), input=self.item["input"]))
        else:
            self.item["arguments"] = search_arguments(raw)
        return events + [emit("response.output_item.done", output_index=self.output_index,
                              item=json.loads(json.dumps(self.item)))]
