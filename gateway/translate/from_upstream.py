"""Upstream output → Responses output items and stream events. The only seam downward.

`EventBuilder` is the one place that invents item ids, `sequence_number`s and item state, whatever
kind of upstream is behind the gateway: a decoder per kind (from_chat.py, from_responses.py)
turns the upstream's stream into the builder's few operations (reasoning text, message text, a
tool-call fragment, usage, and how the turn ended). It keeps at most one item open at a time, so
items are strictly sequential, and every `…added` gets its `…done`. Tool calls are assembled per
upstream call (`key`); the first call streams its arguments live, further calls of the same turn
are buffered and emitted whole when the live one closes, which stays correct even when an
upstream interleaves the fragments of parallel calls.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Hashable

from gateway.errors import APIError
from gateway.ids import new_id
from gateway.tools import ToolMap
from gateway.translate.items import CallItem, MessageItem, ReasoningItem
from gateway.translate.resource import snapshot

log = logging.getLogger(__name__)


class EventBuilder:
    def __init__(self, response: dict[str, Any], tool_map: ToolMap, reasoning_output: str = "text",
                 seal: Callable[[str], str] | None = None, sequence_start: int = 0) -> None:
        self.response = response
        self.seal = seal
        self.tool_map = tool_map
        self.reasoning_output = reasoning_output
        self.error: APIError | None = None
        self._seq = sequence_start          # 1 for background responses: `response.queued` was 0
        self._open: Any = None
        self._calls: dict[Hashable, CallItem] = {}
        self._buffered: list[CallItem] = []
        self.usage: dict[str, Any] | None = None   # the Response's `usage`, set by the decoder

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

    # -- what the upstream produced -----------------------------------------------------------
    def reasoning(self, text: str, key: Hashable = None) -> list[dict[str, Any]]:
        """Reasoning text; `key` tells apart consecutive upstream reasoning items (None: one run)."""
        if not text:
            return []
        events: list[dict[str, Any]] = []
        if not isinstance(self._open, ReasoningItem) or self._open.key != key:
            events += self._open_item(ReasoningItem(new_id("rs"), self.reasoning_output, self.seal, key))
        return events + self._open.delta(self._event, text)

    def text(self, text: str, logprobs: list | None = None, key: Hashable = None) -> list[dict[str, Any]]:
        """Message text (with Responses-shaped logprobs, if any)."""
        if not text:
            return []
        events: list[dict[str, Any]] = []
        if not isinstance(self._open, MessageItem) or self._open.key != key:
            events += self._open_item(MessageItem(new_id("msg"), key))
        return events + self._open.delta(self._event, text, logprobs)

    def call(self, key: Hashable, name: str | None, arguments: str) -> list[dict[str, Any]]:
        """A fragment of the upstream tool call `key`; its first fragment names the function."""
        call = self._calls.get(key)
        events: list[dict[str, Any]] = []
        if call is None:
            call = CallItem(new_id("call"), self.tool_map.restore(name or ""))
            self._calls[key] = call
            if isinstance(self._open, CallItem):
                self._buffered.append(call)
                call.append(arguments)
                return []
            events = self._open_item(call)
        if call is self._open:
            return events + call.delta(self._event, arguments)
        if call.closed:
            log.warning("upstream sent arguments for an already closed tool call (%s); ignored", key)
            return events
        call.append(arguments)
        return events

    def add_item(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        """A whole item the gateway made itself (a compaction done first): added and done at once."""
        events = self._close_open()
        index = len(self.response["output"])
        self.response["output"].append(item)
        return events + [self._event("response.output_item.added", output_index=index, item=item),
                         self._event("response.output_item.done", output_index=index, item=item)]

    # -- the end ---------------------------------------------------------------------------
    def complete(self) -> list[dict[str, Any]]:
        """The upstream finished normally: close the items, status `completed`."""
        events = self._close_open("completed")
        self._set_terminal("completed")
        return events

    def incomplete(self, reason: str | None) -> list[dict[str, Any]]:
        """The upstream stopped early (`max_output_tokens`, `content_filter`): the cut item is incomplete."""
        events = self._close_open("incomplete")
        self._set_terminal("incomplete", incomplete=reason)
        return events

    def cancelled(self) -> list[dict[str, Any]]:
        """A background response cancelled on request: status `cancelled` (its stream ends with
        `response.incomplete`, the Responses event set having no cancelled event)."""
        events = self._close_open("incomplete")
        self._set_terminal("cancelled")
        return events

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
        self.response["usage"] = self.usage

    def terminal_event(self) -> dict[str, Any]:
        kind = {"completed": "response.completed", "incomplete": "response.incomplete",
                "cancelled": "response.incomplete"}.get(
            self.response["status"], "response.failed")
        return self._lifecycle(kind)

