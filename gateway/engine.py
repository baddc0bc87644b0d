"""Runs one Responses turn. Knows nothing about HTTP, SSE or WebSocket.

`prepare()` validates and translates (raising an `APIError` before anything is streamed),
`stream()` yields the turn's events and always ends with exactly one terminal event, and
`complete()` runs the same stream for non-streaming clients. Every transport uses these three,
so SSE, JSON and WebSocket see identical behaviour.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterator

from gateway.config import Settings
from gateway.errors import APIError, invalid_request, server_error
from gateway.tools import ToolMap
from gateway.translate.from_upstream import EventBuilder
from gateway.translate.resource import new_response
from gateway.translate.to_upstream import build_chat_request, normalize_input
from gateway.upstream import UpstreamClient
from schemas import parse_create_request

log = logging.getLogger(__name__)


@dataclass
class Turn:
    """Everything one response needs, computed before the first byte is sent."""

    request: dict[str, Any]
    input_items: list[dict[str, Any]]
    tool_map: ToolMap
    payload: dict[str, Any]
    response: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


class Engine:
    def __init__(self, settings: Settings, upstream: UpstreamClient) -> None:
        self.settings = settings
        self.upstream = upstream

    def prepare(self, body: Any) -> Turn:
        request = parse_create_request(body)
        if request["background"]:
            raise invalid_request("background mode is not supported by this gateway.", param="background")
        if request["previous_response_id"]:
            raise APIError(400, f"Previous response with id '{request['previous_response_id']}' not found.",
                           param="previous_response_id", code="previous_response_not_found")
        items = normalize_input(request["input"])
        tool_map = ToolMap.build(request["tools"])
        payload = build_chat_request(request, items, tool_map, self.settings.upstream_model(request["model"]),
                                     replay_reasoning=self.settings.reasoning_replay)
        if not payload["messages"]:
            raise invalid_request("The request has no input: send `input` or `instructions`.", param="input")
        return Turn(request=request, input_items=items, tool_map=tool_map, payload=payload,
                    response=new_response(request))

    def stream(self, turn: Turn) -> Iterator[dict[str, Any]]:
        """The turn's events; upstream failures become `response.failed`, never an exception."""
        builder = EventBuilder(turn.response, turn.tool_map, self.settings.reasoning_output)
        yield from builder.start()
        closing = yield from self._run_upstream(turn, builder)
        self._persist(turn, builder)
        yield from closing
        yield builder.terminal_event()

    def _run_upstream(self, turn: Turn, builder: EventBuilder):
        upstream = None
        try:
            upstream = self.upstream.open_chat_stream(turn.payload)
            for chunk in upstream:
                yield from builder.feed(chunk)
            return builder.finish()
        except APIError as error:
            log.warning("response %s failed: %s", turn.response["id"], error.message)
            return builder.fail(error)
        except Exception:  # a bug must still end the stream with a terminal event
            log.exception("response %s crashed", turn.response["id"])
            return builder.fail(server_error(500, "The gateway failed while processing the upstream stream."))
        finally:
            if upstream is not None:
                upstream.close()

    def complete(self, turn: Turn) -> dict[str, Any]:
        """Non-streaming: the final Response, or the failure as an HTTP error."""
        builder_error: APIError | None = None
        final: dict[str, Any] = turn.response
        for event in self.stream(turn):
            if event["type"] in ("response.completed", "response.incomplete", "response.failed"):
                final = event["response"]
        if final["status"] == "failed":
            builder_error = turn.extra.get("error")
        if builder_error is not None:
            raise builder_error
        return final

    def _persist(self, turn: Turn, builder: EventBuilder) -> None:
        """Storage seam: a response is recorded here, before its terminal event is sent."""
        if builder.error is not None:
            turn.extra["error"] = builder.error
