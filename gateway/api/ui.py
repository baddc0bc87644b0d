"""`/ui/`: the session viewer, served by the gateway itself (`UI_ENABLED=0` turns it off).

The page (a template, with its script and style from this blueprint's static folder: nothing is
fetched from outside the machine) is public; everything it shows comes from `/ui/api/…`, which
needs the same API key as `/v1/` and shows only that key's tenant. The page asks for the key and
keeps it in the browser's session storage. A chain is read a page of turns at a time (the newest
first, earlier ones on demand), so a 1,000-turn chain loads as fast as a short one.
"""
from __future__ import annotations

import os
import time

from flask import Blueprint, jsonify, render_template, request

from gateway import __version__
from gateway.api import scope
from gateway.api.responses import not_found
from gateway.errors import APIError, invalid_request

_HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ui")
bp = Blueprint("ui", __name__, url_prefix="/ui", template_folder=os.path.join(_HERE, "templates"),
               static_folder=os.path.join(_HERE, "static"))
PAGE_TURNS = 50


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(request.args.get(name, default))
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise invalid_request(f"{name} must be an integer between {low} and {high}.", param=name)
    return value


@bp.get("/")
def page():
    return render_template("ui/index.html", version=__version__)


@bp.get("/api/sessions")
def sessions():
    """The tenant's chains and conversations, newest first; `q` finds one by its id."""
    records = scope().records
    query = request.args.get("q", "").strip()
    if query:
        return jsonify({"data": _find(records, query)})
    days = _int_arg("days", 0, 0, 3650)
    found = records.list_sessions(limit=_int_arg("limit", 50, 1, 200), status=request.args.get("status") or None,
                                  model=request.args.get("model") or None,
                                  since=int(time.time() - days * 86400) if days else None)
    return jsonify({"data": found})


def _find(records, query: str) -> list[dict]:
    if query.startswith("conv_"):
        items = records.conversation_items(query)
        return [] if items is None else [{"kind": "conversation", "id": query, "items": len(items),
                                          "created_at": None, "status": None, "model": None, "turns": None,
                                          "tokens": None}]
    response = records.get_response(query)
    if response is None:
        return []
    usage = response.get("usage") or {}
    return [{"kind": "chain", "id": query, "created_at": response.get("created_at"), "status": response.get("status"),
             "model": response.get("model"), "turns": None, "tokens": usage.get("total_tokens")}]


@bp.get("/api/chains/<response_id>")
def chain(response_id: str):
    """The chain ending at `response_id`: its last `limit` turns, oldest first."""
    turns = scope().records.chain_turns(response_id, limit=_int_arg("limit", PAGE_TURNS, 1, 200))
    if turns is None:
        raise not_found(response_id)
    return jsonify({"data": turns, "earlier": turns[0]["response"].get("previous_response_id") if turns else None})


@bp.get("/api/conversations/<conversation_id>")
def conversation(conversation_id: str):
    items = scope().records.conversation_items(conversation_id)
    if items is None:
        raise APIError(404, f"Conversation with id '{conversation_id}' not found.", param="conversation_id",
                       code="not_found")
    return jsonify({"data": items})
