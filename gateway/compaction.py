"""Compaction: the context so far, summarized by the upstream model and sealed (with the key that
seals reasoning) into one `compaction` item (responses-api.md §1, §4.1).

- `POST /v1/responses/compact` answers with the context's user messages and that item.
- `compaction_trigger` as the last input item of a create request makes the response's output that
  one item (`CompactionEvents`).
- A `compaction` item in a later input is opened and given to the model as the summary of all that
  came before it: what a continuation inherits (`previous_response_id`) is dropped, and the stored
  response becomes where later continuations stop walking the chain.
"""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Callable, Hashable, Mapping

from gateway.errors import APIError, invalid_request, server_error
from gateway.ids import new_id
from gateway.translate.from_upstream import EventBuilder
from gateway.translate.inputs import normalize_input
from gateway.upstream.kinds import CHAT
from schemas import parse_compact_request

if TYPE_CHECKING:
    from gateway.engine import Engine
    from gateway.history import ParentCache
    from gateway.turn import Turn

PURPOSE = "compaction"
TRIGGER = "compaction_trigger"
SUMMARY_REQUEST = (
    "Context checkpoint. The conversation above is about to be replaced by a summary, and another model "
    "will continue the work from that summary alone. Write it now as a handoff: the user's goal and "
    "constraints, what has been done and decided (and why), the current state of files, commands and "
    "results that matter, open problems, and the exact next step. Be complete but concise; write only "
    "the summary.")
SUMMARY_INTRO = ("Summary of the earlier part of this conversation, written at a context checkpoint (the "
                 "messages it replaces are not shown):\n\n")


def summary_request() -> dict[str, Any]:
    """The user message that asks the model for the checkpoint summary."""
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": SUMMARY_REQUEST}]}


def summary_message(text: str) -> dict[str, Any]:
    """An opened compaction item, as the model is given it."""
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": SUMMARY_INTRO + text}]}


def compaction_item(encrypted_content: str) -> dict[str, Any]:
    return {"id": new_id("cmp"), "type": "compaction", "encrypted_content": encrypted_content}


def has_compaction(items: list[dict[str, Any]]) -> bool:
    return any(item.get("type") == "compaction" for item in items)


def open_compactions(items: list[dict[str, Any]], open_blob: Callable[[Any, str], str | None]) -> list[dict[str, Any]]:
    """Items for the model: each compaction item becomes its summary. One this gateway cannot open
    is refused, never dropped: the model would silently lose everything it stands for."""
    opened = []
    for index, item in enumerate(items):
        if item.get("type") != "compaction":
            opened.append(item)
            continue
        text = open_blob(item.get("encrypted_content"), PURPOSE)
        if text is None:
            raise invalid_request(f"The compaction item input[{index}] cannot be opened by this gateway: it was "
                                  "made by another server or with another REASONING_KEY. Send the context it "
                                  "replaced instead.", param=f"input[{index}].encrypted_content",
                                  code="invalid_compaction")
        opened.append(summary_message(text))
    return opened


def check_trigger(items: list[dict[str, Any]]) -> bool:
    """Whether the input asks for compaction (`compaction_trigger` must be its last item)."""
    positions = [index for index, item in enumerate(items) if item.get("type") == TRIGGER]
    if positions and positions != [len(items) - 1]:
        raise invalid_request("compaction_trigger must be the last input item.", param=f"input[{positions[0]}]")
    return bool(positions)


def kept_user_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a compaction keeps verbatim: the context's user messages, in order."""
    return [item for item in items if item.get("type") == "message" and item.get("role") == "user"]


def compacted(final: dict[str, Any], context: list[dict[str, Any]]) -> dict[str, Any]:
    """The `response.compaction` object `/v1/responses/compact` answers with, from the final
    response of its compaction turn: the context's user messages, then the compaction item."""
    return {"id": final["id"], "object": "response.compaction", "created_at": int(time.time()),
            "output": kept_user_messages(context) + final["output"], "usage": final["usage"]}


def threshold(request: dict[str, Any]) -> int | None:
    """`context_management: [{"type": "compaction", "compact_threshold": N}]`: N, if asked."""
    for entry in request.get("context_management") or []:
        if entry.get("type") == "compaction" and entry.get("compact_threshold"):
            return entry["compact_threshold"]
    return None


def split_newest(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(what a compaction done first summarizes, what it keeps as the new request): the input from
    its last user message on is the new request; everything before it, and the chain, is context."""
    users = [index for index, item in enumerate(items) if item.get("type") == "message" and item.get("role") == "user"]
    cut = users[-1] if users else 0
    return items[:cut], items[cut:]


class CompactionEvents(EventBuilder):
    """The events of a `compaction_trigger` turn. The model writes the summary, which is never
    shown: progress is reported by `response.compaction.compacting` events, and the output is one
    `compaction` item holding the sealed summary."""

    def __init__(self, response: dict[str, Any], tool_map: Any, seal: Callable[[str, str], str]) -> None:
        super().__init__(response, tool_map)
        self.seal_compaction = seal
        self.summary: list[str] = []
        self.item = compaction_item("")

    def _compacting(self) -> list[dict[str, Any]]:
        if not self.response["output"]:
            self.response["output"].append(self.item)
            return [self._event("response.output_item.added", output_index=0, item=dict(self.item)),
                    self._event("response.compaction.compacting", item_id=self.item["id"], output_index=0)]
        return [self._event("response.compaction.compacting", item_id=self.item["id"], output_index=0)]

    def reasoning(self, text: str, key: Hashable = None) -> list[dict[str, Any]]:
        return self._compacting() if text else []

    def text(self, text: str, logprobs: list | None = None, key: Hashable = None) -> list[dict[str, Any]]:
        if not text:
            return []
        self.summary.append(text)
        return self._compacting()

    def call(self, key: Hashable, name: str | None, arguments: str) -> list[dict[str, Any]]:
        return []      # no tools are offered for the summary; a stray call adds nothing to it

    def complete(self) -> list[dict[str, Any]]:
        events = [] if self.response["output"] else self._compacting()
        self.item["encrypted_content"] = self.seal_compaction("".join(self.summary), PURPOSE)
        events.append(self._event("response.output_item.done", output_index=0, item=dict(self.item)))
        self._set_terminal("completed")
        return events

    def incomplete(self, reason: str | None) -> list[dict[str, Any]]:
        """A summary cut short is no summary: the response fails rather than carry half of one."""
        return self.fail(server_error(502, f"The model's summary was cut short ({reason}); the context was not "
                                           "compacted. Retry, or compact less at once."))

    def fail(self, error: APIError) -> list[dict[str, Any]]:
        """The item, if it was announced, is closed empty: there is no summary to seal."""
        events = ([self._event("response.output_item.done", output_index=0, item=dict(self.item))]
                  if self.response["output"] else [])
        self.error = error
        self._set_terminal("failed", error=error.as_response_error())
        return events

    def summary_text(self) -> str:
        return "".join(self.summary)


# -- runs that need the engine ----------------------------------------------------------------
def compact(engine: Engine, body: Any) -> dict[str, Any]:
    """`POST /v1/responses/compact`: a compaction turn (not stored) over the chain and input."""
    params = parse_compact_request(body)
    if params["input"] is None and not params["previous_response_id"]:
        raise invalid_request("There is nothing to compact: send `input` or `previous_response_id`.",
                              param="input")
    items = normalize_input(params["input"]) + [{"type": TRIGGER}]
    fields = ("previous_response_id", "instructions", "prompt_cache_key")
    turn = engine.prepare({"model": params["model"], "input": items, "store": False,
                           **{key: params[key] for key in fields if params[key] is not None}})
    final = engine.complete(turn)
    inherited = engine.repository.chain_items(params["previous_response_id"]) if params["previous_response_id"] else {}
    return compacted(final, [i for group in inherited.values() for i in group] + turn.input_items)


def context_tokens(engine: Engine, body: dict[str, Any], turn: Turn) -> int:
    """The turn's input in tokens: the upstream's count where it offers one, else the chain's
    size at its last response (its input and output tokens)."""
    try:
        if engine.kind is CHAT:
            payload = json.loads(turn.body)
            prompt = {key: payload[key] for key in ("model", "messages", "tools") if payload.get(key)}
        else:
            prompt = engine.builder.chat_prompt(body)
        count = engine.client.count_tokens(prompt)
    except APIError:
        count = None
    if count is not None:
        return count
    usage = (turn.history.parent.response.get("usage") or {}) if turn.history.parent is not None else {}
    return (usage.get("input_tokens") or 0) + (usage.get("output_tokens") or 0)


def compacted_first(engine: Engine, body: dict[str, Any], turn: Turn, cache: ParentCache | None,
                    headers: Mapping[str, str] | None) -> Turn:
    """`context_management` compaction: a compaction turn over everything but the newest input,
    then the request over the compacted window, its output led by the compaction item."""
    request, history = turn.request, turn.history
    older, newest = split_newest(turn.input_items)
    if not older and history.parent is None and not history.conversation_id:
        return turn     # nothing came before the new request
    carried = {key: request[key] for key in ("previous_response_id", "conversation", "instructions")
               if request.get(key) is not None}
    final = engine.complete(engine.builder.prepare(
        {"model": request["model"], "input": older + [{"type": TRIGGER}], "store": False, **carried},
        cache))
    previous = request.get("previous_response_id")
    inherited = engine.repository.chain_items(previous) if previous else {}
    context = [item for group in inherited.values() for item in group] + older
    window = kept_user_messages(context) + final["output"] + newest
    answer_turn = engine.builder.prepare({**body, "input": window}, cache, headers)
    answer_turn.leading_items = final["output"]
    return answer_turn
