"""How each client tool shape becomes one upstream function (a chat `tools` entry)."""
from __future__ import annotations

import json
from typing import Any

CUSTOM_INPUT_DESCRIPTION = "Raw custom tool input. Follow the tool description and declared format exactly."
DEFAULT_SEARCH_PARAMETERS = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}


def function_entry(name: str, description: str | None, parameters: Any, strict: Any = None) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name, "parameters": parameters or {"type": "object", "properties": {}}}
    if description:
        function["description"] = description
    if strict is not None:
        function["strict"] = strict
    return {"type": "function", "function": function}


def lower_function(tool: dict[str, Any], upstream_name: str) -> dict[str, Any]:
    return function_entry(upstream_name, tool.get("description"), tool.get("parameters"), tool.get("strict"))


def custom_description(tool: dict[str, Any]) -> str:
    """The original description, how to pass the input, and the grammar the input must follow."""
    parts = [tool.get("description") or f"The {tool.get('name')} tool.",
             "Provide the raw tool input in the `input` string field."]
    fmt = tool.get("format") or {}
    if fmt.get("type") == "grammar" and fmt.get("definition"):
        parts.append(f"The string must match this {fmt.get('syntax', 'lark')} grammar exactly:\n{fmt['definition']}")
    elif fmt and fmt.get("type") != "text":
        parts.append("Input format: " + json.dumps(fmt, sort_keys=True))
    return "\n\n".join(parts)


def lower_custom(tool: dict[str, Any], upstream_name: str) -> dict[str, Any]:
    parameters = {"type": "object",
                  "properties": {"input": {"type": "string", "description": CUSTOM_INPUT_DESCRIPTION}},
                  "required": ["input"], "additionalProperties": False}
    return function_entry(upstream_name, custom_description(tool), parameters, True)


def lower_tool_search(tool: dict[str, Any]) -> dict[str, Any]:
    return function_entry("tool_search", tool.get("description") or "Search for more tools to load.",
                          tool.get("parameters") or DEFAULT_SEARCH_PARAMETERS, False)


def custom_input(arguments: str) -> str:
    """The raw input of a custom call from the upstream's function arguments.

    `{"input": "..."}` is the lowered form; a bare JSON string or non-JSON text is taken as is."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get("input"), str):
        return value["input"]
    if isinstance(value, str):
        return value
    return arguments


def search_arguments(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {"query": arguments}
    return value if isinstance(value, dict) else {"query": value}
