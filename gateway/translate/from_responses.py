"""A Responses upstream's events → EventBuilder operations (the responses kind's half of the seam down).

The stateful path never relays the upstream's events as they are: their deltas go through the
same builder as the chat upstream's chunks, so the client sees the gateway's response and item
ids, one `sequence_number` counter, restored tool names, reasoning in the configured form (and
sealed), and exactly one terminal event, which the gateway produces after storing the response.
The upstream's terminal event only tells how the turn ended: by its `status`, not by its type
(vLLM sends `response.completed` for an incomplete response).

Upstream items are told apart by `output_index`. Text, reasoning and arguments that an upstream
delivers only in a `…done` event (or in `output_item.done`) without the deltas before it are
fed from there, so a server that skips deltas still produces a complete answer.
"""
from __future__ import annotations

from typing import Any, Callable

from gateway.translate.from_upstream import EventBuilder
from gateway.translate.resource import usage_from_responses
from gateway.upstream import failures

TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_REASONING_DELTAS = ("response.reasoning_text.delta", "response.reasoning_summary_text.delta")
_REASONING_DONE = ("response.reasoning_text.done", "response.reasoning_summary_text.done")


def _message_text(item: dict[str, Any]) -> str:
    return "".join(p.get("text") or p.get("refusal") or "" for p in item.get("content") or []
                   if p.get("type") in ("output_text", "refusal"))


def _reasoning_text(item: dict[str, Any]) -> str:
    text = "".join(p.get("text") or "" for p in item.get("content") or [] if p.get("type") == "reasoning_text")
    return text or "".join(p.get("text") or "" for p in item.get("summary") or [])


class ResponsesDecoder:
    def __init__(self, builder: EventBuilder) -> None:
        self.builder = builder
        self.final: dict[str, Any] | None = None
        self._seen: dict[tuple[str, Any], str] = {}    # (part, output_index) → text received so far
        self._named: dict[Any, str] = {}               # output_index → function name of an announced call

    # -- the three kinds of content ------------------------------------------------------------
    def _text(self, key: Any, delta: str, logprobs: list | None = None) -> list[dict[str, Any]]:
        self._seen[("text", key)] = self._seen.get(("text", key), "") + delta
        return self.builder.text(delta, logprobs, key)

    def _reasoning(self, key: Any, delta: str) -> list[dict[str, Any]]:
        self._seen[("reasoning", key)] = self._seen.get(("reasoning", key), "") + delta
        return self.builder.reasoning(delta, key)

    def _arguments(self, key: Any, delta: str, name: str | None = None) -> list[dict[str, Any]]:
        if key not in self._named:
            if name is None:  # arguments of a call not announced yet: kept until its name is known
                self._seen[("pending", key)] = self._seen.get(("pending", key), "") + delta
                return []
            self._named[key] = name
            delta = self._seen.pop(("pending", key), "") + delta
        self._seen[("arguments", key)] = self._seen.get(("arguments", key), "") + delta
        return self.builder.call(key, self._named[key], delta)

    def _rest(self, part: str, key: Any, full: str | None, feed: Callable[[str], list]) -> list[dict[str, Any]]:
        """Feed what a `…done` holds beyond the deltas already received."""
        have = self._seen.get((part, key), "")
        if not full or full == have or not full.startswith(have):
            return []
        return feed(full[len(have):])

    # -- events --------------------------------------------------------------------------------
    def feed(self, event: Any) -> list[dict[str, Any]]:
        if not isinstance(event, dict):
            raise failures.malformed("stream event (not a JSON object)")
        kind = event.get("type")
        key = event.get("output_index")
        if kind == "response.output_text.delta":
            return self._text(key, event.get("delta") or "", event.get("logprobs"))
        if kind == "response.function_call_arguments.delta":
            return self._arguments(key, event.get("delta") or "")
        if kind in _REASONING_DELTAS:
            return self._reasoning(key, event.get("delta") or "")
        if kind == "response.output_item.added":
            item = event.get("item") or {}
            if item.get("type") == "function_call":
                return self._arguments(key, item.get("arguments") or "", item.get("name") or "")
            return []
        if kind == "response.output_text.done":
            return self._rest("text", key, event.get("text"), lambda rest: self._text(key, rest))
        if kind in _REASONING_DONE:
            return self._rest("reasoning", key, event.get("text"), lambda rest: self._reasoning(key, rest))
        if kind == "response.function_call_arguments.done":
            return self._call_done(key, event.get("name"), event.get("arguments"))
        if kind == "response.output_item.done":
            return self._item_done(key, event.get("item") or {})
        if kind in TERMINAL_EVENTS:
            self.final = event.get("response") or {}
        elif kind == "error":
            raise failures.from_stream(event)
        return []

    def _call_done(self, key: Any, name: str | None, arguments: str | None) -> list[dict[str, Any]]:
        if key not in self._named:
            return self._arguments(key, arguments or "", name or "")
        return self._rest("arguments", key, arguments, lambda rest: self._arguments(key, rest))

    def _item_done(self, key: Any, item: dict[str, Any]) -> list[dict[str, Any]]:
        kind = item.get("type")
        if kind == "function_call":
            return self._call_done(key, item.get("name"), item.get("arguments"))
        if kind == "message":
            return self._rest("text", key, _message_text(item), lambda rest: self._text(key, rest))
        if kind == "reasoning":
            return self._rest("reasoning", key, _reasoning_text(item), lambda rest: self._reasoning(key, rest))
        return []

    def end(self) -> list[dict[str, Any]]:
        """How the upstream said the turn ended; a stream without a terminal event failed."""
        final = self.final
        if final is None:
            return self.builder.fail(failures.ended_abnormally("no terminal event"))
        self.builder.usage = usage_from_responses(final.get("usage"))
        status = final.get("status")
        if status == "completed":
            return self.builder.complete()
        if status == "incomplete":
            return self.builder.incomplete((final.get("incomplete_details") or {}).get("reason") or "max_output_tokens")
        if status == "failed":
            return self.builder.fail(failures.from_stream(final.get("error") or {}))
        return self.builder.fail(failures.ended_abnormally(f"status {status!r}"))
