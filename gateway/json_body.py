"""Parsing request JSON (HTTP bodies and WebSocket frames) strictly, so that input that parses but
cannot be stored, encoded or walked is refused with a 400 before anything else sees it.

Refused: invalid UTF-8 or JSON, the bare `NaN`/`Infinity` Python's parser would accept, lone UTF-16
surrogates (they cannot be encoded to UTF-8, so they would fail at storage or upstream), and
nesting deeper than any Responses request needs (deep nesting exhausts the recursion of every
later encoder).
"""
from __future__ import annotations

import json
import re
from typing import Any

from gateway.errors import APIError

MAX_DEPTH = 64
# An escaped UTF-16 surrogate; only then can a parsed string hold a lone one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def invalid_json(detail: str) -> APIError:
    return APIError(400, f"We could not parse the JSON body of your request: {detail}", code="invalid_json")


def _reject_constant(name: str) -> Any:
    raise invalid_json(f"{name} is not valid JSON; send numbers as finite values or strings.")


def _check(value: Any, strings: bool) -> None:
    """Depth of containers (iteratively, whatever the depth) and, when asked, lone surrogates."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = list(node.values()) + (list(node) if strings else [])
        elif isinstance(node, list):
            children = node
        else:
            if strings and isinstance(node, str):
                try:
                    node.encode("utf-8")
                except UnicodeEncodeError:
                    raise invalid_json("a string holds a lone UTF-16 surrogate (\\ud800-\\udfff).") from None
            continue
        if depth > MAX_DEPTH:
            raise invalid_json(f"values are nested more than {MAX_DEPTH} levels deep.")
        stack.extend((child, depth + 1) for child in children)


def parse_json(data: bytes | str) -> Any:
    """The parsed value, or a 400 `invalid_json` APIError saying what is wrong."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except APIError:
        raise
    except RecursionError:
        raise invalid_json(f"values are nested more than {MAX_DEPTH} levels deep.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_json("the body must be a JSON object in UTF-8.") from exc
    _check(value, strings=bool(_SURROGATE_ESCAPE.search(raw)))
    return value


def has_nul(text: str) -> bool:
    return "\x00" in text
