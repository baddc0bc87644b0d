"""What a turn continues from: a stored chain (`previous_response_id`) or a conversation.

The upstream prefix is assembled from the chain's stored fragments for the configured upstream
kind (one string join), falling back to re-translating the chain's items (one query) when a
fragment was written by an older translator, with another `REASONING_REPLAY` setting, or before
the gateway stored that kind's fragments.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.errors import APIError, invalid_request
from gateway.tools import ToolMap
from gateway.translate.inputs import compact, join_fragments
from gateway.upstream.kinds import UpstreamKind
from storage.repository import Fragment, ParentContext, Repository

# Bump when the item → chat message translation changes, so old fragments are re-translated.
TRANSLATION_VERSION = 1
# Every this many levels a stored response carries a checkpoint segment (see storage.models).
CHECKPOINT_EVERY = 32
CLIENT_CALL_TYPES = ("function_call", "custom_tool_call")
OUTPUT_TYPES = {"function_call": "function_call_output", "custom_tool_call": "custom_tool_call_output"}


def fragment_version(replay_reasoning: bool) -> int:
    return TRANSLATION_VERSION * 2 + int(replay_reasoning)


@dataclass
class History:
    prefix: str = ""                                   # encoded upstream history before the new input
    parent: ParentContext | None = None
    conversation_id: str | None = None
    conversation_items: list[dict[str, Any]] = field(default_factory=list)
    loaded_tools: list[dict[str, Any]] = field(default_factory=list)
    depth: int = 0
    checkpoint: tuple[list[Fragment], str | None] | None = None   # (earlier levels, skip parent)
    compacted: bool = False          # the input holds a compaction item: what came before is dropped

    def drop_for_compaction(self) -> None:
        """The context starts over at a compaction (gateway/compaction.py): nothing inherited is sent,
        and the stored response becomes where later continuations stop walking the chain."""
        self.prefix, self.checkpoint, self.compacted = "", None, True


def _not_found(response_id: str) -> APIError:
    return APIError(400, f"Previous response with id '{response_id}' not found.",
                    param="previous_response_id", code="previous_response_not_found")


def conversation_id_of(value: Any) -> str | None:
    if value is None:
        return None
    candidate = value.get("id") if isinstance(value, dict) else value
    if isinstance(candidate, str) and candidate and "\x00" not in candidate:
        return candidate
    raise invalid_request("conversation must be a conversation id or an object with an 'id'.", param="conversation")


def check_pending_calls(parent_output: list[dict[str, Any]], new_input: list[dict[str, Any]]) -> None:
    """A chain that ended in client tool calls must get their outputs in the next input."""
    answered = {(item.get("type"), item.get("call_id")) for item in new_input}
    for item in parent_output:
        kind = item.get("type")
        if kind in CLIENT_CALL_TYPES and (OUTPUT_TYPES[kind], item.get("call_id")) not in answered:
            raise invalid_request(f"No tool output found for function call {item.get('call_id')}.", param="input")


def check_outputs_answer_calls(new_input: list[dict[str, Any]], history: History) -> None:
    """Every tool output must answer a call the model's context holds (responses-api.md §2.3): one
    in this input, in the parent's output or the conversation, or earlier in the chain, whose
    encoded history carries every call id (as JSON strings, whichever the upstream kind)."""
    outputs = [item for item in new_input if item.get("type") in OUTPUT_TYPES.values()]
    if not outputs:
        return
    items = new_input + history.conversation_items + ((history.parent.response.get("output") or [])
                                                     if history.parent is not None else [])
    known = {item.get("call_id") for item in items if item.get("type") in CLIENT_CALL_TYPES}
    for output in outputs:
        call_id = output.get("call_id")
        if call_id not in known and compact(call_id) not in history.prefix:
            raise invalid_request(f"No tool call found for function call output with call_id {call_id}.",
                                  param="input")


def _checkpoint(fragments: list[Fragment], depth: int) -> tuple[list[Fragment], str | None] | None:
    """For a response at a checkpoint depth: the fragments of the CHECKPOINT_EVERY - 1 levels above
    it and the ancestor just before them, when the chain walk returned them one by one."""
    if (depth + 1) % CHECKPOINT_EVERY:
        return None
    low = depth - CHECKPOINT_EVERY
    levels = [f for f in fragments if low < f.depth < depth]
    if len(levels) != CHECKPOINT_EVERY - 1 or any(f.segment for f in levels):
        return None
    skip_parent = next((f.response_id for f in fragments if f.depth == low), None)
    if low >= 0 and skip_parent is None:
        return None
    return levels, skip_parent


class ParentCache:
    """Recent responses of one WebSocket connection, so `store: false` chains can continue with
    only new input (as Codex does). Bounded: least recently used entries are dropped."""

    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity
        self._entries: dict[str, ParentContext] = {}

    def get(self, response_id: str) -> ParentContext | None:
        entry = self._entries.pop(response_id, None)
        if entry is not None:
            self._entries[response_id] = entry
        return entry

    def evict(self, response_id: Any) -> None:
        if isinstance(response_id, str):
            self._entries.pop(response_id, None)

    def put(self, response_id: str, context: ParentContext) -> None:
        self._entries.pop(response_id, None)
        self._entries[response_id] = context
        while len(self._entries) > self.capacity:
            self._entries.pop(next(iter(self._entries)))


class HistoryResolver:
    def __init__(self, repository: Repository, kind: UpstreamKind, replay_reasoning: bool) -> None:
        self.repository = repository
        self.kind = kind
        self.replay_reasoning = replay_reasoning
        self.version = fragment_version(replay_reasoning)

    def resolve(self, request: dict[str, Any], new_input: list[dict[str, Any]],
                cache: ParentCache | None = None) -> History:
        previous_id = request.get("previous_response_id")
        conversation_id = conversation_id_of(request.get("conversation"))
        if previous_id and conversation_id:
            raise invalid_request("previous_response_id and conversation cannot be used together.",
                                  param="conversation")
        if previous_id:
            return self._from_parent(previous_id, new_input, cache)
        if conversation_id:
            return self._from_conversation(conversation_id)
        return History()

    def _from_parent(self, previous_id: str, new_input: list[dict[str, Any]],
                     cache: ParentCache | None) -> History:
        cached = cache.get(previous_id) if cache is not None else None
        parent = cached or self.repository.load_parent(previous_id)
        if parent is None:
            raise _not_found(previous_id)
        if parent.response.get("status") == "in_progress":
            raise invalid_request(f"Previous response with id '{previous_id}' is still in progress; continue from it "
                                  "once it has finished.", param="previous_response_id",
                                  code="previous_response_in_progress")
        check_pending_calls(parent.response.get("output") or [], new_input)
        depth = parent.depth + 1
        texts = [text for fragment in parent.fragments if (text := fragment.for_kind(self.kind.name)) is not None]
        if len(texts) == len(parent.fragments) and all(f.version == self.version for f in parent.fragments):
            prefix = join_fragments(*texts)
            checkpoint = _checkpoint(self._stored_levels(previous_id, depth) if cached else parent.fragments, depth)
        else:
            prefix, checkpoint = self._retranslate(previous_id), None
        return History(prefix=prefix, parent=parent, loaded_tools=list(parent.loaded_tools), depth=depth,
                       checkpoint=checkpoint)

    def _stored_levels(self, previous_id: str, depth: int) -> list[Fragment]:
        """A connection's cache holds its chain as one fragment, which can give no checkpoint. At a
        checkpoint depth, the stored levels are read (one query every CHECKPOINT_EVERY turns), so
        chains stored over a WebSocket continue from storage at the same constant cost as HTTP ones."""
        if (depth + 1) % CHECKPOINT_EVERY:
            return []
        stored = self.repository.load_parent(previous_id)
        if stored is None or any(f.version != self.version or f.for_kind(self.kind.name) is None
                                 for f in stored.fragments):
            return []
        return stored.fragments

    def _retranslate(self, previous_id: str) -> str:
        grouped = self.repository.chain_items(previous_id)
        tool_map = ToolMap()
        return join_fragments(*(self.kind.encode(items, tool_map, self.replay_reasoning) for items in grouped.values()))

    def _from_conversation(self, conversation_id: str) -> History:
        items = self.repository.conversation_items(conversation_id)
        if items is None:
            raise APIError(404, f"Conversation with id '{conversation_id}' not found.", param="conversation",
                           code="not_found")
        prefix = self.kind.encode(items, ToolMap(), self.replay_reasoning)
        return History(prefix=prefix, conversation_id=conversation_id, conversation_items=items)
