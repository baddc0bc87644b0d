"""`/v1/conversations`: create, retrieve, update, delete, and their items."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from gateway.api import scope
from gateway.api.pagination import include_params, page_params, with_includes
from gateway.api.responses import json_body
from gateway.errors import APIError
from gateway.ids import new_id
from gateway.translate.inputs import normalize_input
from gateway.turn import with_ids
from schemas.conversations import ConversationCreateSchema, ConversationItemsSchema, ConversationUpdateSchema
from schemas.errors import load_body

bp = Blueprint("conversations", __name__, url_prefix="/v1")
_CREATE, _UPDATE, _ITEMS = ConversationCreateSchema(), ConversationUpdateSchema(), ConversationItemsSchema()


def _not_found(conversation_id: str) -> APIError:
    return APIError(404, f"Conversation with id '{conversation_id}' not found.", param="conversation_id",
                    code="not_found")


def _optional_body() -> object:
    return json_body() if request.get_data() else {}


@bp.post("/conversations")
def create_conversation():
    body = load_body(_CREATE, _optional_body())
    items = with_ids(normalize_input(body["items"]))
    conversation = scope().records.create_conversation(new_id("conv"), body["metadata"] or {}, items)
    return jsonify(conversation)


@bp.get("/conversations/<conversation_id>")
def get_conversation(conversation_id: str):
    conversation = scope().records.get_conversation(conversation_id)
    if conversation is None:
        raise _not_found(conversation_id)
    return jsonify(conversation)


@bp.post("/conversations/<conversation_id>")
def update_conversation(conversation_id: str):
    body = load_body(_UPDATE, json_body())
    conversation = scope().records.update_conversation(conversation_id, body["metadata"])
    if conversation is None:
        raise _not_found(conversation_id)
    return jsonify(conversation)


@bp.delete("/conversations/<conversation_id>")
def delete_conversation(conversation_id: str):
    if not scope().records.delete_conversation(conversation_id):
        raise _not_found(conversation_id)
    return jsonify({"id": conversation_id, "object": "conversation.deleted", "deleted": True})


@bp.post("/conversations/<conversation_id>/items")
def add_items(conversation_id: str):
    items = with_ids(normalize_input(load_body(_ITEMS, json_body())["items"]))
    if not scope().records.add_conversation_items(conversation_id, items):
        raise _not_found(conversation_id)
    return jsonify({"object": "list", "data": items, "first_id": items[0]["id"], "last_id": items[-1]["id"],
                    "has_more": False})


@bp.get("/conversations/<conversation_id>/items")
def list_items(conversation_id: str):
    include = include_params()
    page = scope().records.list_conversation_items(conversation_id, **page_params())
    if page is None:
        raise _not_found(conversation_id)
    page.data = with_includes(page.data, include)
    return jsonify(page.to_dict())


@bp.get("/conversations/<conversation_id>/items/<item_id>")
def get_item(conversation_id: str, item_id: str):
    item = scope().records.get_conversation_item(conversation_id, item_id)
    if item is None:
        raise APIError(404, f"Item with id '{item_id}' not found.", param="item_id", code="not_found")
    return jsonify(item)


@bp.delete("/conversations/<conversation_id>/items/<item_id>")
def delete_item(conversation_id: str, item_id: str):
    records = scope().records
    if not records.delete_conversation_item(conversation_id, item_id):
        raise APIError(404, f"Item with id '{item_id}' not found.", param="item_id", code="not_found")
    return jsonify(records.get_conversation(conversation_id))
