#!/usr/bin/env python3
"""A tiny stdio MCP server for the Codex end-to-end tests (standard library only).

JSON-RPC 2.0, one message per line on stdin/stdout. Tools: `echo` (`text` → "echo: <text>") and
`add` (`a` + `b`). Set `MCP_ECHO_LOG=<file>` to append every message in and out to that file.
"""
from __future__ import annotations

import json
import os
import sys
import time

SERVER_INFO = {"name": "echo", "version": "0.1.0"}
DEFAULT_PROTOCOL = "2025-06-18"

TOOLS = [
    {
        "name": "echo",
        "description": "Echo back the given text.",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string", "description": "Text to echo back."}},
            "required": ["text"],
        },
    },
    {
        "name": "add",
        "description": "Add two numbers.",
        "inputSchema": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    },
]


class ToolError(Exception):
    pass


def _log(direction: str, payload: object) -> None:
    path = os.environ.get("MCP_ECHO_LOG")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{time.time():.3f} {direction} {json.dumps(payload, ensure_ascii=False)}\n")
    except OSError:
        pass


def _send(message: dict) -> None:
    _log(">>", message)
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _number(args: dict, key: str) -> float:
    value = args.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ToolError(f"'{key}' must be a number, got {value!r}")
    return value


def call_tool(name: str, args: dict) -> str:
    if name == "echo":
        text = args.get("text")
        if not isinstance(text, str):
            raise ToolError(f"'text' must be a string, got {text!r}")
        return f"echo: {text}"
    if name == "add":
        total = _number(args, "a") + _number(args, "b")
        if isinstance(total, float) and total.is_integer():
            total = int(total)
        return str(total)
    raise ToolError(f"unknown tool {name!r}")


def handle(method: str, params: dict) -> dict:
    """The result for a request; raises LookupError for an unknown method."""
    if method == "initialize":
        return {"protocolVersion": params.get("protocolVersion") or DEFAULT_PROTOCOL,
                "capabilities": {"tools": {}}, "serverInfo": SERVER_INFO}
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": TOOLS}
    if method == "tools/call":
        args = params.get("arguments") or {}
        try:
            return {"content": [{"type": "text", "text": call_tool(params.get("name"), args)}], "isError": False}
        except ToolError as exc:
            return {"content": [{"type": "text", "text": str(exc)}], "isError": True}
    raise LookupError(method)


def main() -> None:
    _log("--", {"started": os.getpid(), "argv": sys.argv})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            message = json.loads(line)
        except ValueError:
            _send({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}})
            continue
        _log("<<", message)
        if not isinstance(message, dict) or "method" not in message:
            continue  # a response to something we never sent, or junk: ignore
        if "id" not in message:
            continue  # notification (notifications/initialized, cancelled, ...)
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        try:
            result = handle(message["method"], params)
        except LookupError:
            _send({"jsonrpc": "2.0", "id": message["id"],
                   "error": {"code": -32601, "message": f"Method not found: {message['method']}"}})
            continue
        _send({"jsonrpc": "2.0", "id": message["id"], "result": result})
    _log("--", {"eof": os.getpid()})


if __name__ == "__main__":
    main()
