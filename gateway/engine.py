"""Runs one Responses turn. Knows nothing about HTTP, SSE or WebSocket, and only through
`UpstreamKind` which upstream API is behind it.

`prepare()` validates, resolves history and translates (raising an `APIError` before anything is
streamed), `stream_batches()` yields the turn's events as they are produced, grouped by the upstream
chunk they came from, and always ends with exactly one terminal event; `stream()` is the same one
event at a time, and `complete()` gives non-streaming clients the final Response. Every transport uses these, so
SSE, JSON and WebSocket behave identically. A stored response is written before its terminal
event is produced, also when it failed, and also when the client went away mid-stream.

With a Responses upstream, a request that needs nothing from the gateway takes the stateless proxy
path (gateway/proxy.py): its body is forwarded almost as sent and the upstream's events are
relayed with only their quirks fixed.
"""
from __future__ import annotations

import logging
from typing import Any, Generator, Mapping

from gateway import compaction, proxy
from gateway.config import Settings
from gateway.crypto import ReasoningCipher
from gateway.errors import APIError, server_error
from gateway.history import HistoryResolver, ParentCache
from gateway.lifecycle import InFlight
from gateway.metrics import ACTIVE_STREAMS
from gateway.tools import ToolMap
from gateway.translate.from_upstream import EventBuilder
from gateway.translate.inputs import join_fragments
from gateway.turn import Turn, TurnBuilder, kept_request
from gateway.upstream.client import UpstreamClient
from gateway.upstream.kinds import KINDS
from storage.repository import Fragment, ParentContext, Repository, StoredTurn

log = logging.getLogger(__name__)
CANCELLED_CODE = "response_cancelled"       # Engine.cancel with it: the response ends `cancelled`


class Engine:
    def __init__(self, settings: Settings, client: UpstreamClient, repository: Repository,
                 cipher: ReasoningCipher, in_flight: InFlight | None = None, worker_id: str | None = None) -> None:
        self.settings = settings
        self.client = client
        self.repository = repository
        self.cipher = cipher
        self.in_flight = in_flight if in_flight is not None else InFlight()
        self.worker_id = worker_id      # stored responses are recorded when they start, naming it
        self.kind = KINDS[settings.upstream_api]
        self.history = HistoryResolver(repository, self.kind, settings.reasoning_replay)
        self.builder = TurnBuilder(settings, repository, cipher, self.kind, self.history)

    def prepare(self, body: Any, cache: ParentCache | None = None,
                headers: Mapping[str, str] | None = None) -> Turn:
        """Validate and translate (gateway/turn.py); `cache` holds a WebSocket connection's recent
        responses, `headers` are the client's (passed on by the proxy path only)."""
        turn = self.builder.prepare(body, cache, headers)
        limit = compaction.threshold(turn.request)
        if limit and not turn.compacting and not turn.proxy and compaction.context_tokens(self, body, turn) >= limit:
            return compaction.compacted_first(self, body, turn, cache, headers)
        return turn


    def count_input_tokens(self, body: Any) -> int:
        """`POST /v1/responses/input_tokens`: the input as the upstream would see it, counted by the
        upstream's tokenizer endpoint (501 where it has none: a guess would be worse than none)."""
        count = self.client.count_tokens(self.builder.chat_prompt(body))
        if count is None:
            raise APIError(501, "The upstream model server offers no /tokenize endpoint, so the gateway cannot "
                                "count input tokens the way the model would.", type="server_error",
                           code="input_tokens_unavailable")
        return count

    def compact(self, body: Any) -> dict[str, Any]:
        """`POST /v1/responses/compact` (gateway/compaction.py)."""
        return compaction.compact(self, body)

    # -- streaming -----------------------------------------------------------------------------
    def stream(self, turn: Turn) -> Generator[dict[str, Any], None, None]:
        """The turn's events one at a time (WebSocket frames, non-streaming clients)."""
        batches = self.stream_batches(turn)
        try:
            for batch in batches:
                yield from batch
        finally:
            batches.close()

    def stream_batches(self, turn: Turn) -> Generator[list[dict[str, Any]], None, None]:
        """The turn's events as they are produced: each batch holds what one upstream chunk gave, so
        SSE writes it at once and in one piece (the opening events and the closing ones are a batch
        each). Upstream failures become `response.failed`, never an exception.

        The upstream request is sent before `response.created` is handed out, so the model starts
        while the client receives the first events."""
        ACTIVE_STREAMS.inc()
        try:
            if turn.proxy:
                yield from proxy.relay_batches(self.client, turn, self.in_flight)
            else:
                yield from self._stream_turn(turn)
        finally:
            ACTIVE_STREAMS.dec()

    def _stream_turn(self, turn: Turn) -> Generator[list[dict[str, Any]], None, None]:
        builder = self._events(turn)
        opening = builder.start()
        upstream, error = self._open(turn)
        if error is None and turn.request["store"] and self.worker_id and not turn.request["background"]:
            error = self.record_start(turn)     # (a background response was recorded when queued)
        turn.refused = error
        response_id = turn.response["id"]
        if upstream is not None:
            self.in_flight.add(response_id, upstream)
        try:
            yield opening + [event for item in turn.leading_items for event in builder.add_item(item)]
            closing = yield from self._run_upstream(turn, builder, upstream, error)
        except GeneratorExit:
            builder.fail(server_error(500, "The client disconnected before the response finished."))
            self._persist(turn, builder)
            raise
        finally:
            if upstream is not None:
                self.in_flight.discard(response_id)
                upstream.close()
        self._persist(turn, builder)
        yield closing + [builder.terminal_event()]

    def _events(self, turn: Turn) -> EventBuilder:
        if turn.compacting:
            return compaction.CompactionEvents(turn.response, turn.tool_map, self.cipher.seal)
        return EventBuilder(turn.response, turn.tool_map, self.settings.reasoning_output, self.cipher.seal,
                            sequence_start=1 if turn.request["background"] else 0)

    def cancel(self, turn: Turn, error: APIError) -> None:
        """From another thread: its client went away, so end the turn's upstream stream now. The
        response is stored `incomplete` (nothing failed; nobody waited for the rest), and a
        non-streaming `complete()` raises `error`, which the access log records."""
        turn.cancelled = error
        self.in_flight.abort(turn.response["id"], error)

    def abort(self, turn: Turn, error: APIError) -> None:
        """From another thread: end the turn's upstream stream now; the response fails with `error`."""
        self.in_flight.abort(turn.response["id"], error)

    def record_start(self, turn: Turn) -> APIError | None:
        """Record the stored response as in progress, naming this worker, so it exists (and is
        marked failed, not lost, should the worker die) before the client sees its id."""
        history = turn.history
        if self.worker_id is None:      # no lease, nothing could mark it failed: not recorded early
            return None
        try:
            self.repository.start_response(StoredTurn(
                response=turn.response, request=kept_request(turn.request), input_items=[], chat_fragment="",
                fragment_version=self.history.version, loaded_tools=history.loaded_tools, depth=history.depth,
                conversation_id=history.conversation_id), self.worker_id)
        except Exception:
            log.exception("could not record response %s as started", turn.response["id"])
            return server_error(500, "The response could not be stored; try again.")
        return None

    def prewarm(self, turn: Turn) -> Generator[dict[str, Any], None, None]:
        """`generate: false`: record the turn's input as a chainable response without inference."""
        builder = EventBuilder(turn.response, turn.tool_map, self.settings.reasoning_output, self.cipher.seal)
        yield from builder.start()
        closing = builder.complete()
        self._persist(turn, builder)
        yield from closing
        yield builder.terminal_event()

    def _open(self, turn: Turn) -> tuple[Any, APIError | None]:
        try:
            upstream = self.client.open_stream(self.kind.path, turn.body)
        except APIError as error:
            turn.upstream_status = error.upstream_status
            return None, error
        turn.upstream_status = 200
        return upstream, None

    def _run_upstream(self, turn: Turn, builder: EventBuilder, upstream: Any, error: APIError | None):
        """Yield the events of each upstream chunk as it arrives; return the closing events, which end
        in `response.failed` when the upstream failed."""
        try:
            if error is not None:
                raise error
            decoder = self.kind.decoder(builder)
            yield from turn.batches(upstream, decoder.feed)
            return decoder.end()
        except APIError as error:
            if error is turn.cancelled:
                return builder.cancelled() if error.code == CANCELLED_CODE else builder.incomplete(None)
            log.warning("response failed", extra={"fields": {"response_id": turn.response["id"], "code": error.code}})
            return builder.fail(error)
        except Exception:  # a bug must still end the stream with a terminal event
            log.exception("response %s crashed", turn.response["id"])
            return builder.fail(server_error(500, "The gateway failed while processing the upstream stream."))

    def complete(self, turn: Turn) -> dict[str, Any]:
        """Non-streaming: the final Response, or the failure as an HTTP error."""
        final = turn.response
        for event in self.stream(turn):
            final = event.get("response", final)
        error = turn.error or turn.cancelled
        if error is not None:
            raise error
        return final

    # -- state ---------------------------------------------------------------------------------
    def _own_fragment(self, turn: Turn, kind: Any) -> str:
        """This turn's input and output as `kind` stores history."""
        replay = self.settings.reasoning_replay
        fragment = turn.own_fragments.get(kind.name)
        if fragment is None and turn.compacting:        # what it stands for from now on: the summary
            fragment = kind.encode([compaction.summary_message(turn.summary)], ToolMap(), replay)
            turn.own_fragments[kind.name] = fragment
        if fragment is None:
            own_input = (turn.input_fragment if kind is self.kind
                         else kind.encode(turn.upstream_items, turn.tool_map, replay))
            fragment = join_fragments(own_input, kind.encode(turn.response["output"], turn.tool_map, replay))
            turn.own_fragments[kind.name] = fragment
        return fragment

    def as_parent(self, turn: Turn) -> ParentContext:
        """The turn as the parent of the next one (a WebSocket connection's cache entry, which only
        ever serves this process's upstream kind)."""
        history, version, chat = turn.history, self.history.version, self.kind.name == "chat"

        def fragment(response_id: str, text: str, depth: int) -> Fragment:
            return Fragment(response_id, text if chat else None, version, depth, False, None if chat else text)

        return ParentContext(
            response=turn.response, request=kept_request(turn.request), loaded_tools=history.loaded_tools,
            depth=history.depth, conversation_id=history.conversation_id,
            fragments=[fragment("history", history.prefix, history.depth - 1),
                       fragment(turn.response["id"], self._own_fragment(turn, self.kind), history.depth)])

    def _stored_fragments(self, turn: Turn) -> dict[str, dict[str, Any]]:
        """For each upstream kind: the fragment to store (with a conversation's items before it) and
        the checkpoint segment, where the turn is at a checkpoint and the levels above have one."""
        history, replay = turn.history, self.settings.reasoning_replay
        stored: dict[str, dict[str, Any]] = {}
        for kind in KINDS.values():
            own = self._own_fragment(turn, kind)
            before, segment = "", None
            if history.conversation_id:
                before = (history.prefix if kind is self.kind
                          else kind.encode(history.conversation_items, ToolMap(), replay))
            if history.compacted or turn.compacting:
                segment = own       # a segment without skip_parent: the chain walk stops here
            elif history.checkpoint:
                texts = [level.for_kind(kind.name) for level in history.checkpoint[0]]
                known = [text for text in texts if text is not None]
                segment = join_fragments(*known, own) if len(known) == len(texts) else None
            stored[kind.name] = {"fragment": join_fragments(before, own), "segment": segment}
        return stored

    def _persist(self, turn: Turn, builder: EventBuilder) -> None:
        """Record the response (store) and extend its conversation before the terminal event."""
        turn.error = builder.error
        if isinstance(builder, compaction.CompactionEvents):
            turn.summary = builder.summary_text()
        request, response, history = turn.request, turn.response, turn.history
        try:
            if request["store"]:
                stored = self._stored_fragments(turn)
                self.repository.save_response(StoredTurn(
                    response=response, request=kept_request(request), input_items=turn.input_items,
                    chat_fragment=stored["chat"]["fragment"], segment=stored["chat"]["segment"],
                    responses_fragment=stored["responses"]["fragment"],
                    responses_segment=stored["responses"]["segment"],
                    skip_parent=history.checkpoint[1] if history.checkpoint else None,
                    fragment_version=self.history.version, loaded_tools=history.loaded_tools,
                    depth=history.depth, conversation_id=history.conversation_id))
            elif history.conversation_id:
                self.repository.add_conversation_items(history.conversation_id, turn.input_items + response["output"])
        except Exception:
            log.exception("could not store response %s", response["id"])
            if builder.error is None:
                builder.fail(server_error(500, "The response could not be stored; it cannot be continued."))
                turn.error = builder.error
