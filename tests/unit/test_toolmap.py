"""ToolMap: the request-scoped map between Codex tool declarations and upstream functions.

Covers codex-cli.md §4 and peers.md §2.2–§2.4: namespace flattening (agentic-api's
`agentic_ns__{ns}__{member}` scheme with the 64-character FNV-1a cut), lookup-based restoration
with the lenient aliases, collisions rejected with 400, custom and tool_search lowering,
hosted tools left out, `defer_loading`, and `tool_choice`.
"""
from __future__ import annotations

import pytest

from gateway.errors import APIError
from gateway.tools import CallTarget, ToolMap
from gateway.tools.lowering import CUSTOM_INPUT_DESCRIPTION
from gateway.tools.names import MAX_NAME, PREFIX, flat_name, fnv1a_64

OBJ = {"type": "object", "properties": {}}
ECHO_PARAMS = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
ADD_PARAMS = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
              "required": ["a", "b"]}
LARK = 'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF\nend_patch: "*** End Patch" LF?\n'


def fn(name, parameters=None, **extra):
    return {"type": "function", "name": name, "description": f"The {name} function.", "strict": False,
            "parameters": parameters or OBJ, **extra}


def namespace(name, *members, **extra):
    return {"type": "namespace", "name": name, "description": f"Tools in the {name} namespace.",
            "tools": [m if isinstance(m, dict) else fn(m) for m in members], **extra}


MCP_ECHO = namespace("mcp__echo", fn("add", ADD_PARAMS), fn("echo", ECHO_PARAMS))
APPLY_PATCH = {"type": "custom", "name": "apply_patch",
               "description": "Use `apply_patch` to edit files. This is a FREEFORM tool.",
               "format": {"type": "grammar", "syntax": "lark", "definition": LARK}}
TOOL_SEARCH = {"type": "tool_search", "execution": "client", "description": "# Tool discovery\n\nSearch tools.",
               "parameters": {"type": "object", "properties": {"limit": {"type": "number"},
                                                                "query": {"type": "string"}},
                              "required": ["query"], "additionalProperties": False}}


def upstream_names(tool_map):
    return [t["function"]["name"] for t in tool_map.functions]


def by_name(tool_map, name):
    [entry] = [t for t in tool_map.functions if t["function"]["name"] == name]
    return entry


def reject(tools, loaded=()):
    with pytest.raises(APIError) as info:
        ToolMap.build(tools, loaded=loaded)
    error = info.value
    assert error.status == 400
    assert error.type == "invalid_request_error"
    assert error.to_dict()["error"]["type"] == "invalid_request_error"
    return error


# -- flat names ------------------------------------------------------------------------------

def test_flat_name_scheme():
    assert flat_name("mcp__echo", "echo") == "agentic_ns__mcp__echo__echo"
    assert flat_name("mcp__agentic_fixture", "add_numbers") == "agentic_ns__mcp__agentic_fixture__add_numbers"


def test_flat_name_matches_agentic_api_test_vector():
    name = flat_name("mcp__codex_apps__github", "_remove_reaction_from_pr_review_comment")
    assert name == "agentic_ns__mcp__codex_apps__github___remove_r__2e989f39f22daf41"
    assert len(name) == 64


def _reference_fnv(text):
    value = 0xCBF29CE484222325
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * 0x100000001B3) % (1 << 64)
    return format(value, "016x")


def test_fnv1a_64_reference_values():
    assert fnv1a_64("") == "cbf29ce484222325"  # the offset basis
    assert fnv1a_64("a") == "af63dc4c8601ec8c"  # published FNV-1a-64 test vector
    full = "agentic_ns__mcp__codex_apps__github___remove_reaction_from_pr_review_comment"
    assert fnv1a_64(full) == _reference_fnv(full) == "2e989f39f22daf41"


def test_exactly_64_characters_is_kept_unchanged():
    ns, member = "mcp__" + "x" * 15, "m" * 30
    full = f"{PREFIX}{ns}__{member}"
    assert len(full) == MAX_NAME == 64
    assert flat_name(ns, member) == full


def test_65_characters_is_cut_to_46_plus_hash():
    ns, member = "mcp__" + "x" * 15, "m" * 31
    full = f"{PREFIX}{ns}__{member}"
    assert len(full) == 65
    name = flat_name(ns, member)
    assert len(name) == 64
    assert name == full[:46] + "__" + _reference_fnv(full)


def test_cut_counts_characters_not_bytes():
    ns, member = "mcp__é", "ü" * 60
    full = f"{PREFIX}{ns}__{member}"
    name = flat_name(ns, member)
    assert len(name) == 64 and name.startswith(full[:46])
    assert name.endswith("__" + _reference_fnv(full))


def test_long_names_sharing_a_prefix_stay_unique_and_restore_separately():
    ns = "mcp__codex_apps__github"
    first, second = "_remove_reaction_from_pr_review_comment", "_remove_reaction_from_pr_review_thread"
    tool_map = ToolMap.build([namespace(ns, first, second)])
    a, b = flat_name(ns, first), flat_name(ns, second)
    assert a != b and a[:46] == b[:46]
    assert upstream_names(tool_map) == [a, b]
    assert all(len(n) <= 64 for n in upstream_names(tool_map))
    assert tool_map.restore(a) == CallTarget("function_call", first, ns)
    assert tool_map.restore(b) == CallTarget("function_call", second, ns)


# -- namespace lowering ----------------------------------------------------------------------

def test_namespace_members_become_top_level_functions():
    tool_map = ToolMap.build([fn("exec_command"), MCP_ECHO, fn("get_goal")])
    assert upstream_names(tool_map) == ["exec_command", "agentic_ns__mcp__echo__add",
                                        "agentic_ns__mcp__echo__echo", "get_goal"]
    echo = by_name(tool_map, "agentic_ns__mcp__echo__echo")
    assert echo["type"] == "function"
    assert echo["function"]["parameters"] == ECHO_PARAMS
    assert echo["function"]["description"] == "The echo function."
    assert echo["function"]["strict"] is False
    assert all(t["type"] == "function" and set(t) == {"type", "function"} for t in tool_map.functions)
    assert "mcp__echo" not in upstream_names(tool_map)  # the container disappears


def test_namespace_members_that_are_not_functions_are_dropped():
    tool_map = ToolMap.build([namespace("mcp__x", fn("ok"), {"type": "web_search"}, {"type": "function"},
                                        {"type": "mystery", "name": "odd"})])
    assert upstream_names(tool_map) == ["agentic_ns__mcp__x__ok"]


def test_codex_multi_agent_namespace_is_flattened():
    members = ("close_agent", "resume_agent", "send_input", "spawn_agent", "wait_agent")
    tool_map = ToolMap.build([namespace("multi_agent_v1", *members)])
    assert upstream_names(tool_map) == [f"agentic_ns__multi_agent_v1__{m}" for m in members]


def test_upstream_name_for_history_is_a_pure_function_of_the_call():
    assert ToolMap.upstream_name("echo", "mcp__echo") == "agentic_ns__mcp__echo__echo"
    assert ToolMap.upstream_name("exec_command") == "exec_command"
    assert ToolMap.upstream_name("exec_command", None) == "exec_command"


# -- restoration -----------------------------------------------------------------------------

ECHO = CallTarget("function_call", "echo", "mcp__echo")


@pytest.mark.parametrize("called", ["agentic_ns__mcp__echo__echo", "mcp__echo.echo", "mcp__echo_echo", "echo"])
def test_restoration_of_exact_and_lenient_forms(called):
    tool_map = ToolMap.build([fn("exec_command"), MCP_ECHO])
    assert tool_map.restore(called) == ECHO


def test_container_form_restores_a_one_member_namespace():
    tool_map = ToolMap.build([namespace("mcp__solo", "only"), MCP_ECHO])
    assert tool_map.restore("mcp__solo") == CallTarget("function_call", "only", "mcp__solo")
    # two members: the container name names no single function
    assert tool_map.restore("mcp__echo") == CallTarget("function_call", "mcp__echo")


def test_top_level_names_restore_to_plain_function_calls():
    tool_map = ToolMap.build([fn("exec_command"), MCP_ECHO])
    assert tool_map.restore("exec_command") == CallTarget("function_call", "exec_command")


def test_unknown_names_stay_plain_function_calls():
    tool_map = ToolMap.build([MCP_ECHO])
    assert tool_map.restore("nonexistent") == CallTarget("function_call", "nonexistent")
    assert tool_map.restore("mcp__echo.nope") == CallTarget("function_call", "mcp__echo.nope")
    assert tool_map.restore("") == CallTarget("function_call", "")


def test_same_member_in_two_namespaces_bare_name_is_not_restored():
    tool_map = ToolMap.build([namespace("mcp__a", "search"), namespace("mcp__b", "search")])
    assert tool_map.restore("search") == CallTarget("function_call", "search")
    assert tool_map.restore("mcp__a.search") == CallTarget("function_call", "search", "mcp__a")
    assert tool_map.restore("mcp__b.search") == CallTarget("function_call", "search", "mcp__b")
    assert tool_map.restore("mcp__a_search") == CallTarget("function_call", "search", "mcp__a")
    assert tool_map.restore("agentic_ns__mcp__b__search") == CallTarget("function_call", "search", "mcp__b")


def test_ambiguous_underscore_form_is_not_restored():
    # peers.md §2.2: mcp__a_b + c and mcp__a + b_c both give mcp__a_b_c
    tool_map = ToolMap.build([namespace("mcp__a_b", "c"), namespace("mcp__a", "b_c")])
    assert tool_map.restore("mcp__a_b_c") == CallTarget("function_call", "mcp__a_b_c")
    assert tool_map.restore("mcp__a_b.c") == CallTarget("function_call", "c", "mcp__a_b")
    assert tool_map.restore("mcp__a.b_c") == CallTarget("function_call", "b_c", "mcp__a")
    assert tool_map.restore("c") == CallTarget("function_call", "c", "mcp__a_b")
    assert tool_map.restore("b_c") == CallTarget("function_call", "b_c", "mcp__a")


def test_alias_never_shadows_a_declared_top_level_name():
    tool_map = ToolMap.build([fn("mcp__echo_echo"), MCP_ECHO])
    assert tool_map.restore("mcp__echo_echo") == CallTarget("function_call", "mcp__echo_echo")
    assert tool_map.restore("mcp__echo.echo") == ECHO


def test_custom_and_tool_search_restore_to_their_item_types():
    tool_map = ToolMap.build([APPLY_PATCH, TOOL_SEARCH])
    assert tool_map.restore("apply_patch") == CallTarget("custom_tool_call", "apply_patch")
    assert tool_map.restore("tool_search") == CallTarget("tool_search_call", "tool_search")


# -- collisions ------------------------------------------------------------------------------

def test_member_bare_name_colliding_with_top_level_function_is_rejected():
    error = reject([fn("echo"), MCP_ECHO])
    assert "mcp__echo.echo" in error.message
    assert error.param and error.param.startswith("tools[1]")


def test_member_bare_name_colliding_with_top_level_custom_tool_is_rejected():
    reject([APPLY_PATCH, namespace("mcp__x", "apply_patch")])


def test_duplicate_function_names_are_rejected():
    error = reject([fn("exec_command"), fn("exec_command")])
    assert error.code == "duplicate_tool_name"
    assert error.param == "tools[1].name"


def test_function_and_custom_tool_with_the_same_name_are_rejected():
    reject([fn("apply_patch"), APPLY_PATCH])


def test_duplicate_member_in_one_namespace_is_rejected():
    reject([namespace("mcp__x", "same", "same")])


def test_two_namespaces_generating_the_same_flat_name_are_rejected():
    # peers.md §2.2, PR #84: mcp__a + b and mcp + a__b both give agentic_ns__mcp__a__b
    error = reject([namespace("mcp__a", "b"), namespace("mcp", "a__b")])
    assert "agentic_ns__mcp__a__b" in error.message


def test_member_flat_name_colliding_with_a_declared_function_is_rejected():
    reject([fn("agentic_ns__mcp__echo__echo"), MCP_ECHO])


def test_loaded_member_sharing_a_top_level_name_does_not_fail_the_request():
    """A tool found by tool_search must not break every later turn of a Codex thread: the bare
    name stays with the top-level function, the member keeps its flat and dotted names."""
    tool_map = ToolMap.build([fn("echo")], loaded=[MCP_ECHO])
    assert tool_map.restore("echo") == CallTarget("function_call", "echo")
    assert tool_map.restore("mcp__echo.echo") == CallTarget("function_call", "echo", "mcp__echo")
    assert tool_map.restore("agentic_ns__mcp__echo__echo") == CallTarget("function_call", "echo", "mcp__echo")


# -- custom tools ----------------------------------------------------------------------------

def test_custom_tool_is_lowered_to_a_function_with_one_required_string_input():
    tool_map = ToolMap.build([APPLY_PATCH])
    entry = by_name(tool_map, "apply_patch")
    function = entry["function"]
    assert function["strict"] is True
    assert function["parameters"] == {
        "type": "object",
        "properties": {"input": {"type": "string", "description": CUSTOM_INPUT_DESCRIPTION}},
        "required": ["input"], "additionalProperties": False}


def test_custom_description_keeps_the_original_and_describes_the_grammar():
    description = by_name(ToolMap.build([APPLY_PATCH]), "apply_patch")["function"]["description"]
    assert description.startswith(APPLY_PATCH["description"])
    assert "`input`" in description
    assert "lark" in description
    assert LARK in description


def test_custom_tool_with_regex_grammar_and_text_format():
    regex = {"type": "custom", "name": "digits", "description": "Digits only.",
             "format": {"type": "grammar", "syntax": "regex", "definition": "^[0-9]+$"}}
    text = {"type": "custom", "name": "free", "format": {"type": "text"}}
    bare = {"type": "custom", "name": "bare"}
    tool_map = ToolMap.build([regex, text, bare])
    assert "regex grammar" in by_name(tool_map, "digits")["function"]["description"]
    assert "^[0-9]+$" in by_name(tool_map, "digits")["function"]["description"]
    for name in ("free", "bare"):
        function = by_name(tool_map, name)["function"]
        assert function["description"]  # always says how to pass the input
        assert function["parameters"]["required"] == ["input"]


# -- tool_search -----------------------------------------------------------------------------

def test_client_tool_search_is_offered_as_a_function():
    entry = by_name(ToolMap.build([TOOL_SEARCH]), "tool_search")
    assert entry["function"]["description"] == TOOL_SEARCH["description"]
    assert entry["function"]["parameters"] == TOOL_SEARCH["parameters"]
    assert entry["function"]["strict"] is False


def test_tool_search_without_parameters_gets_a_query_parameter():
    entry = by_name(ToolMap.build([{"type": "tool_search", "execution": "client"}]), "tool_search")
    assert entry["function"]["parameters"]["required"] == ["query"]
    assert entry["function"]["description"]


def test_server_tool_search_is_not_offered_upstream():
    assert ToolMap.build([{"type": "tool_search", "execution": "server"}]).functions == []


# -- hosted / unknown ------------------------------------------------------------------------

def test_hosted_and_unknown_tools_are_absent_upstream():
    hosted = [{"type": "web_search", "external_web_access": True, "search_content_types": ["text", "image"]},
              {"type": "web_search_preview"}, {"type": "file_search", "vector_store_ids": ["vs_1"]},
              {"type": "code_interpreter", "container": {"type": "auto"}}, {"type": "image_generation"},
              {"type": "mcp", "server_label": "x", "server_url": "https://example.com"},
              {"type": "local_shell"}, {"type": "computer_use_preview"}, {"type": "tool_from_the_future", "name": "x"}]
    tool_map = ToolMap.build([fn("exec_command"), *hosted])
    assert upstream_names(tool_map) == ["exec_command"]


def test_no_tools_gives_no_upstream_functions():
    assert ToolMap.build(None).functions == []
    assert ToolMap.build([]).functions == []


# -- defer_loading ---------------------------------------------------------------------------

DEFERRED_ECHO = namespace("mcp__echo", fn("echo", ECHO_PARAMS, defer_loading=True),
                          fn("add", ADD_PARAMS, defer_loading=True))


def test_deferred_tools_are_hidden_until_loaded():
    tool_map = ToolMap.build([fn("exec_command"), fn("later", defer_loading=True), DEFERRED_ECHO, TOOL_SEARCH])
    assert upstream_names(tool_map) == ["exec_command", "tool_search"]
    assert tool_map.restore("agentic_ns__mcp__echo__echo") == CallTarget("function_call", "agentic_ns__mcp__echo__echo")


def test_deferred_namespace_member_is_hidden_but_its_siblings_are_not():
    tool_map = ToolMap.build([namespace("mcp__x", fn("now"), fn("later", defer_loading=True))])
    assert upstream_names(tool_map) == ["agentic_ns__mcp__x__now"]


def test_loaded_tools_are_visible_without_defer_loading():
    tool_map = ToolMap.build([fn("exec_command"), TOOL_SEARCH],
                             loaded=[DEFERRED_ECHO, fn("later", defer_loading=True)])
    assert upstream_names(tool_map) == ["exec_command", "tool_search", "agentic_ns__mcp__echo__echo",
                                        "agentic_ns__mcp__echo__add", "later"]
    for entry in tool_map.functions:
        assert "defer_loading" not in entry["function"]
    assert by_name(tool_map, "agentic_ns__mcp__echo__echo")["function"]["parameters"] == ECHO_PARAMS
    assert tool_map.restore("agentic_ns__mcp__echo__add") == CallTarget("function_call", "add", "mcp__echo")
    assert tool_map.restore("echo") == CallTarget("function_call", "echo", "mcp__echo")


def test_declared_deferred_then_loaded_appears_once():
    tool_map = ToolMap.build([DEFERRED_ECHO, TOOL_SEARCH], loaded=[DEFERRED_ECHO])
    assert upstream_names(tool_map).count("agentic_ns__mcp__echo__echo") == 1


def test_the_same_tools_loaded_twice_are_kept_once():
    tool_map = ToolMap.build([TOOL_SEARCH], loaded=[DEFERRED_ECHO, DEFERRED_ECHO])
    assert upstream_names(tool_map) == ["tool_search", "agentic_ns__mcp__echo__echo", "agentic_ns__mcp__echo__add"]


def test_loaded_tool_already_declared_visible_is_kept_once():
    tool_map = ToolMap.build([MCP_ECHO, fn("exec_command")], loaded=[MCP_ECHO, fn("exec_command")])
    assert upstream_names(tool_map) == ["agentic_ns__mcp__echo__add", "agentic_ns__mcp__echo__echo", "exec_command"]


# -- tool_choice -----------------------------------------------------------------------------

CODEX_TOOLS = [fn("exec_command"), APPLY_PATCH, MCP_ECHO, TOOL_SEARCH, {"type": "web_search"}]


def test_string_tool_choice_passes_through_with_every_tool():
    tool_map = ToolMap.build(CODEX_TOOLS)
    for mode in ("auto", "required", "none"):
        choice, tools = tool_map.lower_tool_choice(mode)
        assert choice == mode and tools == tool_map.functions
    assert tool_map.lower_tool_choice(None) == (None, tool_map.functions)


def test_string_tool_choice_without_tools_is_dropped():
    assert ToolMap.build([{"type": "web_search"}]).lower_tool_choice("required") == (None, [])


def test_tool_choice_naming_a_namespaced_function_is_flattened():
    tool_map = ToolMap.build(CODEX_TOOLS)
    choice, tools = tool_map.lower_tool_choice({"type": "function", "namespace": "mcp__echo", "name": "echo"})
    assert choice == {"type": "function", "function": {"name": "agentic_ns__mcp__echo__echo"}}
    assert tools == tool_map.functions


def test_tool_choice_naming_a_hashed_namespaced_function():
    ns, member = "mcp__codex_apps__github", "_remove_reaction_from_pr_review_comment"
    tool_map = ToolMap.build([namespace(ns, member)])
    choice, _ = tool_map.lower_tool_choice({"type": "function", "namespace": ns, "name": member})
    assert choice == {"type": "function", "function": {"name": "agentic_ns__mcp__codex_apps__github___remove_r__2e989f39f22daf41"}}


def test_tool_choice_naming_a_custom_tool():
    tool_map = ToolMap.build(CODEX_TOOLS)
    choice, tools = tool_map.lower_tool_choice({"type": "custom", "name": "apply_patch"})
    assert choice == {"type": "function", "function": {"name": "apply_patch"}}
    assert tools == tool_map.functions


def test_tool_choice_naming_a_plain_function():
    choice, _ = ToolMap.build(CODEX_TOOLS).lower_tool_choice({"type": "function", "name": "exec_command"})
    assert choice == {"type": "function", "function": {"name": "exec_command"}}


@pytest.mark.parametrize("choice", [
    {"type": "function", "name": "nope"},
    {"type": "function", "namespace": "mcp__echo", "name": "nope"},
    {"type": "function", "namespace": "mcp__other", "name": "echo"},
    {"type": "custom", "name": "not_declared"},
])
def test_tool_choice_naming_an_undeclared_tool_is_rejected(choice):
    with pytest.raises(APIError) as info:
        ToolMap.build(CODEX_TOOLS).lower_tool_choice(choice)
    assert info.value.status == 400 and info.value.type == "invalid_request_error"
    assert info.value.param and info.value.param.startswith("tool_choice")


def test_allowed_tools_with_namespaced_entries():
    tool_map = ToolMap.build(CODEX_TOOLS)
    choice, tools = tool_map.lower_tool_choice({"type": "allowed_tools", "mode": "required", "tools": [
        {"type": "function", "namespace": "mcp__echo", "name": "echo"},
        {"type": "function", "name": "exec_command"},
        {"type": "custom", "name": "apply_patch"}]})
    assert choice == "required"
    assert [t["function"]["name"] for t in tools] == ["exec_command", "apply_patch", "agentic_ns__mcp__echo__echo"]
    assert tool_map.functions != tools  # the full list is untouched


def test_allowed_tools_defaults_to_auto_and_can_name_tool_search():
    tool_map = ToolMap.build(CODEX_TOOLS)
    choice, tools = tool_map.lower_tool_choice({"type": "allowed_tools", "tools": [{"type": "tool_search"}]})
    assert choice == "auto"
    assert [t["function"]["name"] for t in tools] == ["tool_search"]


def test_allowed_tools_naming_nothing_declared_is_rejected():
    with pytest.raises(APIError) as info:
        ToolMap.build(CODEX_TOOLS).lower_tool_choice(
            {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "echo"}]})
    assert info.value.status == 400


def test_hosted_tool_choice_is_rejected_with_400():
    with pytest.raises(APIError) as info:
        ToolMap.build(CODEX_TOOLS).lower_tool_choice({"type": "web_search"})
    assert info.value.status == 400 and info.value.param == "tool_choice.type"
