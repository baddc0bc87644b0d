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

import time
from typing import Any, Callable, Hashable

from gateway.errors import APIError, invalid_request, server_error
from gateway.ids import new_id
from gateway.translate.from_upstream import EventBuilder

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

    def incomplete(self, reason: str) -> list[dict[str, Any]]:
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
