"""Hand-built `StoredTurn`s, shaped like the ones `gateway.engine.Engine._persist` stores."""
from __future__ import annotations

import json
from typing import Any

from storage.repository import Repository, StoredTurn

CREATED_AT = 1_700_000_000
FRAGMENT_VERSION = 2


def message(item_id: str, role: str, text: str) -> dict[str, Any]:
    content_type = "output_text" if role == "assistant" else "input_text"
    item = {"id": item_id, "type": "message", "role": role,
            "content": [{"type": content_type, "text": text}]}
    if role == "assistant":
        item["status"] = "completed"
        item["content"][0]["annotations"] = []
    return item


def fragment(*messages: dict[str, Any]) -> str:
    """Chat messages as stored in `chat_fragment`: JSON objects joined by commas."""
    return ",".join(json.dumps(m, separators=(",", ":")) for m in messages)


def make_turn(response_id: str, *, previous: str | None = None, depth: int = 0,
              inputs: list[dict[str, Any]] | None = None, outputs: list[dict[str, Any]] | None = None,
              chat_fragment: str | None = None, request: dict[str, Any] | None = None,
              loaded_tools: list[dict[str, Any]] | None = None, conversation_id: str | None = None,
              **response_fields: Any) -> StoredTurn:
    inputs = [message(f"msg_in_{response_id}", "user", f"question {response_id}")] if inputs is None else inputs
    outputs = [message(f"msg_out_{response_id}", "assistant", f"answer {response_id}")] if outputs is None else outputs
    response = {"id": response_id, "object": "response", "created_at": CREATED_AT + depth,
                "status": "completed", "model": "fake-model", "previous_response_id": previous,
                "output": outputs, "usage": {"input_tokens": 3, "output_tokens": 5, "total_tokens": 8},
                "metadata": {}, **response_fields}
    if chat_fragment is None:
        chat_fragment = fragment({"role": "user", "content": f"question {response_id}"},
                                 {"role": "assistant", "content": f"answer {response_id}"})
    return StoredTurn(response=response, request=request if request is not None else {"model": "fake-model"},
                      input_items=inputs, chat_fragment=chat_fragment, fragment_version=FRAGMENT_VERSION,
                      loaded_tools=loaded_tools or [], depth=depth, conversation_id=conversation_id)


def save_chain(repo: Repository, ids: list[str], **kwargs: Any) -> list[StoredTurn]:
    """Save `ids` as one chain (ids[0] the root); returns the turns saved."""
    turns = []
    previous = None
    for depth, response_id in enumerate(ids):
        turn = make_turn(response_id, previous=previous, depth=depth, **kwargs)
        repo.save_response(turn)
        turns.append(turn)
        previous = response_id
    return turns
