"""Query parameters of cursor-paged item lists (`after`, `before`, `limit` 1–100 default 20, `order`,
`include`), and the fields `include` asks for."""
from __future__ import annotations

from typing import Any

from flask import request

from gateway.errors import invalid_request

# What `include` may name (responses-api.md §2.7). The gateway keeps items whole, so only the two
# fields it holds back unless asked are acted on; the rest concern hosted tools it does not run.
INCLUDABLE = ("reasoning.encrypted_content", "message.output_text.logprobs", "message.input_image.image_url",
              "computer_call_output.output.image_url", "file_search_call.results", "web_search_call.results",
              "web_search_call.action.sources", "code_interpreter_call.outputs")


def page_params(before: bool = False) -> dict:
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
    params = {"after": request.args.get("after") or None, "limit": limit, "order": order}
    if before:
        params["before"] = request.args.get("before") or None
    return params


def include_params() -> set[str]:
    """`include` / `include[]`, each value one the API knows."""
    values = set(request.args.getlist("include") + request.args.getlist("include[]"))
    unknown = sorted(values - set(INCLUDABLE))
    if unknown:
        raise invalid_request(f"Unknown include value {unknown[0]!r}; supported: {', '.join(INCLUDABLE)}.",
                              param="include")
    return values


def with_includes(items: list[dict[str, Any]], include: set[str]) -> list[dict[str, Any]]:
    """Items as listed: sealed reasoning and output-text logprobs only when `include` asks for them."""
    return [_included(item, include) for item in items]


def _included(item: dict[str, Any], include: set[str]) -> dict[str, Any]:
    if item.get("type") == "reasoning" and "reasoning.encrypted_content" not in include:
        return {k: v for k, v in item.items() if k != "encrypted_content"}
    if (item.get("type") == "message" and isinstance(item.get("content"), list)
            and "message.output_text.logprobs" not in include):
        content = [{k: v for k, v in part.items() if k != "logprobs"}
                   if isinstance(part, dict) and part.get("type") == "output_text" else part
                   for part in item["content"]]
        return {**item, "content": content}
    return item
