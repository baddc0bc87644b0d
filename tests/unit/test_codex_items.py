"""Codex item shapes in both directions: EventBuilder + ToolMap (down), build_messages (up),
and the reasoning round trip through `encrypted_content` (ReasoningCipher).

Every event list goes through `check_stream` (ordering rules + the openai SDK's pydantic types).
Shapes follow codex-cli.md §3, §5.2 and the captured `sse_*.sse` fixtures.
"""
from __future__ import annotations

import copy
import json
import logging

import pytest

from gateway.crypto import ReasoningCipher
from gateway.tools import ToolMap
from gateway.translate.from_upstream import EventBuilder
from gateway.translate.resource import new_response
from gateway.translate.from_chat import ChatDecoder
from gateway.translate.inputs import encode_objects
from gateway.translate.to_chat import build_chat_request, build_messages
from tests.checks import check_stream
from tests.unit.helpers import content_chunk, finish_chunk, reasoning_chunk, role_chunk, tool_chunk, usage_chunk

ECHO_PARAMS = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
EXEC = {"type": "function", "name": "exec_command", "description": "Run a command.", "strict": False,
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}
MCP_ECHO = {"type": "namespace", "name": "mcp__echo", "description": "Tools in the mcp__echo namespace.",
            "tools": [{"type": "function", "name": "echo", "description": "Echo back the given text.",
                       "strict": False, "parameters": ECHO_PARAMS},
                      {"type": "function", "name": "add", "description": "Add two numbers.", "strict": False,
                       "parameters": {"type": "object", "properties": {"a": {"type": "number"},
                                                                        "b": {"type": "number"}}}}]}
APPLY_PATCH = {"type": "custom", "name": "apply_patch",
               "description": "Use the `apply_patch` tool to edit files. This is a FREEFORM tool.",
               "format": {"type": "grammar", "syntax": "lark",
                          "definition": 'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF\n'}}
TOOL_SEARCH = {"type": "tool_search", "execution": "client", "description": "# Tool discovery",
               "parameters": {"type": "object", "properties": {"limit": {"type": "number"},
                                                                "query": {"type": "string"}},
                              "required": ["query"], "additionalProperties": False}}
WEB_SEARCH = {"type": "web_search", "external_web_access": True}
CODEX_TOOLS = [EXEC, APPLY_PATCH, MCP_ECHO, TOOL_SEARCH, WEB_SEARCH]
PATCH = "*** Begin Patch\n*** Add File: capture_hello.txt\n+hello\n*** End Patch\n"


@pytest.fixture(scope="module")
def cipher():
    return ReasoningCipher(ReasoningCipher.generate_key())


class Turn:
    def __init__(self, events):
        self.events = events
        self.final = check_stream(events)

    def of_type(self, kind):
        return [e for e in self.events if e["type"] == kind]

    @property
    def output(self):
        return self.final["output"]


def drive(*chunks, tools=CODEX_TOOLS, loaded=(), mode="text", seal=None) -> Turn:
    tool_map = ToolMap.build(tools, loaded=loaded)
    builder = EventBuilder(new_response({"model": "fake-model", "tools": tools}), tool_map, mode, seal)
    decoder = ChatDecoder(builder)
    events = builder.start()
    for c in chunks:
        events += decoder.feed(c)
    events += decoder.end()
    events.append(builder.terminal_event())
    return Turn(events)


def call_turn(name, *arg_pieces, **kwargs) -> Turn:
    return drive(role_chunk(), tool_chunk(0, name=name),
                 *[tool_chunk(0, arguments=p) for p in arg_pieces],
                 finish_chunk("tool_calls"), usage_chunk(10, 5), **kwargs)


def events_with_item(turn, item_id):
    return [e for e in turn.events if isinstance(e.get("item"), dict) and e["item"].get("id") == item_id]


# -- namespaced function calls ---------------------------------------------------------------

def test_flat_namespace_call_comes_back_as_bare_name_plus_namespace():
    turn = call_turn("agentic_ns__mcp__echo__echo", '{"text"', ': "ping"}')
    [item] = turn.output
    assert item["type"] == "function_call"
    assert item["name"] == "echo" and item["namespace"] == "mcp__echo"
    assert item["arguments"] == '{"text": "ping"}'
    assert item["status"] == "completed" and item["id"].startswith("fc_") and item["call_id"]

    [added] = turn.of_type("response.output_item.added")
    assert added["item"]["name"] == "echo" and added["item"]["namespace"] == "mcp__echo"
    assert added["item"]["arguments"] == "" and added["item"]["status"] == "in_progress"
    [args_done] = turn.of_type("response.function_call_arguments.done")
    assert args_done["arguments"] == '{"text": "ping"}'
    assert args_done["item_id"] == item["id"]
    # the event's `name` (newer API versions send one) must be the client-facing bare name, never the flat one
    assert args_done.get("name", "echo") == "echo"
    [done] = turn.of_type("response.output_item.done")
    assert done["item"] == item
    assert "".join(e["delta"] for e in turn.of_type("response.function_call_arguments.delta")) == item["arguments"]
    for event in events_with_item(turn, item["id"]):
        assert event["item"]["name"] == "echo" and event["item"]["namespace"] == "mcp__echo"
    assert "agentic_ns__" not in json.dumps(turn.events)


@pytest.mark.parametrize("called", ["mcp__echo.echo", "mcp__echo_echo", "echo"])
def test_lenient_namespace_call_forms_are_restored(called):
    turn = call_turn(called, '{"text": "hi"}')
    [item] = turn.output
    assert (item["name"], item["namespace"]) == ("echo", "mcp__echo")


def test_plain_function_call_has_no_namespace():
    turn = call_turn("exec_command", '{"cmd": "ls"}')
    [item] = turn.output
    assert item["name"] == "exec_command" and "namespace" not in item


def test_parallel_calls_second_buffered_namespaced_call_keeps_its_namespace():
    turn = drive(role_chunk(), tool_chunk(0, name="exec_command"), tool_chunk(1, name="agentic_ns__mcp__echo__add"),
                 tool_chunk(0, arguments='{"cmd": "ls"}'), tool_chunk(1, arguments='{"a": 1, "b": 2}'),
                 finish_chunk("tool_calls"), usage_chunk(10, 5))
    first, second = turn.output
    assert (first["name"], first.get("namespace")) == ("exec_command", None)
    assert (second["name"], second["namespace"]) == ("add", "mcp__echo")
    assert second["arguments"] == '{"a": 1, "b": 2}'
    for event in events_with_item(turn, second["id"]):
        assert event["item"]["namespace"] == "mcp__echo" and event["item"]["name"] == "add"
    assert [e["name"] for e in turn.of_type("response.function_call_arguments.done") if "name" in e] in (
        [], ["exec_command", "add"])


def test_loaded_namespace_member_call_is_restored():
    deferred = copy.deepcopy(MCP_ECHO)
    for member in deferred["tools"]:
        member["defer_loading"] = True
    turn = call_turn("agentic_ns__mcp__echo__echo", '{"text": "x"}', tools=[EXEC, TOOL_SEARCH, deferred],
                     loaded=[deferred])
    [item] = turn.output
    assert (item["name"], item["namespace"]) == ("echo", "mcp__echo")


# -- custom tool calls -----------------------------------------------------------------------

def test_custom_tool_call_carries_the_decoded_raw_input():
    arguments = json.dumps({"input": PATCH})
    turn = call_turn("apply_patch", arguments[:10], arguments[10:30], arguments[30:])
    [item] = turn.output
    assert item["type"] == "custom_tool_call"
    assert item["name"] == "apply_patch" and item["input"] == PATCH
    assert item["id"].startswith("ctc_") and item["call_id"] and item["status"] == "completed"
    assert "arguments" not in item and "namespace" not in item

    [added] = turn.of_type("response.output_item.added")
    assert added["item"]["type"] == "custom_tool_call" and added["item"]["input"] == ""
    deltas = turn.of_type("response.custom_tool_call_input.delta")
    assert deltas and "".join(d["delta"] for d in deltas) == PATCH
    assert all(d["item_id"] == item["id"] for d in deltas)
    [done] = turn.of_type("response.custom_tool_call_input.done")
    assert done["input"] == PATCH and done["item_id"] == item["id"]
    assert not turn.of_type("response.function_call_arguments.delta")
    assert not turn.of_type("response.function_call_arguments.done")
    assert turn.of_type("response.output_item.done")[0]["item"] == item
    types = [e["type"] for e in turn.events]
    assert types.index("response.custom_tool_call_input.done") < types.index("response.output_item.done")


def test_custom_tool_input_given_as_a_bare_json_string():
    [item] = call_turn("apply_patch", json.dumps(PATCH)).output
    assert item["type"] == "custom_tool_call" and item["input"] == PATCH


def test_custom_tool_input_given_as_raw_text_without_surrounding_whitespace():
    [item] = call_turn("apply_patch", "*** Begin Patch\n*** End Patch").output
    assert item["type"] == "custom_tool_call" and item["input"] == "*** Begin Patch\n*** End Patch"


@pytest.mark.parametrize("raw", ["*** Begin Patch\n*** End Patch\n", "    indented first line\nnext\n"])
def test_custom_tool_input_given_as_raw_text_is_kept_verbatim(raw):
    [item] = call_turn("apply_patch", raw).output
    assert item["type"] == "custom_tool_call" and item["input"] == raw


def test_custom_call_as_buffered_second_call():
    turn = drive(role_chunk(), tool_chunk(0, name="exec_command"), tool_chunk(1, name="apply_patch"),
                 tool_chunk(1, arguments=json.dumps({"input": PATCH})), tool_chunk(0, arguments='{"cmd": "ls"}'),
                 finish_chunk("tool_calls"), usage_chunk(1, 1))
    first, second = turn.output
    assert first["type"] == "function_call"
    assert second["type"] == "custom_tool_call" and second["input"] == PATCH
    assert [e["input"] for e in turn.of_type("response.custom_tool_call_input.done")] == [PATCH]


# -- tool_search calls -----------------------------------------------------------------------

def test_tool_search_call_has_object_arguments_and_client_execution():
    turn = call_turn("tool_search", '{"query": "echo text mcp",', ' "limit": 4}')
    [item] = turn.output
    assert item["type"] == "tool_search_call"
    assert item["execution"] == "client"
    assert item["arguments"] == {"query": "echo text mcp", "limit": 4}
    assert item["id"].startswith("tsc_") and item["call_id"] and item["status"] == "completed"
    assert "name" not in item
    types = [e["type"] for e in turn.events]
    assert types == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.output_item.done", "response.completed"]
    assert turn.of_type("response.output_item.added")[0]["item"]["execution"] == "client"


# -- reasoning + encrypted_content -----------------------------------------------------------

@pytest.mark.parametrize("mode", ["text", "summary"])
def test_reasoning_item_carries_encrypted_content_that_opens_to_the_text(cipher, mode):
    turn = drive(role_chunk(), reasoning_chunk("Let me "), reasoning_chunk("think."), content_chunk("Hi"),
                 finish_chunk("stop"), usage_chunk(3, 3), mode=mode, seal=cipher.seal)
    reasoning, message = turn.output
    assert reasoning["type"] == "reasoning" and message["type"] == "message"
    blob = reasoning["encrypted_content"]
    assert isinstance(blob, str) and "Let me think." not in blob
    assert cipher.open(blob) == "Let me think."
    done = [e for e in turn.of_type("response.output_item.done") if e["item"]["type"] == "reasoning"]
    assert done[0]["item"]["encrypted_content"] == blob


def test_reasoning_seals_are_not_deterministic_but_all_open(cipher):
    a, b = cipher.seal("same"), cipher.seal("same")
    assert a != b
    assert cipher.open(a) == cipher.open(b) == "same"


def test_seal_round_trips_unicode_and_empty_text(cipher):
    assert cipher.open(cipher.seal("ünïcødé ✓ 思考")) == "ünïcødé ✓ 思考"
    assert cipher.open(cipher.seal("")) == ""


def _tamper(blob):
    middle = len(blob) // 2
    return blob[:middle] + ("A" if blob[middle] != "A" else "B") + blob[middle + 1:]


@pytest.mark.parametrize("make_blob", [
    pytest.param(lambda c: _tamper(c.seal("secret")), id="tampered"),
    pytest.param(lambda c: c.seal("secret")[:-10], id="truncated"),
    pytest.param(lambda c: ReasoningCipher(ReasoningCipher.generate_key()).seal("secret"), id="foreign-key"),
    pytest.param(lambda c: "gAAAAcapture-opaque-blob==", id="codex-capture"),
    pytest.param(lambda c: "not base64 at all!", id="garbage"),
    pytest.param(lambda c: "ünïcode", id="non-ascii"),
])
def test_open_returns_none_and_logs_for_blobs_it_did_not_issue(cipher, caplog, make_blob):
    blob = make_blob(cipher)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gateway.crypto"):
        assert cipher.open(blob) is None
    assert any(r.levelno >= logging.WARNING and r.name == "gateway.crypto" for r in caplog.records)


@pytest.mark.parametrize("blob", [None, "", 42, b"bytes", {"text": "x"}, ["x"]])
def test_open_returns_none_for_non_string_or_empty_blobs(cipher, blob):
    assert cipher.open(blob) is None


def test_reveal_gives_encrypted_only_reasoning_its_text_back(cipher):
    blob = cipher.seal("earlier thoughts")
    items = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
             {"type": "reasoning", "id": "rs_1", "summary": [], "content": None, "encrypted_content": blob}]
    original = copy.deepcopy(items)
    revealed = cipher.reveal(items)
    assert items == original  # not mutated
    assert revealed[0] == items[0]
    assert revealed[1]["content"] == [{"type": "reasoning_text", "text": "earlier thoughts"}]
    assert revealed[1]["encrypted_content"] == blob and revealed[1]["id"] == "rs_1"


def test_reveal_keeps_reasoning_that_already_has_text(cipher):
    item = {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "visible"}],
            "encrypted_content": cipher.seal("sealed")}
    assert cipher.reveal([item]) == [item]


def test_reveal_leaves_undecryptable_reasoning_unchanged(cipher, caplog):
    item = {"type": "reasoning", "summary": [], "content": None, "encrypted_content": _tamper(cipher.seal("x"))}
    with caplog.at_level(logging.WARNING, logger="gateway.crypto"):
        assert cipher.reveal([item]) == [item]
    assert caplog.records


def test_revealed_reasoning_reaches_the_upstream_on_the_next_assistant_message(cipher):
    items = [{"type": "message", "role": "user", "content": "hi"},
             {"type": "reasoning", "summary": [], "content": None, "encrypted_content": cipher.seal("I pondered.")},
             {"type": "message", "role": "assistant", "status": "completed",
              "content": [{"type": "output_text", "text": "Hello!", "annotations": []}]},
             {"type": "message", "role": "user", "content": "again"}]
    messages = build_messages(cipher.reveal(items), None, ToolMap())
    assert messages == [{"role": "user", "content": "hi"},
                        {"role": "assistant", "content": "Hello!", "reasoning_content": "I pondered."},
                        {"role": "user", "content": "again"}]


def test_tampered_reasoning_reaches_the_upstream_as_nothing(cipher):
    items = [{"type": "message", "role": "user", "content": "hi"},
             {"type": "reasoning", "summary": [], "content": None, "encrypted_content": _tamper(cipher.seal("x"))},
             {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello!"}]}]
    messages = build_messages(cipher.reveal(items), None, ToolMap())
    assert messages[-1] == {"role": "assistant", "content": "Hello!"}


def test_revealed_reasoning_before_a_tool_call(cipher):
    items = [{"type": "message", "role": "user", "content": "hi"},
             {"type": "reasoning", "summary": [], "content": None, "encrypted_content": cipher.seal("Call echo.")},
             {"type": "function_call", "call_id": "call_1", "name": "echo", "namespace": "mcp__echo",
              "arguments": '{"text": "x"}'},
             {"type": "function_call_output", "call_id": "call_1", "output": "x"}]
    messages = build_messages(cipher.reveal(items), None, ToolMap())
    assert messages[1] == {"role": "assistant", "content": None, "reasoning_content": "Call echo.",
                           "tool_calls": [{"id": "call_1", "type": "function", "function": {
                               "name": "agentic_ns__mcp__echo__echo", "arguments": '{"text": "x"}'}}]}


# -- to_upstream of Codex items --------------------------------------------------------------

def test_namespaced_function_call_history_uses_the_flat_name():
    items = [{"type": "function_call", "status": "completed", "id": "fc_c9ceb9676ec8", "name": "echo",
              "namespace": "mcp__echo", "arguments": '{"text": "ping"}', "call_id": "call_a94e09af713f"},
             {"type": "function_call_output", "id": "fco_1", "call_id": "call_a94e09af713f",
              "output": [{"type": "input_text", "text": "Wall time: 0.0021 seconds\nOutput:"},
                         {"type": "input_text", "text": "echo: ping"}]}]
    messages = build_messages(items, None, ToolMap.build([MCP_ECHO]))
    assert messages == [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_a94e09af713f", "type": "function",
                                                                "function": {"name": "agentic_ns__mcp__echo__echo",
                                                                             "arguments": '{"text": "ping"}'}}]},
        {"role": "tool", "tool_call_id": "call_a94e09af713f", "content": "Wall time: 0.0021 seconds\nOutput:\necho: ping"}]
    assert "namespace" not in json.dumps(messages)


def test_hashed_namespace_name_in_history():
    ns, member = "mcp__codex_apps__github", "_remove_reaction_from_pr_review_comment"
    items = [{"type": "function_call", "name": member, "namespace": ns, "arguments": "{}", "call_id": "c1"}]
    [message] = build_messages(items, None, ToolMap())
    assert message["tool_calls"][0]["function"]["name"] == "agentic_ns__mcp__codex_apps__github___remove_r__2e989f39f22daf41"


def test_custom_tool_call_and_output_go_upstream_as_a_tool_call_and_result():
    items = [{"type": "custom_tool_call", "id": "ctc_5b91409532c9", "status": "completed",
              "call_id": "call_32ce245a25c9", "name": "apply_patch", "input": PATCH},
             {"type": "custom_tool_call_output", "id": "ctco_1", "call_id": "call_32ce245a25c9",
              "output": "Exit code: 0\nWall time: 0 seconds\nOutput:\nSuccess."}]
    assistant, tool = build_messages(items, None, ToolMap.build([APPLY_PATCH]))
    [call] = assistant["tool_calls"]
    assert assistant["role"] == "assistant" and assistant["content"] is None
    assert call["id"] == "call_32ce245a25c9" and call["type"] == "function"
    assert call["function"]["name"] == "apply_patch"
    assert json.loads(call["function"]["arguments"]) == {"input": PATCH}
    assert tool == {"role": "tool", "tool_call_id": "call_32ce245a25c9",
                    "content": "Exit code: 0\nWall time: 0 seconds\nOutput:\nSuccess."}


def test_custom_tool_call_output_as_content_parts_is_joined():
    items = [{"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": PATCH},
             {"type": "custom_tool_call_output", "call_id": "c1",
              "output": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]}]
    assert build_messages(items, None, ToolMap())[-1]["content"] == "a\nb"


def test_tool_search_call_and_output_go_upstream():
    loaded = {"type": "namespace", "name": "mcp__echo", "description": "Tools in the mcp__echo namespace.",
              "tools": [dict(m, defer_loading=True) for m in MCP_ECHO["tools"]]}
    items = [{"type": "tool_search_call", "id": "tsc_f7df88e46e39", "call_id": "call_d619b6a5278e",
              "status": "completed", "execution": "client", "arguments": {"query": "echo text mcp", "limit": 4}},
             {"type": "tool_search_output", "id": "tso_1", "call_id": "call_d619b6a5278e", "status": "completed",
              "execution": "client", "tools": [loaded]}]
    assistant, tool = build_messages(items, None, ToolMap.build([TOOL_SEARCH], loaded=[loaded]))
    [call] = assistant["tool_calls"]
    assert call["id"] == "call_d619b6a5278e" and call["function"]["name"] == "tool_search"
    assert json.loads(call["function"]["arguments"]) == {"query": "echo text mcp", "limit": 4}
    assert tool["role"] == "tool" and tool["tool_call_id"] == "call_d619b6a5278e"
    assert "agentic_ns__mcp__echo__echo" in tool["content"] and "agentic_ns__mcp__echo__add" in tool["content"]


def test_parallel_calls_then_outputs_in_call_order():
    items = [{"type": "function_call", "call_id": "call_par0", "name": "exec_command", "arguments": '{"cmd": "echo one"}'},
             {"type": "function_call", "call_id": "call_par1", "name": "exec_command", "arguments": '{"cmd": "echo two"}'},
             {"type": "function_call_output", "call_id": "call_par0", "output": "one\n"},
             {"type": "function_call_output", "call_id": "call_par1", "output": "two\n"}]
    assistant, out1, out2 = build_messages(items, None, ToolMap())
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_par0", "call_par1"]
    assert [(m["tool_call_id"], m["content"]) for m in (out1, out2)] == [("call_par0", "one\n"), ("call_par1", "two\n")]


def test_emitted_items_replayed_translate_to_what_the_model_produced(cipher):
    """The gateway must accept its own items back: the replay equals the upstream's original calls."""
    turn = drive(role_chunk(), reasoning_chunk("Plan."),
                 tool_chunk(0, name="agentic_ns__mcp__echo__echo"), tool_chunk(0, arguments='{"text": "a"}'),
                 tool_chunk(1, name="apply_patch"), tool_chunk(1, arguments=json.dumps({"input": PATCH})),
                 tool_chunk(2, name="tool_search"), tool_chunk(2, arguments='{"query": "q"}'),
                 finish_chunk("tool_calls"), usage_chunk(1, 1), seal=cipher.seal)
    reasoning, echo, patch, search = turn.output
    replay = [dict(reasoning, content=None), echo, patch, search]
    [assistant] = build_messages(cipher.reveal(replay), None, ToolMap.build(CODEX_TOOLS))
    assert assistant["reasoning_content"] == "Plan."
    assert [(c["id"], c["function"]["name"]) for c in assistant["tool_calls"]] == [
        (echo["call_id"], "agentic_ns__mcp__echo__echo"), (patch["call_id"], "apply_patch"),
        (search["call_id"], "tool_search")]
    assert json.loads(assistant["tool_calls"][1]["function"]["arguments"]) == {"input": PATCH}
    assert json.loads(assistant["tool_calls"][2]["function"]["arguments"]) == {"query": "q"}


def test_translation_is_deterministic():
    items = [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
             {"type": "function_call", "call_id": "c1", "name": "echo", "namespace": "mcp__echo", "arguments": "{}"},
             {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "x"}]},
             {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": PATCH},
             {"type": "custom_tool_call_output", "call_id": "c2", "output": "ok"}]
    first = encode_objects(build_messages(items, None, ToolMap.build(CODEX_TOOLS)))
    second = encode_objects(build_messages(copy.deepcopy(items), None, ToolMap.build(CODEX_TOOLS)))
    assert first == second


def test_chat_request_for_codex_tools_drops_hosted_tools_and_lowers_the_rest():
    request = {"model": "fake-model", "tools": CODEX_TOOLS, "tool_choice": "auto", "parallel_tool_calls": True}
    tool_map = ToolMap.build(CODEX_TOOLS)
    payload = build_chat_request(request, [{"type": "message", "role": "user", "content": "hi"}], tool_map, "up")
    names = [t["function"]["name"] for t in payload["tools"]]
    assert names == ["exec_command", "apply_patch", "agentic_ns__mcp__echo__echo", "agentic_ns__mcp__echo__add",
                     "tool_search"]
    assert all(t["type"] == "function" for t in payload["tools"])
    assert payload["tool_choice"] == "auto" and payload["parallel_tool_calls"] is True
