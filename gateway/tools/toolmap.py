"""The request-scoped map between the client's tool declarations and the upstream's functions.

The upstream only knows plain functions. `ToolMap` lowers what the client declared into that
surface and remembers, for every upstream function name, what the client should see when the
model calls it (`CallTarget`). Names are restored from this map, never parsed back from strings.
Tool types the gateway cannot offer upstream (hosted tools, unknown types) are left out here and
echoed untouched in the Response.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.errors import invalid_request


@dataclass(frozen=True)
class CallTarget:
    """What an upstream function call becomes in Responses terms."""

    item_type: str          # "function_call" (later also custom_tool_call, tool_search_call)
    name: str
    namespace: str | None = None


class ToolMap:
    def __init__(self) -> None:
        self.functions: list[dict[str, Any]] = []      # upstream `tools` entries, in order
        self._by_upstream: dict[str, CallTarget] = {}
        self._to_upstream: dict[tuple[str, str | None], str] = {}

    @classmethod
    def build(cls, tools: list[dict[str, Any]] | None) -> "ToolMap":
        tool_map = cls()
        for index, tool in enumerate(tools or []):
            if tool.get("type") == "function":
                tool_map._add_function(tool, index)
        return tool_map

    def _add_function(self, tool: dict[str, Any], index: int) -> None:
        name = tool["name"]
        if name in self._by_upstream:
            raise invalid_request(f"Duplicate tool name {name!r}.", param=f"tools[{index}].name",
                                  code="duplicate_tool_name")
        function: dict[str, Any] = {"name": name,
                                    "parameters": tool.get("parameters") or {"type": "object", "properties": {}}}
        if tool.get("description"):
            function["description"] = tool["description"]
        if tool.get("strict") is not None:
            function["strict"] = tool["strict"]
        self.functions.append({"type": "function", "function": function})
        self._by_upstream[name] = CallTarget("function_call", name)
        self._to_upstream[(name, None)] = name

    # -- output direction -------------------------------------------------------------------
    def restore(self, upstream_name: str) -> CallTarget:
        """The client-facing call for an upstream function name (unknown names stay functions)."""
        return self._by_upstream.get(upstream_name) or CallTarget("function_call", upstream_name)

    # -- input direction --------------------------------------------------------------------
    def upstream_name(self, name: str, namespace: str | None = None) -> str:
        """The upstream function name for a call item replayed in history."""
        return self._to_upstream.get((name, namespace), name)

    def has(self, name: str) -> bool:
        return name in self._by_upstream

    def lower_tool_choice(self, choice: Any) -> tuple[Any, list[dict[str, Any]]]:
        """Map `tool_choice` to the upstream; returns (tool_choice, tools offered upstream)."""
        tools = self.functions
        if choice is None or isinstance(choice, str):
            return (choice if tools else None), tools
        kind = choice.get("type")
        if kind == "function":
            name = self.upstream_name(choice["name"], choice.get("namespace"))
            if not self.has(name):
                raise invalid_request(f"tool_choice names function {choice['name']!r}, which is not in tools.",
                                      param="tool_choice.name")
            return {"type": "function", "function": {"name": name}}, tools
        if kind == "allowed_tools":
            allowed = {self.upstream_name(t.get("name", ""), t.get("namespace"))
                       for t in choice.get("tools", []) if t.get("type") == "function"}
            kept = [t for t in tools if t["function"]["name"] in allowed]
            if not kept:
                raise invalid_request("tool_choice.allowed_tools names none of the declared function tools.",
                                      param="tool_choice.tools")
            return choice.get("mode", "auto"), kept
        raise invalid_request(f"tool_choice type {kind!r} is not supported by this gateway: the upstream "
                              "only runs function tools.", param="tool_choice.type")
