"""Chat Completions chunks → Responses output items and stream events. The only seam downward.

`EventBuilder` is the one place that invents item ids, `sequence_number`s and item state. It keeps
at most one item open at a time, so items are strictly sequential, and every `…added` gets its
`…done`. Tool calls are assembled by their `index`; the first call streams its arguments live,
further calls of the same turn are buffered and emitted whole when the live one closes, which
stays correct even when an upstream interleaves the fragments of parallel calls.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from gateway.errors import APIError
from gateway.ids import new_id
from gateway.tools import ToolMap
from gateway.translate.items import CallItem, MessageItem, ReasoningItem
from gateway.translate.resource import snapshot, usage_from_chat

log = logging.getLogger(__name__)

_COMPLETED = ("stop", "tool_calls", "function_call")
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


class EventBuilder:
    def __init__(self, response: dict[str, Any], tool_map: ToolMap, reasoning_output: str = "text",
                 seal: Callable[[str], str] | None = None) -> None:
        self.response = response
        self.seal = seal
        self.tool_map = tool_map
        self.reasoning_output = reasoning_output
        self.error: APIError | None = None
        self._seq = 0
        self._open: Any = None
        self._calls: dict[int, CallItem] = {}
        self._buffered: list[CallItem] = []
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None

    # -- event plumbing --------------------------------------------------------------------
    def _event(self, type_: str, **fields: Any) -> dict[str, Any]:
        event = {"type": type_, "sequence_number": self._seq, **fields}
        self._seq += 1
        return event

    def _lifecycle(self, type_: str) -> dict[str, Any]:
        return self._event(type_, response=snapshot(self.response))

    def start(self) -> list[dict[str, Any]]:
        return [self._lifecycle("response.created"), self._lifecycle("response.in_progress")]

    def _attach(self, item: Any) -> list[dict[str, Any]]:
        item.output_index = len(self.response["output"])
        self.response["output"].append(item.item)
        self._open = item
        return item.open(self._event)

    def _open_item(self, item: Any) -> list[dict[str, Any]]:
        return self._close_open() + self._attach(item)

    def _close_open(self, status: str = "completed") -> list[dict[str, Any]]:
        """Close the open item, then emit any buffered tool calls whole, in call order."""
        events: list[dict[str, Any]] = []
        if self._open is not None:
            events += self._open.close(self._event, status)
            self._open = None
        while self._buffered:
            call = self._buffered.pop(0)
            events += self._attach(call) + call.flush(self._event) + call.close(self._event, status)
            self._open = None
        return events

    # -- upstream chunks -------------------------------------------------------------------
    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        events: list[dict[str, Any]] = []
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning") or delta.get("reasoning_content")
            if reasoning:
                events += self._reasoning(reasoning)
            if delta.get("content"):
                events += self._content(delta["content"], (choice.get("logprobs") or {}).get("content"))
            for fragment in delta.get("tool_calls") or []:
                events += self._tool_fragment(fragment)
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
        return events

    def _reasoning(self, text: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if not isinstance(self._open, ReasoningItem):
            events += self._open_item(ReasoningItem(new_id("rs"), self.reasoning_output, self.seal))
        return events + self._open.delta(self._event, text)

    def _content(self, text: str, logprobs: list | None) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if not isinstance(self._open, MessageItem):
            events += self._open_item(MessageItem(new_id("msg")))
        return events + self._open.delta(self._event, text, logprobs)

    def _tool_fragment(self, fragment: dict[str, Any]) -> list[dict[str, Any]]:
        index = fragment.get("index", 0)
        function = fragment.get("function") or {}
        call = self._calls.get(index)
        if call is None:
            target = self.tool_map.restore(function.get("name") or "")
            call = CallItem(new_id("call"), target)
            self._calls[index] = call
            if isinstance(self._open, CallItem):
                self._buffered.append(call)
                call.append(function.get("arguments") or "")
                return []
            events = self._open_item(call)
        else:
            events = []
        arguments = function.get("arguments") or ""
        if call is self._open:
            return events + call.delta(self._event, arguments)
        if call.closed:
            log.warning("upstream sent arguments for an already closed tool call (index %s); ignored", index)
            return events
        call.append(arguments)
        return events

    # -- the end ---------------------------------------------------------------------------
    def finish(self) -> list[dict[str, Any]]:
        """Close the items after the upstream stream ended; decides the terminal status."""
        reason = self._finish_reason
        if reason in _INCOMPLETE:
            events = self._close_open("incomplete")
            self._set_terminal("incomplete", incomplete=_INCOMPLETE[reason])
            return events
        if reason in _COMPLETED:
            events = self._close_open("completed")
            self._set_terminal("completed")
            return events
        detail = f"finish_reason {reason!r}" if reason else "no finish_reason"
        return self.fail(APIError(502, f"Upstream model server ended the stream abnormally ({detail}).",
                                  type="server_error", code="server_error"))

    def complete_without_output(self) -> list[dict[str, Any]]:
        """A turn answered locally (WebSocket prewarm): completed, nothing generated."""
        self._finish_reason = "stop"
        return self.finish()

    def fail(self, error: APIError) -> list[dict[str, Any]]:
        self.error = error
        events = self._close_open("incomplete")
        self._set_terminal("failed", error=error.as_response_error())
        return events

    def _set_terminal(self, status: str, *, incomplete: str | None = None,
                      error: dict[str, str] | None = None) -> None:
        self.response["status"] = status
        self.response["completed_at"] = int(time.time())
        self.response["incomplete_details"] = {"reason": incomplete} if incomplete else None
        self.response["error"] = error
        self.response["usage"] = usage_from_chat(self._usage)

    def terminal_event(self) -> dict[str, Any]:
        kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(
            self.response["status"], "response.failed")
        return self._lifecycle(kind)

