"""Runs one Responses turn. Knows nothing about HTTP, SSE or WebSocket.

`prepare()` validates, resolves history and translates (raising an `APIError` before anything is
streamed), `stream()` yields the turn's events and always ends with exactly one terminal event,
and `complete()` runs the same stream for non-streaming clients. Every transport uses these, so
SSE, JSON and WebSocket behave identically. A stored response is written before its terminal
event is produced, also when it failed, and also when the client went away mid-stream.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator

from gateway.config import Settings
from gateway.crypto import ReasoningCipher
from gateway.errors import APIError, invalid_request, server_error
from gateway.history import History, HistoryResolver, ParentCache
from gateway.ids import new_id
from gateway.tools import ToolMap
from gateway.translate.from_upstream import EventBuilder
from gateway.translate.resource import new_response
from gateway.translate.to_upstream import (build_chat_request, build_messages, encode_chat_request,
                                           encode_messages, join_fragments, normalize_input)
from gateway.upstream import UpstreamClient
from schemas import parse_create_request
from storage.repository import Fragment, ParentContext, Repository, StoredTurn

log = logging.getLogger(__name__)
_ID_PREFIX = {"message": "msg", "function_call_output": "fco", "custom_tool_call_output": "ctco",
              "function_call": "fc", "reasoning": "rs"}
_INHERITED = ("tools", "tool_choice")
_MAX_BATCH = 64  # events per write when upstream chunks arrive faster than they are relayed


@dataclass
class Turn:
    """Everything one response needs, computed before the first byte is sent."""

    request: dict[str, Any]
    input_items: list[dict[str, Any]]
    tool_map: ToolMap
    history: History
    body: bytes
    input_fragment: str
    response: dict[str, Any]
    error: APIError | None = None
    own_fragment: str = ""

    def as_parent(self, version: int) -> ParentContext:
        """This turn as the parent of the next one (a connection-local cache entry)."""
        return ParentContext(
            response=self.response, request=kept_request(self.request),
            loaded_tools=self.history.loaded_tools, depth=self.history.depth,
            fragments=[Fragment("history", self.history.prefix, version, self.history.depth - 1),
                       Fragment(self.response["id"], self.own_fragment, version, self.history.depth)],
            conversation_id=self.history.conversation_id)


def kept_request(request: dict[str, Any]) -> dict[str, Any]:
    """The request as kept with its response, for a continuation to inherit from: without the
    input (stored as items) and without fields left unset."""
    return {k: v for k, v in request.items() if v is not None and k != "input"}


def with_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Input items as stored and listed: every item gets an id (clients' own ids are kept)."""
    return [item if item.get("id") else {"id": new_id(_ID_PREFIX.get(item.get("type"), "item")), **item}
            for item in items]


def loaded_tools(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool declarations delivered by `tool_search_output` and `additional_tools` input items."""
    tools: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type")
        if kind == "additional_tools" or (kind == "tool_search_output"
                                          and item.get("status", "completed") == "completed"):
            tools += [t for t in item.get("tools") or [] if isinstance(t, dict)]
    return tools


class Engine:
    def __init__(self, settings: Settings, upstream: UpstreamClient, repository: Repository,
                 cipher: ReasoningCipher) -> None:
        self.settings = settings
        self.upstream = upstream
        self.repository = repository
        self.cipher = cipher
        self.history = HistoryResolver(repository, settings.reasoning_replay)

    def prepare(self, body: Any, cache: ParentCache | None = None) -> Turn:
        """Validate and translate; `cache` holds a WebSocket connection's recent responses."""
        request = parse_create_request(body)
        if request["background"]:
            raise invalid_request("background mode is not supported by this gateway.", param="background")
        items = with_ids(normalize_input(request["input"]))
        history = self.history.resolve(request, items, cache)
        if history.parent is not None:
            for key in _INHERITED:
                if request.get(key) is None:
                    request[key] = history.parent.request.get(key)
        history.loaded_tools += loaded_tools(items)
        tool_map = ToolMap.build(request["tools"], loaded=history.loaded_tools)
        payload = build_chat_request(request, self.cipher.reveal(items), tool_map,
                                     self.settings.upstream_model(request["model"]),
                                     replay_reasoning=self.settings.reasoning_replay)
        history_index = 1 if request.get("instructions") else 0
        if not payload["messages"] and not history.prefix and request.get("generate") is not False:
            raise invalid_request("The request has no input: send `input` or `instructions`.", param="input")
        response = new_response(request)
        if history.conversation_id:
            response["conversation"] = {"id": history.conversation_id}
        return Turn(request=request, input_items=items, tool_map=tool_map, history=history,
                    body=encode_chat_request(payload, history.prefix, history_index),
                    input_fragment=encode_messages(payload["messages"][history_index:]), response=response)

    def stream(self, turn: Turn) -> Iterator[dict[str, Any]]:
        """The turn's events; upstream failures become `response.failed`, never an exception."""
        batches = self.stream_batches(turn)
        try:
            for batch in batches:
                yield from batch
        finally:
            batches.close()

    def stream_batches(self, turn: Turn) -> Iterator[list[dict[str, Any]]]:
        """The same events in batches, one write each for SSE (see `_run_upstream` for the grouping).

        The upstream request is sent before the first events are handed out, so the model starts
        while the client receives `response.created`; when the model has already answered by
        then, `response.created` travels with the first delta instead."""
        builder = EventBuilder(turn.response, turn.tool_map, self.settings.reasoning_output, self.cipher.seal)
        opening = builder.start()
        upstream, error = self._open_upstream(turn)
        try:
            if upstream is None or not upstream.answer_waiting():
                yield opening  # the model is still thinking: tell the client the response exists
                opening = []
            closing = yield from self._run_upstream(turn, builder, upstream, error, opening)
        except GeneratorExit:
            builder.fail(server_error(500, "The client disconnected before the response finished."))
            self._persist(turn, builder)
            raise
        finally:
            if upstream is not None:
                upstream.close()
        self._persist(turn, builder)
        yield closing + [builder.terminal_event()]

    def prewarm(self, turn: Turn) -> Iterator[dict[str, Any]]:
        """`generate: false`: record the turn's input as a chainable response without inference."""
        builder = EventBuilder(turn.response, turn.tool_map, self.settings.reasoning_output, self.cipher.seal)
        yield from builder.start()
        closing = builder.complete_without_output()
        self._persist(turn, builder)
        yield from closing
        yield builder.terminal_event()

    def _open_upstream(self, turn: Turn) -> tuple[Any, APIError | None]:
        try:
            return self.upstream.open_chat_stream(turn.body), None
        except APIError as error:
            return None, error

    def _run_upstream(self, turn: Turn, builder: EventBuilder, upstream: Any, error: APIError | None,
                      pending: list[dict[str, Any]]):
        """Yield batches of events as upstream chunks arrive; return the closing events (with any
        not yet handed out), which end in `response.failed` when the upstream failed.

        The first output events leave at once (time to first token), with anything still pending;
        after that, the events of chunks that arrived together leave together (bounded in size),
        and nothing ever waits on the network while holding events back."""
        try:
            if error is not None:
                raise error
            seen_output = False
            for chunk, more in upstream.with_lookahead():
                events = builder.feed(chunk)
                pending += events
                first_output = bool(events) and not seen_output
                seen_output = seen_output or first_output
                if pending and (first_output or not more or len(pending) >= _MAX_BATCH):
                    yield pending
                    pending = []
            return pending + builder.finish()
        except APIError as error:
            log.warning("response %s failed: %s", turn.response["id"], error.message)
            return pending + builder.fail(error)
        except Exception:  # a bug must still end the stream with a terminal event
            log.exception("response %s crashed", turn.response["id"])
            return pending + builder.fail(server_error(500, "The gateway failed while processing the upstream stream."))

    def complete(self, turn: Turn) -> dict[str, Any]:
        """Non-streaming: the final Response, or the failure as an HTTP error."""
        final = turn.response
        for event in self.stream(turn):
            final = event.get("response", final)
        if turn.error is not None:
            raise turn.error
        return final

    def _persist(self, turn: Turn, builder: EventBuilder) -> None:
        """Record the response (store) and extend its conversation before the terminal event."""
        turn.error = builder.error
        request, response = turn.request, turn.response
        try:
            own = join_fragments(turn.input_fragment, encode_messages(
                build_messages(response["output"], None, turn.tool_map, self.settings.reasoning_replay)))
            turn.own_fragment = own
            checkpoint = turn.history.checkpoint
            if request["store"]:
                self.repository.save_response(StoredTurn(
                    segment=join_fragments(*checkpoint[0], own) if checkpoint else None,
                    skip_parent=checkpoint[1] if checkpoint else None,
                    response=response, request=kept_request(request),
                    input_items=turn.input_items, chat_fragment=join_fragments(
                        turn.history.prefix if turn.history.conversation_id else "", own),
                    fragment_version=self.history.version, loaded_tools=turn.history.loaded_tools,
                    depth=turn.history.depth, conversation_id=turn.history.conversation_id))
            elif turn.history.conversation_id:
                self.repository.add_conversation_items(turn.history.conversation_id,
                                                       turn.input_items + response["output"])
        except Exception:
            log.exception("could not store response %s", response["id"])
            if builder.error is None:
                builder.fail(server_error(500, "The response could not be stored; it cannot be continued."))
                turn.error = builder.error
