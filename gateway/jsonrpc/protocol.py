"""JSON-RPC 2.0 as agent hosts speak it: one JSON object per line (stdio) or per WebSocket frame,
the `"jsonrpc": "2.0"` member optional (Codex's app-server omits it).

The gateway answers in the host's dialect: once a host's message carries `"jsonrpc": "2.0"`, so do
the gateway's; until then they omit it, as Codex's do.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.errors import APIError
from gateway.json_body import parse_json
from gateway.sse import event_json

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class RpcError(Exception):
    """A message the gateway answers with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, id: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.id = code, message, id


@dataclass
class Message:
    kind: str              # "request", "notification" or "response" (an answer from the host)
    method: str | None
    id: Any
    params: Any
    tagged: bool           # carried "jsonrpc": "2.0"


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def read_message(raw: str | bytes) -> Message:
    """The message, or an `RpcError` saying why it is not one (with its id where it has a usable one)."""
    try:
        value = parse_json(raw)
    except APIError as error:
        raise RpcError(PARSE_ERROR, f"Parse error: {error.message}") from None
    if not isinstance(value, dict):
        raise RpcError(INVALID_REQUEST, "Invalid request: a message must be one JSON object (batches are not "
                                        "supported).")
    msg_id = value.get("id")
    answer_id = msg_id if _valid_id(msg_id) else None
    tagged = value.get("jsonrpc") == "2.0"
    if "jsonrpc" in value and not tagged:
        raise RpcError(INVALID_REQUEST, "Invalid request: 'jsonrpc' must be \"2.0\" when present.", answer_id)
    method = value.get("method")
    if method is None and "id" in value and ("result" in value or "error" in value):
        return Message("response", None, msg_id, None, tagged)
    if not isinstance(method, str) or not method:
        raise RpcError(INVALID_REQUEST, "Invalid request: 'method' must be a non-empty string.", answer_id)
    params = value.get("params")
    if "params" in value and not isinstance(params, (dict, list)):
        raise RpcError(INVALID_REQUEST, "Invalid request: 'params' must be an object or an array.", answer_id)
    if "id" not in value:
        return Message("notification", method, None, params, tagged)
    if not _valid_id(msg_id):
        raise RpcError(INVALID_REQUEST, "Invalid request: 'id' must be a string or an integer.")
    return Message("request", method, msg_id, params, tagged)


def _encode(payload: dict[str, Any], tagged: bool) -> str:
    return _ENCODER.encode({"jsonrpc": "2.0", **payload} if tagged else payload)


def result_message(msg_id: Any, result: dict[str, Any], tagged: bool) -> str:
    return _encode({"id": msg_id, "result": result}, tagged)


def error_message(msg_id: Any, code: int, message: str, tagged: bool) -> str:
    return _encode({"id": msg_id, "error": {"code": code, "message": message}}, tagged)


def event_notification(call_id: str, event: dict[str, Any], tagged: bool) -> str:
    """`responsesApi/event`, the event's JSON exactly as an SSE `data:` line carries it."""
    prefix = '{"jsonrpc":"2.0",' if tagged else "{"
    return (f'{prefix}"method":"responsesApi/event","params":{{"callId":{_ENCODER.encode(call_id)},'
            f'"event":{event_json(event)}}}}}')
