"""The request-scoped map between the client's tool declarations and the upstream's functions.

The upstream only knows plain functions. `ToolMap` lowers what the client declared (functions,
`namespace` members, `custom` tools, client `tool_search`, tools loaded by `tool_search_output`
or `additional_tools`) into that surface and remembers, for every upstream name, what the client
must see when the model calls it (`CallTarget`). Calls are restored by lookup, never by parsing
names; lenient aliases (`ns.member`, `ns_member`, the bare member, the namespace itself for a
one-member namespace) are accepted only when unambiguous. Hosted and unknown tool types are not
sent upstream; the Response echoes them untouched.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from gateway.errors import invalid_request
from gateway.tools.lowering import lower_custom, lower_function, lower_tool_search
from gateway.tools.names import flat_name

_AMBIGUOUS = object()


@dataclass(frozen=True)
class CallTarget:
    """What an upstream function call becomes in Responses terms."""

    item_type: str          # function_call | custom_tool_call | tool_search_call
    name: str
    namespace: str | None = None


class ToolMap:
    def __init__(self) -> None:
        self.functions: list[dict[str, Any]] = []      # upstream `tools` entries, in order
        self._by_upstream: dict[str, CallTarget] = {}
        self._aliases: dict[str, Any] = {}
        self._top_level: set[str] = set()
        self._members: list[tuple[str, str, str, bool]] = []  # (namespace, member, param, loaded)

    @classmethod
    def build(cls, tools: Iterable[dict[str, Any]] | None, *, loaded: Iterable[dict[str, Any]] = ()) -> "ToolMap":
        """`tools` from the request; `loaded` = declarations delivered by `tool_search_output` or
        `additional_tools` items, which are visible even when marked `defer_loading`."""
        tool_map = cls()
        for index, tool in enumerate(tools or []):
            tool_map._declare(tool, f"tools[{index}]", reveal=False)
        for tool in loaded:
            tool_map._declare(tool, "input", reveal=True)
        tool_map._check_bare_names()
        return tool_map

    # -- declarations ----------------------------------------------------------------------
    def _declare(self, tool: dict[str, Any], param: str, reveal: bool) -> None:
        kind = tool.get("type")
        if not reveal and tool.get("defer_loading"):
            return
        if kind == "function" and tool.get("name"):
            self._register(tool["name"], lower_function(tool, tool["name"]),
                           CallTarget("function_call", tool["name"]), f"{param}.name", reveal, top_level=True)
        elif kind == "custom" and tool.get("name"):
            self._register(tool["name"], lower_custom(tool, tool["name"]),
                           CallTarget("custom_tool_call", tool["name"]), f"{param}.name", reveal, top_level=True)
        elif kind == "tool_search" and tool.get("execution", "client") == "client":
            self._register("tool_search", lower_tool_search(tool), CallTarget("tool_search_call", "tool_search"),
                           param, reveal, top_level=True)
        elif kind == "namespace" and tool.get("name"):
            for index, member in enumerate(tool.get("tools") or []):
                if reveal or not member.get("defer_loading"):
                    self._declare_member(tool["name"], member, f"{param}.tools[{index}]", reveal)

    def _declare_member(self, namespace: str, member: dict[str, Any], param: str, reveal: bool) -> None:
        name = member.get("name")
        if not name or member.get("type") not in ("function", "custom"):
            return
        upstream = flat_name(namespace, name)
        if member["type"] == "function":
            entry, target = lower_function(member, upstream), CallTarget("function_call", name, namespace)
        else:
            entry, target = lower_custom(member, upstream), CallTarget("custom_tool_call", name, namespace)
        if self._register(upstream, entry, target, f"{param}.name", reveal, top_level=False):
            self._members.append((namespace, name, param, reveal))

    def _register(self, upstream: str, entry: dict[str, Any], target: CallTarget, param: str,
                  loaded: bool, top_level: bool) -> bool:
        existing = self._by_upstream.get(upstream)
        if existing == target and loaded:
            return False  # a tool loaded again (tool_search_output, additional_tools): keep one
        if existing == target:
            raise invalid_request(f"Duplicate tool name {target.name!r}.", param=param, code="duplicate_tool_name")
        if existing is not None:
            where = f"{target.namespace}.{target.name}" if target.namespace else target.name
            raise invalid_request(f"Tool {where} generates the upstream name {upstream!r}, which collides with "
                                  f"another declared tool.", param=param, code="tool_name_collision")
        self._by_upstream[upstream] = target
        self.functions.append(entry)
        if top_level:
            self._top_level.add(upstream)
        return True

    def _check_bare_names(self) -> None:
        counts: dict[str, list[CallTarget]] = {}
        for namespace, name, param, loaded in self._members:
            if name in self._top_level and not loaded:
                raise invalid_request(f"Namespace member {namespace}.{name} has the same name as the top-level "
                                      f"tool {name!r}.", param=param, code="tool_name_collision")
            target = self._by_upstream[flat_name(namespace, name)]
            # A loaded (searched-for) member never fails the request: its bare alias just yields.
            for alias in (f"{namespace}.{name}", f"{namespace}_{name}", name):
                self._alias(alias, target)
            counts.setdefault(namespace, []).append(target)
        for namespace, targets in counts.items():
            if len(targets) == 1:
                self._alias(namespace, targets[0])

    def _alias(self, alias: str, target: CallTarget) -> None:
        if alias in self._by_upstream:
            return
        current = self._aliases.get(alias)
        self._aliases[alias] = target if current in (None, target) else _AMBIGUOUS

    # -- output direction ------------------------------------------------------------------
    def restore(self, upstream_name: str) -> CallTarget:
        """The client-facing call for the name the model used (unknown names stay functions)."""
        target = self._by_upstream.get(upstream_name) or self._aliases.get(upstream_name)
        if isinstance(target, CallTarget):
            return target
        return CallTarget("function_call", upstream_name)

    # -- input direction -------------------------------------------------------------------
    @staticmethod
    def upstream_name(name: str, namespace: str | None = None) -> str:
        """The upstream function name for a call replayed in history (a pure function of the call)."""
        return flat_name(namespace, name) if namespace else name

    def has(self, name: str) -> bool:
        return name in self._by_upstream

    def lower_tool_choice(self, choice: Any) -> tuple[Any, list[dict[str, Any]]]:
        """Map `tool_choice` to the upstream; returns (tool_choice, tools offered upstream)."""
        tools = self.functions
        if choice is None or isinstance(choice, str):
            return (choice if tools else None), tools
        kind = choice.get("type")
        if kind in ("function", "custom"):
            name = self.upstream_name(choice["name"], choice.get("namespace"))
            if not self.has(name):
                raise invalid_request(f"tool_choice names {kind} tool {choice['name']!r}, which is not in tools.",
                                      param="tool_choice.name")
            return {"type": "function", "function": {"name": name}}, tools
        if kind == "allowed_tools":
            allowed = {self._reference(t) for t in choice.get("tools", [])}
            kept = [t for t in tools if t["function"]["name"] in allowed]
            if not kept:
                raise invalid_request("tool_choice.allowed_tools names none of the declared tools.",
                                      param="tool_choice.tools")
            return choice.get("mode", "auto"), kept
        raise invalid_request(f"tool_choice type {kind!r} is not supported by this gateway: the upstream "
                              "only runs function tools.", param="tool_choice.type")

    def _reference(self, ref: dict[str, Any]) -> str:
        if ref.get("type") == "tool_search":
            return "tool_search"
        return self.upstream_name(ref.get("name", ""), ref.get("namespace"))
