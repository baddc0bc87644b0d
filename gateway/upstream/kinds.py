"""What differs between the upstream APIs, behind one small interface.

An `UpstreamKind` knows where its requests go, how a turn becomes a request body (with the stored
history spliced in unencoded), how items are encoded as a stored history fragment, and which
decoder turns its stream into EventBuilder operations. The engine, storage, the ToolMap and the
builder use it without knowing which kind it is. Every stored response keeps a fragment for each
kind, so a database keeps its chains continuable when `UPSTREAM_API` changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from gateway.tools import ToolMap
from gateway.translate.from_chat import ChatDecoder
from gateway.translate.from_responses import ResponsesDecoder
from gateway.translate.from_upstream import EventBuilder
from gateway.translate.inputs import encode_objects
from gateway.translate.to_chat import build_chat_request, encode_chat_request, encode_messages
from gateway.translate.to_responses import build_responses_request, encode_items, encode_responses_request


class Decoder(Protocol):
    def feed(self, payload: Any) -> list[dict[str, Any]]: ...

    def end(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class UpstreamRequest:
    body: bytes
    input_fragment: str     # the new input items, encoded as this kind stores history


@dataclass(frozen=True)
class UpstreamKind:
    name: str
    path: str
    build: Callable[[dict[str, Any], list[dict[str, Any]], ToolMap, str, str, bool], UpstreamRequest]
    encode: Callable[[list[dict[str, Any]], ToolMap, bool], str]
    decoder: Callable[[EventBuilder], Decoder]


def _build_chat(request: dict[str, Any], items: list[dict[str, Any]], tool_map: ToolMap, model: str,
                history: str, replay_reasoning: bool) -> UpstreamRequest:
    payload = build_chat_request(request, items, tool_map, model, replay_reasoning)
    history_index = 1 if request.get("instructions") else 0  # history goes after the system message
    return UpstreamRequest(encode_chat_request(payload, history, history_index),
                           encode_objects(payload["messages"][history_index:]))


def _build_responses(request: dict[str, Any], items: list[dict[str, Any]], tool_map: ToolMap, model: str,
                     history: str, replay_reasoning: bool) -> UpstreamRequest:
    payload = build_responses_request(request, items, tool_map, model, replay_reasoning)
    return UpstreamRequest(encode_responses_request(payload, history), encode_objects(payload["input"]))


CHAT = UpstreamKind("chat", "/chat/completions", _build_chat, encode_messages, ChatDecoder)
RESPONSES = UpstreamKind("responses", "/responses", _build_responses, encode_items, ResponsesDecoder)
KINDS = {kind.name: kind for kind in (CHAT, RESPONSES)}
