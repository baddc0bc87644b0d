"""Query parameters of cursor-paged lists (`after`, `limit` 1–100 default 20, `order`)."""
from __future__ import annotations

from flask import request

from gateway.errors import invalid_request


def page_params() -> dict:
    raw_limit = request.args.get("limit", "20")
    try:
        limit = int(raw_limit)
    except ValueError:
        raise invalid_request("limit must be an integer between 1 and 100.", param="limit")
    if not 1 <= limit <= 100:
        raise invalid_request("limit must be an integer between 1 and 100.", param="limit")
    order = request.args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid_request("order must be 'asc' or 'desc'.", param="order")
    return {"after": request.args.get("after") or None, "limit": limit, "order": order}
