"""A turn before it streams: the `Turn` every transport hands to the engine, and `TurnBuilder`,
which validates a create request, resolves what it continues from and translates it for an
upstream kind. `prepare()` raises an `APIError` before anything is streamed."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Generator, Mapping

from gateway import compaction, proxy
from gateway.config import Settings
from gateway.crypto import ReasoningCipher
from gateway.errors import APIError, invalid_request
from gateway.history import History, HistoryResolver, ParentCache, check_outputs_answer_calls
from gateway.ids import new_id
from gateway.tools import ToolMap
from gateway.translate.inputs import normalize_input
from gateway.translate.resource import new_response
from gateway.upstream.client import forwardable
from gateway.upstream.kinds import CHAT, RESPONSES, UpstreamKind
from schemas import parse_create_request
from storage.repository import Repository

_ID_PREFIX = {"message": "msg", "function_call_output": "fco", "custom_tool_call_output": "ctco",
              "function_call": "fc", "reasoning": "rs"}
_INHERITED = ("tools", "tool_choice")


@dataclass
class Turn:
    """Everything one response needs, computed before the first byte is sent."""

    request: dict[str, Any]
    input_items: list[dict[str, Any]]          # as stored and listed (every item has an id)
    upstream_items: list[dict[str, Any]]       # as translated (replayed reasoning opened)
    tool_map: ToolMap
    history: History
    body: bytes
    input_fragment: str
    response: dict[str, Any]
    proxy: bool = False
    forward_headers: dict[str, str] = field(default_factory=dict)
    error: APIError | None = None
    own_fragments: dict[str, str] = field(default_factory=dict)   # upstream kind → this turn's history
    upstream_status: int | None = None        # the upstream's HTTP answer (access log, metrics)
    cancelled: APIError | None = None         # set by Engine.cancel: the client went away
    refused: APIError | None = None           # it failed before streaming: upstream refused, or not recordable
    first_delta_at: float | None = None       # time.monotonic() of the first output delta
    compacting: bool = False                  # compaction_trigger: the output is one compaction item
    summary: str = ""                         # the summary such a turn sealed
    leading_items: list[dict[str, Any]] = field(default_factory=list)   # a compaction done first

    def batches(self, upstream: Any, feed: Any) -> Generator[list[dict[str, Any]], None, None]:
        """Each upstream payload through `feed` (a decoder or the proxy's relay); the non-empty
        batches of events, noting when the first output delta (text, reasoning or tool arguments)
        was produced."""
        for payload in upstream.payloads():
            events = feed(payload)
            if events:
                if self.first_delta_at is None and any(e["type"].endswith(".delta") for e in events):
                    self.first_delta_at = time.monotonic()
                yield events


def kept_request(request: dict[str, Any]) -> dict[str, Any]:
    """The request as kept with its response, for a continuation to inherit from: without the
    input (stored as items) and without fields left unset."""
    return {k: v for k, v in request.items() if v is not None and k != "input"}


def with_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Input items as stored and listed: every item gets an id (clients' own ids are kept)."""
    return [item if item.get("id") else {"id": new_id(_ID_PREFIX.get(str(item.get("type")), "item")), **item}
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


class TurnBuilder:
    """Builds turns for one tenant's engine (its repository) and upstream kind."""

    def __init__(self, settings: Settings, repository: Repository, cipher: ReasoningCipher, kind: UpstreamKind,
                 history: HistoryResolver) -> None:
        self.settings, self.repository, self.cipher = settings, repository, cipher
        self.kind, self.history = kind, history

    def prepare(self, body: Any, cache: ParentCache | None = None,
                headers: Mapping[str, str] | None = None) -> Turn:
        """Validate and translate; `cache` holds a WebSocket connection's recent responses, `headers`
        are the client's (passed on by the proxy path only)."""
        request = parse_create_request(body)
        if request["background"] and (cache is not None or not request["store"]):
            raise invalid_request("background mode needs store: true, and is not available over WebSocket.",
                                  param="background")
        items = with_ids(self._resolve_references(normalize_input(request["input"])))
        compacting = compaction.check_trigger(items)
        if compacting:
            request["tools"] = []           # the model writes the summary; it calls nothing
        model = self.settings.upstream_model(request["model"])
        if self.kind is RESPONSES and cache is None and proxy.proxied(request, items):
            check_outputs_answer_calls(items, History())
            if not items and not request.get("instructions"):
                raise invalid_request("The request has no input: send `input` or `instructions`.", param="input")
            return Turn(request=request, input_items=items, upstream_items=items, tool_map=ToolMap(),
                        history=History(),
                        # Always streamed upstream: a non-streaming client's answer is the stream's
                        # final Response, and the stream can be ended the moment that client leaves.
                        body=json.dumps({**body, "model": model, "stream": True}).encode("utf-8"),
                        input_fragment="", response=new_response(request), proxy=True,
                        forward_headers=forwardable(headers or {}))
        history, tool_map, revealed, upstream = self._translate(request, items, model, cache, self.kind, self.history)
        if (not upstream.input_fragment and not request.get("instructions") and not history.prefix
                and request.get("generate") is not False):
            raise invalid_request("The request has no input: send `input` or `instructions`.", param="input")
        response = new_response(request)
        if history.conversation_id:
            response["conversation"] = {"id": history.conversation_id}
        return Turn(request=request, input_items=items, upstream_items=revealed, tool_map=tool_map, history=history,
                    body=upstream.body, input_fragment=upstream.input_fragment, response=response,
                    compacting=compacting)

    def _translate(self, request: dict[str, Any], items: list[dict[str, Any]], model: str,
                   cache: ParentCache | None, kind: UpstreamKind, resolver: HistoryResolver):
        """What the turn continues from, its tools and its upstream request for `kind`."""
        history = resolver.resolve(request, items, cache)
        compacting = bool(items) and items[-1].get("type") == compaction.TRIGGER
        if compaction.has_compaction(items):
            history.drop_for_compaction()
        if compacting:
            history.checkpoint = None   # its stored history is the summary alone (Engine._own_fragment)
        if not history.compacted:
            check_outputs_answer_calls(items, history)
        if history.parent is not None:
            for key in _INHERITED:
                if request.get(key) is None:
                    request[key] = history.parent.request.get(key)
        history.loaded_tools += loaded_tools(items)
        tool_map = ToolMap.build(request["tools"], loaded=history.loaded_tools)
        revealed = compaction.open_compactions(self.cipher.reveal(items), self.cipher.open)
        if compacting:
            revealed = revealed[:-1] + [compaction.summary_request()]
        upstream = kind.build(request, revealed, tool_map, model, history.prefix, self.settings.reasoning_replay)
        return history, tool_map, revealed, upstream

    def chat_prompt(self, body: Any) -> dict[str, Any]:
        """The request as a chat model sees it (model, messages, tools), for counting its tokens:
        validated, continued and lowered as a turn is, translated for chat whatever the upstream
        kind (vLLM's `/tokenize` counts chat messages with the model's chat template)."""
        request = parse_create_request(body)
        items = with_ids(self._resolve_references(normalize_input(request["input"])))
        model = self.settings.upstream_model(request["model"])
        resolver = self.history if self.kind is CHAT else HistoryResolver(
            self.repository, CHAT, self.settings.reasoning_replay)
        upstream = self._translate(request, items, model, None, CHAT, resolver)[3]
        payload = json.loads(upstream.body)
        prompt = {"model": model, "messages": payload["messages"]}
        if payload.get("tools"):
            prompt["tools"] = payload["tools"]
        return prompt

    def _resolve_references(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`item_reference` items become the tenant's stored items they name (one query)."""
        wanted = [str(item.get("id")) for item in items if item.get("type") == "item_reference"]
        if not wanted:
            return items
        found = self.repository.find_items(wanted)
        for index, item in enumerate(items):
            if item.get("type") == "item_reference" and item.get("id") not in found:
                raise invalid_request(f"Item with id '{item.get('id')}' not found.", param=f"input[{index}].id",
                                      code="item_not_found")
        return [found[item["id"]] if item.get("type") == "item_reference" else item for item in items]

