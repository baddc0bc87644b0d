"""The stateless proxy path: a Responses upstream's own events passed on, fixing only what clients
trip on.

Ids, items and text stay the upstream's. What changes (all quirks measured on vLLM, see
../shared/reference/vllm-cpu.md):
- `sequence_number` is renumbered from 0 (upstreams that omit or restart it);
- the terminal event follows the response's `status` (vLLM sends `response.completed` for an
  `incomplete` response), and the cut item of an incomplete response says `incomplete` in its
  `output_item.done` too (that event waits for the next one to know);
- a stream that ends or breaks without a terminal event ends with the gateway's `response.failed`,
  after the `…done` events of the item it cut (status `incomplete`, with what had arrived);
- snapshots report the model the client asked for, `text` and `tool_choice` as requested (vLLM:
  `null`, `"none"`), standard `usage` keys only, no vLLM-only fields, and every key of a
  Response (those vLLM leaves out, or null where a number belongs, as the gateway's own snapshot);
- `logprobs: null` becomes `[]`, null `async`/`caller`/`namespace`/`phase` fields are dropped,
  vLLM's `response.reasoning_part.*` become `response.content_part.*`.
"""
from __future__ import annotations

import time
from typing import Any

from gateway.errors import APIError
from gateway.translate.from_responses import TERMINAL_EVENTS
from gateway.translate.resource import usage_from_responses
from gateway.upstream import failures

_AS_REQUESTED = ("model", "text", "tool_choice")
_UPSTREAM_ONLY = ("kv_transfer_params", "ec_transfer_params", "input_messages", "output_messages")
_NULL_EXTRAS = ("async", "caller", "namespace", "phase", "encrypted_content")
_RENAMED = {"response.reasoning_part.added": "response.content_part.added",
            "response.reasoning_part.done": "response.content_part.done"}
_TERMINAL_OF = {"completed": "response.completed", "incomplete": "response.incomplete"}


def _part(part: dict[str, Any]) -> dict[str, Any]:
    if part.get("type") == "output_text" and part.get("logprobs") is None:
        part["logprobs"] = []
    return part


def normalize_item(item: dict[str, Any]) -> dict[str, Any]:
    for key in _NULL_EXTRAS:
        if key in item and item[key] is None:
            del item[key]
    if item.get("type") == "function_call" and not item.get("status"):
        item["status"] = "completed"
    for part in item.get("content") or []:
        if isinstance(part, dict):
            _part(part)
    return item


def normalize_response(response: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """An upstream Response object as the client should see it (snapshots and JSON answers). `own`
    is the gateway's snapshot for the same request: it says which model, `text` and `tool_choice`
    the client asked for, and fills what the upstream left out or left null."""
    for key in _UPSTREAM_ONLY:
        response.pop(key, None)
    for key, value in own.items():
        if key in _AS_REQUESTED or key not in response or (response[key] is None and value is not None):
            response[key] = value
    if response.get("status") in _TERMINAL_OF and response.get("completed_at") is None:
        response["completed_at"] = int(time.time())
    response["usage"] = usage_from_responses(response.get("usage"))
    output = [normalize_item(item) for item in response.get("output") or [] if isinstance(item, dict)]
    if response.get("status") == "incomplete" and output and output[-1].get("status") == "completed":
        output[-1]["status"] = "incomplete"
    response["output"] = output
    return response


class _OpenItem:
    """What has been passed on of an item not yet done, so that a break can still close it."""

    _TEXT_DELTAS = {"response.output_text.delta": "output_text", "response.reasoning_text.delta": "reasoning_text"}

    def __init__(self, event: dict[str, Any]) -> None:
        self.index = event.get("output_index")
        self.item = dict(event["item"])
        self.parts: dict[int, dict[str, Any]] = {}     # content_index → the part as it stands
        self.open_parts: set[int] = set()

    def track(self, event: dict[str, Any]) -> None:
        kind, index = event["type"], event.get("content_index", 0)
        if kind == "response.content_part.added":
            self.parts[index] = dict(event.get("part") or {})
            self.open_parts.add(index)
        elif kind in self._TEXT_DELTAS:
            part = self.parts.setdefault(index, {"type": self._TEXT_DELTAS[kind], "text": ""})
            part["text"] = (part.get("text") or "") + (event.get("delta") or "")
        elif kind == "response.function_call_arguments.delta":
            self.item["arguments"] = (self.item.get("arguments") or "") + (event.get("delta") or "")
        elif kind == "response.content_part.done":
            self.parts[index] = event.get("part") or self.parts.get(index, {})
            self.open_parts.discard(index)

    def close(self) -> list[dict[str, Any]]:
        """The `…done` events that end the item as cut: `incomplete`, with what it had."""
        ids = {"item_id": self.item.get("id"), "output_index": self.index}
        events = [{"type": "response.content_part.done", **ids, "content_index": index, "part": self.parts[index]}
                  for index in sorted(self.open_parts)]
        if self.parts:
            self.item["content"] = [self.parts[index] for index in sorted(self.parts)]
        self.item["status"] = "incomplete"
        return events + [{"type": "response.output_item.done", "output_index": self.index, "item": self.item}]


class Relay:
    """Numbers and fixes one proxied stream. `start_failed()` and `fail()` end a stream whose
    upstream broke, from the last snapshot seen (or the gateway's own, before the first)."""

    def __init__(self, response: dict[str, Any]) -> None:
        self.own = response             # the gateway's own snapshot for the request
        self.response = response        # the latest snapshot: the gateway's until the upstream sends one
        self.error: APIError | None = None
        self.ended = False
        self._seq = 0
        self._held: dict[str, Any] | None = None   # an output_item.done waiting for the next event
        self._open: _OpenItem | None = None
        self._done: list[dict[str, Any]] = []      # the items passed on whole

    def _number(self, event: dict[str, Any]) -> dict[str, Any]:
        event["sequence_number"] = self._seq
        self._seq += 1
        return event

    def _release(self) -> list[dict[str, Any]]:
        held, self._held = self._held, None
        return [self._number(held)] if held is not None else []

    def feed(self, event: Any) -> list[dict[str, Any]]:
        if not isinstance(event, dict) or self.ended:
            return []
        kind = str(event.get("type"))
        kind = _RENAMED.get(kind, kind)
        if kind == "error":
            raise failures.from_stream(event)
        event["type"] = kind
        if isinstance(event.get("response"), dict):
            self.response = event["response"] = normalize_response(event["response"], self.own)
        if isinstance(event.get("item"), dict):
            normalize_item(event["item"])
        if isinstance(event.get("part"), dict):
            _part(event["part"])
        if "logprobs" in event and event["logprobs"] is None:
            event["logprobs"] = []
        if kind in TERMINAL_EVENTS:
            return self._terminal(event)
        events = self._release()
        if kind == "response.output_item.added":
            self._open = _OpenItem(event)
        elif kind == "response.output_item.done":
            self._open = None
            self._done.append(event.get("item") or {})
            self._held = event
            return events
        elif self._open is not None:
            self._open.track(event)
        return events + [self._number(event)]

    def _terminal(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        response = event.get("response") or self.response
        status = response.get("status")
        if status == "incomplete" and self._held is not None and response.get("output"):
            self._held["item"] = response["output"][-1]
        event["type"] = _TERMINAL_OF.get(str(status), "response.failed")
        self.ended = True
        return self._release() + [self._number(event)]

    def fail(self, error: APIError) -> list[dict[str, Any]]:
        """The upstream broke after the stream started (or an `error` event came)."""
        self.error = error
        events = self._release()
        if self._open is not None:
            events += [self._number(event) for event in self._open.close()]
            self._done.append(self._open.item)
            self._open = None
        response = {**self.response, "status": "failed", "error": error.as_response_error(),
                    "completed_at": int(time.time()), "output": list(self._done)}
        self.response, self.ended = response, True
        return events + [self._number({"type": "response.failed", "response": response})]

    def start_failed(self, error: APIError) -> list[dict[str, Any]]:
        """The upstream refused the request: the gateway's own created/in_progress/failed."""
        opening = [self._number({"type": kind, "response": dict(self.response)})
                   for kind in ("response.created", "response.in_progress")]
        return opening + self.fail(error)
