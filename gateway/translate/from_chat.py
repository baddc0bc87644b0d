"""Chat Completions chunks → EventBuilder operations (the chat upstream's half of the seam down)."""
from __future__ import annotations

from typing import Any

from gateway.translate.from_upstream import EventBuilder
from gateway.translate.resource import usage_from_chat
from gateway.upstream import failures

_COMPLETED = ("stop", "tool_calls", "function_call")
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


class ChatDecoder:
    """Feeds one chat stream's chunks to the builder; `end()` decides the terminal status from the
    last `finish_reason` (a stream without one failed)."""

    def __init__(self, builder: EventBuilder) -> None:
        self.builder = builder
        self.finish_reason: str | None = None

    def feed(self, chunk: Any) -> list[dict[str, Any]]:
        if not isinstance(chunk, dict):
            raise failures.malformed("stream chunk (not a JSON object)")
        if "error" in chunk and "choices" not in chunk:
            raise failures.from_stream(chunk)
        if chunk.get("usage"):
            self.builder.usage = usage_from_chat(chunk["usage"])
        events: list[dict[str, Any]] = []
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            events += self.builder.reasoning(delta.get("reasoning") or delta.get("reasoning_content") or "")
            if delta.get("content"):
                events += self.builder.text(delta["content"], (choice.get("logprobs") or {}).get("content"))
            for fragment in delta.get("tool_calls") or []:
                function = fragment.get("function") or {}
                events += self.builder.call(fragment.get("index", 0), function.get("name"),
                                            function.get("arguments") or "")
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def end(self) -> list[dict[str, Any]]:
        reason = self.finish_reason
        if reason in _INCOMPLETE:
            return self.builder.incomplete(_INCOMPLETE[reason])
        if reason in _COMPLETED:
            return self.builder.complete()
        detail = f"finish_reason {reason!r}" if reason else "no finish_reason"
        return self.builder.fail(failures.ended_abnormally(detail))
