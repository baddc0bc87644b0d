"""Turn a marshmallow ValidationError into one OpenAI-shaped 400 naming the field."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError

from gateway.errors import APIError

_BUCKETS = ("_schema", "key", "value")  # marshmallow's schema-level and Dict key/value buckets


def _order(key: Any) -> tuple:
    text = str(key)
    return (text in _BUCKETS, 0 if text.isdecimal() else 1, int(text) if text.isdecimal() else 0, text)


def _first_error(messages: Any, path: list[str]) -> tuple[list[str], str]:
    if isinstance(messages, dict):
        # Prefer real fields over buckets, and the lowest list index (input[2] before input[10]).
        key = sorted(messages, key=_order)[0]
        child = path if str(key) in _BUCKETS and path else path + [str(key)]
        return _first_error(messages[key], child)
    if isinstance(messages, list) and messages:
        return _first_error(messages[0], path)
    return path, str(messages)


def _render_path(parts: list[str]) -> str:
    rendered = ""
    for part in parts:
        if part.isdecimal():
            rendered += f"[{part}]"
        else:
            rendered += ("." if rendered else "") + part
    return rendered


def validation_error_to_api(error: ValidationError) -> APIError:
    path, message = _first_error(error.messages, [])
    param = _render_path(path) or None
    text = f"Invalid value for '{param}': {message}" if param else message
    return APIError(400, text, param=param, code="invalid_value" if param else None)


def load_body(schema: Schema, body: Any) -> dict[str, Any]:
    """Validate a JSON request body with `schema`; any problem is an OpenAI-shaped 400."""
    if not isinstance(body, dict):
        raise APIError(400, "The request body must be a JSON object.", code="invalid_json")
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise validation_error_to_api(exc) from exc
