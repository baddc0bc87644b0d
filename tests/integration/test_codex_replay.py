"""Replay the captured Codex CLI 0.169.0 traffic (`shared/fixtures/codex/`) through the gateway.

Each test sends a captured request body (model renamed to `fake-model`) through gunicorn to the
loopback fake vLLM, then checks both sides: what reached the upstream (chat messages, lowered and
flattened tools, replayed tool calls) and what came back (a stream valid under `check_stream`,
with Codex's item shapes). The round-trip tests send the gateway's own `output_item.done` items
back the way Codex does (full replay + outputs, `store:false`).
"""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest
import requests

from gateway.catalog import instructions_template
from tests.checks import check_stream, validate_response
from tests.fakes import upstream as fake
from tests.support import ROOT, post_stream
from tests.unit.helpers import check_events, parse_sse

pytestmark = pytest.mark.integration

# Captured Codex traffic, copied from the team's shared/fixtures/codex so every clone replays it.
FIXTURES = ROOT / "tests" / "fixtures" / "codex"
FLAT_ECHO, FLAT_ADD = "agentic_ns__mcp__echo__echo", "agentic_ns__mcp__echo__add"
MULTI_AGENT = [f"agentic_ns__multi_agent_v1__{m}"
               for m in ("close_agent", "resume_agent", "send_input", "spawn_agent", "wait_agent")]
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello from the replay\n*** End Patch\n"


# -- fixture loading -------------------------------------------------------------------------

def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    assert path.exists(), f"Codex fixture {name} is missing from {FIXTURES}"
    return path


def load(name: str):
    return json.loads(fixture_path(name).read_text(encoding="utf-8"))


def codex_body(name: str) -> dict:
    body = load(name)
    body["model"] = "fake-model"
    return body


def codex_headers() -> dict:
    """The headers Codex sent with its POSTs (minus Host and the bearer token)."""
    skip = {"host", "authorization", "content-type"}
    return {k: v for k, v in load("http_request_headers.json") if k.lower() not in skip}


def sse_fixture(name: str) -> list[dict]:
    return parse_sse(fixture_path(name).read_text(encoding="utf-8"))


# -- helpers ---------------------------------------------------------------------------------

def send(gateway: str, body: dict):
    resp, events = post_stream(gateway, body, headers=codex_headers())
    assert resp.status_code == 200, resp.text
    assert resp.headers.get("x-request-id")
    final = check_stream(events)
    assert final["status"] == "completed", final.get("error")
    return events, final


def last_chat(upstream) -> dict:
    chats = upstream.chat_requests()
    assert chats, "nothing reached the upstream"
    return chats[-1]


def tool_names(chat: dict) -> list[str]:
    assert all(t["type"] == "function" and set(t) == {"type", "function"} for t in chat.get("tools", []))
    return [t["function"]["name"] for t in chat.get("tools", [])]


def upstream_tool(chat: dict, name: str) -> dict:
    [entry] = [t["function"] for t in chat["tools"] if t["function"]["name"] == name]
    return entry


def done_items(events) -> list[dict]:
    return [e["item"] for e in events if e["type"] == "response.output_item.done"]


def events_for(events, item_id):
    return [e for e in events if (e.get("item") or {}).get("id") == item_id or e.get("item_id") == item_id]


def text_of(item: dict) -> str:
    return "".join(p["text"] for p in item["content"])


def declared(body: dict, kind: str, name: str | None = None) -> dict:
    [tool] = [t for t in body["tools"] if t["type"] == kind and (name is None or t.get("name") == name)]
    return tool


def type_sequence(events) -> list[str]:
    """Event types with repeated deltas collapsed (the number of deltas is free)."""
    out: list[str] = []
    for event in events:
        if not (out and out[-1] == event["type"] and event["type"].endswith(".delta")):
            out.append(event["type"])
    return out


def assert_developer_and_user_messages(chat: dict, body: dict, count: int = 4) -> None:
    """The first `count` input messages: developer → system, user → user, text parts joined."""
    for message, item in zip(chat["messages"][:count], body["input"][:count]):
        assert message["role"] == {"developer": "system", "user": "user"}[item["role"]]
        assert message["content"] == "\n".join(p["text"] for p in item["content"])


def assert_no_flat_names_leak(events) -> None:
    assert "agentic_ns__" not in json.dumps(events), "a flattened name leaked to the client"


def wait_for_log(server, needle: str, since: int, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tail = server.log_text()[since:]
        if needle in tail:
            return tail
        time.sleep(0.05)
    return server.log_text()[since:]


# -- captured requests -----------------------------------------------------------------------

def test_plain_turn(gateway, upstream):
    body = codex_body("http_plain_turn.json")
    upstream.enqueue(fake.text("hi from the gateway"))
    events, final = send(gateway, body)

    chat = last_chat(upstream)
    assert chat["model"] == "fake-model" and chat["stream"] is True
    assert [m["role"] for m in chat["messages"]] == ["system", "system", "user", "user"]
    assert_developer_and_user_messages(chat, body)
    assert chat["messages"][-1]["content"] == "say hi"
    names = tool_names(chat)
    assert names == ["exec_command", "write_stdin", "request_user_input", "apply_patch", "view_image",
                     *MULTI_AGENT, "get_goal", "create_goal", "update_goal"]
    assert "web_search" not in names and "multi_agent_v1" not in names
    patch = upstream_tool(chat, "apply_patch")
    assert patch["parameters"]["required"] == ["input"] and patch["strict"] is True
    assert declared(body, "custom", "apply_patch")["format"]["definition"] in patch["description"]
    exec_command = upstream_tool(chat, "exec_command")
    assert exec_command["parameters"] == declared(body, "function", "exec_command")["parameters"]
    assert chat["tool_choice"] == "auto" and chat["parallel_tool_calls"] is True
    assert chat.get("reasoning_effort") == "medium"

    [message] = final["output"]
    assert message["type"] == "message" and text_of(message) == "hi from the gateway"
    assert final["model"] == "fake-model" and final["store"] is False
    assert final["tools"] == body["tools"]  # echoed in Codex's own form
    golden = sse_fixture("sse_text_reply.sse")
    assert type_sequence(events) == type_sequence(golden)
    assert_no_flat_names_leak(events)


def test_exec_command_continuation(gateway, upstream):
    body = codex_body("http_exec_command_continuation.json")
    call, output = body["input"][4], body["input"][5]
    upstream.enqueue(fake.text("The command printed hello."))
    _, final = send(gateway, body)

    messages = last_chat(upstream)["messages"]
    assert_developer_and_user_messages(last_chat(upstream), body)
    assert messages[4:] == [
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": call["call_id"], "type": "function",
            "function": {"name": "exec_command", "arguments": call["arguments"]}}]},
        {"role": "tool", "tool_call_id": call["call_id"], "content": output["output"]}]
    assert text_of(final["output"][0]) == "The command printed hello."


def test_exec_command_call_matches_the_captured_stream(gateway, upstream):
    body = codex_body("http_plain_turn.json")
    upstream.enqueue(fake.tool_calls([{"name": "exec_command",
                                       "arguments": {"cmd": "echo hello", "yield_time_ms": 2000}}]))
    events, final = send(gateway, body)
    [item] = final["output"]
    golden = sse_fixture("sse_function_call.sse")
    [golden_item] = done_items(golden)
    assert set(item) >= set(golden_item)
    assert item["type"] == "function_call" and item["name"] == "exec_command" and "namespace" not in item
    assert json.loads(item["arguments"]) == {"cmd": "echo hello", "yield_time_ms": 2000}
    assert type_sequence(events) == type_sequence(golden)


def test_mcp_namespace_turn(gateway, upstream):
    body = codex_body("http_mcp_namespace_turn.json")
    upstream.enqueue(fake.tool_calls([{"name": FLAT_ECHO, "arguments": {"text": "ping"}}]))
    events, final = send(gateway, body)

    chat = last_chat(upstream)
    names = tool_names(chat)
    assert FLAT_ECHO in names and FLAT_ADD in names
    assert set(MULTI_AGENT) <= set(names)
    assert "mcp__echo" not in names and "echo" not in names and "web_search" not in names
    members = {m["name"]: m for m in declared(body, "namespace", "mcp__echo")["tools"]}
    assert upstream_tool(chat, FLAT_ECHO)["parameters"] == members["echo"]["parameters"]
    assert upstream_tool(chat, FLAT_ADD)["parameters"] == members["add"]["parameters"]
    assert len(names) == len(set(names))

    [item] = final["output"]
    assert item["type"] == "function_call"
    assert (item["name"], item["namespace"]) == ("echo", "mcp__echo")
    assert json.loads(item["arguments"]) == {"text": "ping"}
    carrying = [e for e in events if "item" in e]
    assert [e["type"] for e in carrying] == ["response.output_item.added", "response.output_item.done"]
    for event in carrying:
        assert (event["item"]["name"], event["item"]["namespace"]) == ("echo", "mcp__echo")
    [args_done] = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert args_done.get("name", "echo") == "echo"
    golden = sse_fixture("sse_mcp_namespace_call.sse")
    [golden_item] = done_items(golden)
    assert set(item) >= set(golden_item)
    assert type_sequence(events) == type_sequence(golden)
    assert_no_flat_names_leak(events)


def test_mcp_namespace_continuation(gateway, upstream):
    body = codex_body("http_mcp_namespace_continuation.json")
    call, output = body["input"][4], body["input"][5]
    assert call["namespace"] == "mcp__echo" and isinstance(output["output"], list)
    upstream.enqueue(fake.text("The echo said ping."))
    send(gateway, body)

    chat = last_chat(upstream)
    assert FLAT_ECHO in tool_names(chat)
    assert chat["messages"][4:] == [
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": call["call_id"], "type": "function",
            "function": {"name": FLAT_ECHO, "arguments": call["arguments"]}}]},
        {"role": "tool", "tool_call_id": call["call_id"],
         "content": "Wall time: 0.0021 seconds\nOutput:\necho: ping"}]


def test_custom_apply_patch_continuation(gateway, upstream):
    body = codex_body("http_custom_apply_patch_continuation.json")
    call, output = body["input"][4], body["input"][5]
    upstream.enqueue(fake.tool_calls([{"name": "apply_patch", "arguments": {"input": PATCH}}]))
    events, final = send(gateway, body)

    chat = last_chat(upstream)
    names = tool_names(chat)
    assert "web_search" not in names
    patch = upstream_tool(chat, "apply_patch")
    assert patch["parameters"]["properties"]["input"]["type"] == "string"
    assert patch["parameters"]["required"] == ["input"]
    assert declared(body, "custom")["format"]["definition"] in patch["description"]
    search = upstream_tool(chat, "tool_search")
    assert search["parameters"] == declared(body, "tool_search")["parameters"]
    assert search["description"] == declared(body, "tool_search")["description"]
    [assistant, tool] = chat["messages"][4:]
    [replayed] = assistant["tool_calls"]
    assert replayed["id"] == call["call_id"] and replayed["function"]["name"] == "apply_patch"
    assert json.loads(replayed["function"]["arguments"]) == {"input": call["input"]}
    assert tool == {"role": "tool", "tool_call_id": call["call_id"], "content": output["output"]}

    [item] = final["output"]
    assert item["type"] == "custom_tool_call" and item["name"] == "apply_patch"
    assert item["input"] == PATCH and item["id"].startswith("ctc_")
    deltas = [e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"]
    assert "".join(deltas) == PATCH
    [input_done] = [e for e in events if e["type"] == "response.custom_tool_call_input.done"]
    assert input_done["input"] == PATCH
    golden = sse_fixture("sse_custom_tool_call.sse")
    [golden_item] = done_items(golden)
    assert set(item) >= set(golden_item)
    assert type_sequence(events) == type_sequence(golden)


def test_tool_search_flow(gateway, upstream):
    body = codex_body("http_tool_search_flow.json")
    tsc, tso, call, output = body["input"][4:8]
    assert (tsc["type"], tso["type"], call["type"]) == ("tool_search_call", "tool_search_output", "function_call")
    assert not any(t["type"] == "namespace" for t in body["tools"])

    # 1. before the search: the MCP namespace is nowhere upstream; the model calls tool_search
    first = dict(body, input=body["input"][:4])
    upstream.enqueue(fake.tool_calls([{"name": "tool_search", "arguments": {"query": "echo text mcp", "limit": 4}}]))
    events, final = send(gateway, first)
    before = tool_names(last_chat(upstream))
    assert "tool_search" in before
    assert not [n for n in before if "mcp__echo" in n]
    [search] = final["output"]
    assert search["type"] == "tool_search_call" and search["execution"] == "client"
    assert search["arguments"] == {"query": "echo text mcp", "limit": 4}
    assert search["id"].startswith("tsc_") and search["call_id"]
    golden = sse_fixture("sse_tool_search_call.sse")
    assert set(search) >= set(done_items(golden)[0])
    assert type_sequence(events) == type_sequence(golden)

    # 2. our own call replayed + Codex's tool_search_output: the members are offered from now on
    loaded_output = dict(tso, call_id=search["call_id"])
    second = dict(body, input=body["input"][:4] + [search, loaded_output])
    upstream.enqueue(fake.tool_calls([{"name": FLAT_ECHO, "arguments": {"text": "ping"}}]))
    _, final = send(gateway, second)
    chat = last_chat(upstream)
    after = tool_names(chat)
    assert after[:len(before)] == before and FLAT_ECHO in after and FLAT_ADD in after
    assert "defer_loading" not in json.dumps(chat["tools"])
    replayed, loaded_msg = chat["messages"][4:]
    assert replayed["tool_calls"][0]["function"]["name"] == "tool_search"
    assert json.loads(replayed["tool_calls"][0]["function"]["arguments"]) == {"query": "echo text mcp", "limit": 4}
    assert loaded_msg["role"] == "tool" and loaded_msg["tool_call_id"] == search["call_id"]
    [echo] = final["output"]
    assert (echo["type"], echo["name"], echo["namespace"]) == ("function_call", "echo", "mcp__echo")

    # 3. the captured third request, verbatim
    upstream.enqueue(fake.text("echo: ping"))
    send(gateway, body)
    chat = last_chat(upstream)
    assert tool_names(chat) == after  # same history → same tools, in the same order
    assert [m["role"] for m in chat["messages"][4:]] == ["assistant", "tool", "assistant", "tool"]
    search_msg, loaded_msg, call_msg, output_msg = chat["messages"][4:]
    assert search_msg["tool_calls"][0]["id"] == tsc["call_id"]
    assert search_msg["tool_calls"][0]["function"]["name"] == "tool_search"
    assert loaded_msg["tool_call_id"] == tso["call_id"] and FLAT_ECHO in loaded_msg["content"]
    assert call_msg["tool_calls"] == [{"id": call["call_id"], "type": "function",
                                       "function": {"name": FLAT_ECHO, "arguments": call["arguments"]}}]
    assert output_msg == {"role": "tool", "tool_call_id": call["call_id"],
                          "content": "\n".join(p["text"] for p in output["output"])}


def test_parallel_calls_continuation(gateway, upstream):
    body = codex_body("http_parallel_calls_continuation.json")
    fc1, fc2, out1, out2 = body["input"][4:8]
    upstream.enqueue(fake.tool_calls([{"name": "exec_command", "arguments": {"cmd": "echo three"}},
                                      {"name": "exec_command", "arguments": {"cmd": "echo four"}}]))
    events, final = send(gateway, body)

    messages = last_chat(upstream)["messages"]
    assert messages[4:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": fc1["call_id"], "type": "function", "function": {"name": "exec_command", "arguments": fc1["arguments"]}},
            {"id": fc2["call_id"], "type": "function", "function": {"name": "exec_command", "arguments": fc2["arguments"]}}]},
        {"role": "tool", "tool_call_id": out1["call_id"], "content": out1["output"]},
        {"role": "tool", "tool_call_id": out2["call_id"], "content": out2["output"]}]

    first, second = final["output"]
    assert [json.loads(i["arguments"])["cmd"] for i in (first, second)] == ["echo three", "echo four"]
    assert first["call_id"] != second["call_id"]
    added = [e["output_index"] for e in events if e["type"] == "response.output_item.added"]
    assert added == [0, 1]
    golden = sse_fixture("sse_parallel_function_calls.sse")
    assert [i["type"] for i in done_items(golden)] == [i["type"] for i in final["output"]]


def test_output_schema_and_image(gateway, upstream):
    body = codex_body("http_output_schema.json")
    fmt = body["text"]["format"]
    user = body["input"][3]
    image_url = user["content"][1]["image_url"]
    upstream.enqueue(fake.text('{"answer": "red"}'))
    _, final = send(gateway, body)

    chat = last_chat(upstream)
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "codex_output_schema", "schema": fmt["schema"], "strict": True}}
    content = chat["messages"][3]["content"]
    assert [p["type"] for p in content] == ["text", "image_url", "text", "text"]
    assert content[0]["text"] == user["content"][0]["text"]
    assert content[1]["image_url"]["url"] == image_url and image_url.startswith("data:image/png;base64,")
    assert [content[2]["text"], content[3]["text"]] == ["</image>", "json please"]
    assert json.loads(text_of(final["output"][0])) == {"answer": "red"}
    assert final["text"]["format"]["name"] == "codex_output_schema"


def test_next_turn_reasoning_replay_with_a_foreign_blob(gateway, gunicorn_gateway, upstream):
    body = codex_body("http_next_turn_reasoning_replay.json")
    reasoning, assistant, user = body["input"][4:7]
    assert reasoning["content"] is None and reasoning["encrypted_content"]
    log_start = len(gunicorn_gateway.log_text())
    upstream.enqueue(fake.text("second answer"))
    _, final = send(gateway, body)

    messages = last_chat(upstream)["messages"]
    assert messages[4:] == [
        # the capture server's blob is not ours: ignored; the visible summary is what is left
        {"role": "assistant", "content": text_of(assistant),
         "reasoning_content": reasoning["summary"][0]["text"]},
        {"role": "user", "content": "second turn"}]
    assert text_of(final["output"][0]) == "second answer"
    assert "cannot decrypt" in wait_for_log(gunicorn_gateway, "cannot decrypt", log_start)


# -- round trips: the gateway's own items, replayed as Codex does ----------------------------

def test_round_trip_namespaced_call_with_reasoning(gateway, upstream):
    body = codex_body("http_mcp_namespace_turn.json")
    upstream.enqueue(fake.tool_calls([{"name": FLAT_ECHO, "arguments": {"text": "round trip"}}],
                                     reasoning="I should call the echo tool."))
    events, _ = send(gateway, body)
    first_chat = last_chat(upstream)
    reasoning, call = done_items(events)
    assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"]
    assert (call["name"], call["namespace"]) == ("echo", "mcp__echo")

    replay = dict(reasoning, content=None)  # Codex replays reasoning with content:null
    output = {"type": "function_call_output", "id": "fco_01a1fd13-0000-7000-8000-000000000001",
              "call_id": call["call_id"],
              "output": [{"type": "input_text", "text": "Output:"}, {"type": "input_text", "text": "echo: round trip"}]}
    second = dict(body, input=body["input"] + [replay, call, output])
    upstream.enqueue(fake.text("done"))
    send(gateway, second)

    chat = last_chat(upstream)
    assert tool_names(chat) == tool_names(first_chat)
    assert chat["messages"][:len(first_chat["messages"])] == first_chat["messages"]
    assistant, tool = chat["messages"][len(first_chat["messages"]):]
    assert assistant == {"role": "assistant", "content": None, "reasoning_content": "I should call the echo tool.",
                         "tool_calls": [{"id": call["call_id"], "type": "function",
                                         "function": {"name": FLAT_ECHO, "arguments": call["arguments"]}}]}
    assert tool == {"role": "tool", "tool_call_id": call["call_id"], "content": "Output:\necho: round trip"}


def test_round_trip_custom_tool_call(gateway, upstream):
    body = codex_body("http_custom_apply_patch_continuation.json")
    first = dict(body, input=body["input"][:4])
    upstream.enqueue(fake.tool_calls([{"name": "apply_patch", "arguments": {"input": PATCH}}]))
    events, _ = send(gateway, first)
    first_chat = last_chat(upstream)
    [call] = done_items(events)
    assert call["type"] == "custom_tool_call" and call["input"] == PATCH

    output = {"type": "custom_tool_call_output", "id": "ctco_01a1fd13-0000-7000-8000-000000000002",
              "call_id": call["call_id"], "output": "Success. Updated the following files:\nA hello.txt\n"}
    upstream.enqueue(fake.text("patched"))
    send(gateway, dict(body, input=first["input"] + [call, output]))

    chat = last_chat(upstream)
    assert tool_names(chat) == tool_names(first_chat)
    assistant, tool = chat["messages"][len(first_chat["messages"]):]
    [replayed] = assistant["tool_calls"]
    assert replayed["id"] == call["call_id"] and replayed["function"]["name"] == "apply_patch"
    assert json.loads(replayed["function"]["arguments"]) == {"input": PATCH}
    assert tool == {"role": "tool", "tool_call_id": call["call_id"], "content": output["output"]}


def _reasoning_turn(gateway, upstream):
    body = codex_body("http_plain_turn.json")
    upstream.enqueue(fake.text("hi", reasoning="Secret chain of thought."))
    events, _ = send(gateway, body)
    reasoning, message = done_items(events)
    assert reasoning["type"] == "reasoning" and message["type"] == "message"
    assert isinstance(reasoning["encrypted_content"], str) and reasoning["encrypted_content"]
    assert "Secret chain of thought." not in reasoning["encrypted_content"]
    return body, reasoning, message


def _next_turn(body, reasoning, message):
    replay = {"type": "reasoning", "id": reasoning["id"], "summary": reasoning["summary"], "content": None,
              "encrypted_content": reasoning["encrypted_content"]}
    user = {"type": "message", "id": "msg_01a1fd17-0000-7000-8000-000000000003", "role": "user",
            "content": [{"type": "input_text", "text": "second turn"}]}
    return dict(body, input=body["input"] + [replay, message, user])


def test_round_trip_reasoning_from_encrypted_content_only(gateway, upstream):
    body, reasoning, message = _reasoning_turn(gateway, upstream)
    upstream.enqueue(fake.text("second"))
    send(gateway, _next_turn(body, reasoning, message))
    messages = last_chat(upstream)["messages"]
    assert messages[4:] == [{"role": "assistant", "content": "hi", "reasoning_content": "Secret chain of thought."},
                            {"role": "user", "content": "second turn"}]


def test_round_trip_tampered_reasoning_blob_is_ignored(gateway, gunicorn_gateway, upstream):
    body, reasoning, message = _reasoning_turn(gateway, upstream)
    blob = reasoning["encrypted_content"]
    middle = len(blob) // 2
    tampered = dict(reasoning, encrypted_content=blob[:middle] + ("A" if blob[middle] != "A" else "B") + blob[middle + 1:])
    log_start = len(gunicorn_gateway.log_text())
    upstream.enqueue(fake.text("second"))
    send(gateway, _next_turn(body, tampered, message))
    messages = last_chat(upstream)["messages"]
    assert messages[4:] == [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "second turn"}]
    assert "cannot decrypt" in wait_for_log(gunicorn_gateway, "cannot decrypt", log_start)


# -- stored responses: restored items in storage, flat names in the history sent later ------

def test_stored_namespaced_call_is_restored_and_continued_by_previous_response_id(gateway, upstream):
    body = dict(codex_body("http_mcp_namespace_turn.json"), store=True)
    upstream.enqueue(fake.tool_calls([{"name": FLAT_ECHO, "arguments": {"text": "stored"}}]))
    _, final = send(gateway, body)
    [call] = final["output"]

    stored = requests.get(f"{gateway}/v1/responses/{final['id']}", timeout=10)
    assert stored.status_code == 200
    validate_response(stored.json())
    [stored_call] = stored.json()["output"]
    assert (stored_call["name"], stored_call["namespace"]) == ("echo", "mcp__echo")

    upstream.enqueue(fake.text("continued"))
    send(gateway, {"model": "fake-model", "store": True, "previous_response_id": final["id"], "tools": body["tools"],
                   "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "echo: stored"}]})
    messages = last_chat(upstream)["messages"]
    assert messages[-2]["tool_calls"] == [{"id": call["call_id"], "type": "function",
                                           "function": {"name": FLAT_ECHO, "arguments": call["arguments"]}}]
    assert messages[-1] == {"role": "tool", "tool_call_id": call["call_id"], "content": "echo: stored"}


def test_tools_loaded_by_tool_search_output_stay_available_through_previous_response_id(gateway, upstream):
    body = dict(codex_body("http_tool_search_flow.json"), store=True)
    body["input"] = body["input"][:6]  # … + tool_search_call + tool_search_output
    upstream.enqueue(fake.tool_calls([{"name": FLAT_ECHO, "arguments": {"text": "one"}}]))
    _, first = send(gateway, body)
    [call] = first["output"]
    assert (call["name"], call["namespace"]) == ("echo", "mcp__echo")

    upstream.enqueue(fake.tool_calls([{"name": FLAT_ADD, "arguments": {"a": 1, "b": 2}}]))
    _, second = send(gateway, {"model": "fake-model", "store": True, "previous_response_id": first["id"],
                               "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "one"}]})
    assert {FLAT_ECHO, FLAT_ADD} <= set(tool_names(last_chat(upstream)))
    [add] = second["output"]
    assert (add["name"], add["namespace"]) == ("add", "mcp__echo")


def test_deferred_namespace_in_tools_is_hidden_until_a_tool_search_output_loads_it(gateway, upstream):
    body = codex_body("http_tool_search_flow.json")
    tsc, tso = body["input"][4:6]
    body["tools"] = body["tools"] + copy.deepcopy(tso["tools"])  # declared up front, every member deferred
    upstream.enqueue(fake.text("no tools yet"))
    send(gateway, dict(body, input=body["input"][:4]))
    assert not [n for n in tool_names(last_chat(upstream)) if "mcp__echo" in n]
    upstream.enqueue(fake.text("loaded"))
    send(gateway, dict(body, input=body["input"][:6]))
    names = tool_names(last_chat(upstream))
    assert names.count(FLAT_ECHO) == 1 and names.count(FLAT_ADD) == 1


# -- JSON responses and errors ---------------------------------------------------------------

@pytest.mark.parametrize("called", [FLAT_ECHO, "mcp__echo.echo", "mcp__echo_echo"])
def test_json_response_restores_namespaced_calls(gateway, upstream, called):
    body = dict(codex_body("http_mcp_namespace_turn.json"), stream=False)
    upstream.enqueue(fake.tool_calls([{"name": called, "arguments": {"text": "json"}}]))
    resp = requests.post(f"{gateway}/v1/responses", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    final = resp.json()
    validate_response(final)
    [item] = final["output"]
    assert (item["type"], item["name"], item["namespace"]) == ("function_call", "echo", "mcp__echo")
    assert "agentic_ns__" not in resp.text


def test_json_response_custom_and_tool_search_calls(gateway, upstream):
    body = dict(codex_body("http_custom_apply_patch_continuation.json"), stream=False)
    upstream.enqueue(fake.tool_calls([{"name": "apply_patch", "arguments": {"input": PATCH}},
                                      {"name": "tool_search", "arguments": {"query": "q"}}]))
    resp = requests.post(f"{gateway}/v1/responses", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    validate_response(resp.json())
    patch, search = resp.json()["output"]
    assert (patch["type"], patch["input"]) == ("custom_tool_call", PATCH)
    assert (search["type"], search["execution"], search["arguments"]) == ("tool_search_call", "client", {"query": "q"})


def test_context_overflow_on_a_codex_turn_is_a_failed_response_codex_does_not_retry(gateway, upstream):
    body = codex_body("http_exec_command_continuation.json")
    upstream.enqueue(fake.context_overflow())
    resp, events = post_stream(gateway, body, headers=codex_headers())
    assert resp.status_code == 200
    final = check_events(events)
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.failed"]
    assert final["error"]["code"] == "context_length_exceeded"


# -- tool_choice, additional_tools, collisions -----------------------------------------------

def test_tool_choice_naming_a_namespaced_function(gateway, upstream):
    body = codex_body("http_mcp_namespace_turn.json")
    choice = {"type": "function", "namespace": "mcp__echo", "name": "echo"}
    upstream.enqueue(fake.tool_calls([{"name": FLAT_ECHO, "arguments": {"text": "forced"}}]))
    _, final = send(gateway, dict(body, tool_choice=choice))
    assert last_chat(upstream)["tool_choice"] == {"type": "function", "function": {"name": FLAT_ECHO}}
    assert final["tool_choice"] == choice


def test_allowed_tools_with_namespaced_entries(gateway, upstream):
    body = codex_body("http_mcp_namespace_turn.json")
    choice = {"type": "allowed_tools", "mode": "required",
              "tools": [{"type": "function", "namespace": "mcp__echo", "name": "echo"},
                        {"type": "function", "name": "exec_command"}]}
    upstream.enqueue(fake.tool_calls([{"name": FLAT_ECHO, "arguments": {"text": "x"}}]))
    _, final = send(gateway, dict(body, tool_choice=choice))
    chat = last_chat(upstream)
    assert chat["tool_choice"] == "required"
    assert tool_names(chat) == ["exec_command", FLAT_ECHO]
    assert final["tool_choice"] == choice
    assert (final["output"][0]["name"], final["output"][0]["namespace"]) == ("echo", "mcp__echo")


def test_additional_tools_input_item_is_honoured(gateway, upstream):
    body = codex_body("http_plain_turn.json")
    namespace = load("http_tool_search_flow.json")["input"][5]["tools"][0]
    additional = {"type": "additional_tools", "id": "at_01a1fd13-0000-7000-8000-000000000004",
                  "role": "developer", "tools": [namespace]}
    body["input"] = body["input"][:3] + [additional] + body["input"][3:]
    upstream.enqueue(fake.tool_calls([{"name": FLAT_ADD, "arguments": {"a": 1, "b": 2}}]))
    events, final = send(gateway, body)
    chat = last_chat(upstream)
    assert FLAT_ECHO in tool_names(chat) and FLAT_ADD in tool_names(chat)
    assert [m["role"] for m in chat["messages"]] == ["system", "system", "user", "user"]
    [call] = final["output"]
    assert (call["name"], call["namespace"]) == ("add", "mcp__echo")
    assert_no_flat_names_leak(events)


@pytest.mark.parametrize("extra", [
    pytest.param({"type": "function", "name": "echo", "parameters": {"type": "object", "properties": {}}},
                 id="member-bare-name-vs-top-level"),
    pytest.param({"type": "function", "name": "exec_command", "parameters": {"type": "object", "properties": {}}},
                 id="duplicate-function"),
    pytest.param({"type": "function", "name": FLAT_ECHO, "parameters": {"type": "object", "properties": {}}},
                 id="flat-name-vs-top-level"),
])
def test_tool_name_collisions_are_rejected_with_400(gateway, upstream, extra):
    body = codex_body("http_mcp_namespace_turn.json")
    body["tools"] = body["tools"] + [extra]
    resp = requests.post(f"{gateway}/v1/responses", json=body, headers=codex_headers(), timeout=30)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert upstream.chat_requests() == []


# -- catalog ---------------------------------------------------------------------------------

def test_codex_catalog_through_the_gateway(gateway, upstream):
    headers = {k: v for k, v in load("models_request.json")["headers"] if k.lower() != "host"}
    query = load("models_request.json")["query"]
    resp = requests.get(f"{gateway}/v1/models", params=query, headers=headers, timeout=10)
    assert resp.status_code == 200
    body = resp.json()
    assert body["object"] == "list"
    assert {"fake-model", "other-model", "alias-model"} <= {m["id"] for m in body["data"]}
    models = {m["slug"]: m for m in body["models"]}
    assert {"fake-model", "other-model", "alias-model"} <= set(models)
    for slug in ("fake-model", "other-model", "alias-model"):
        entry = models[slug]
        assert entry["context_window"] == 32768, slug
        assert entry["model_messages"]["instructions_template"] == instructions_template()
        assert entry["model_messages"]["instructions_template"].strip()
        assert entry["display_name"] and entry["visibility"] == "list" and entry["supported_in_api"] is True
        assert "use_responses_lite" not in entry and "upgrade" not in entry


def test_models_without_client_version_has_no_codex_key(gateway, upstream):
    resp = requests.get(f"{gateway}/v1/models", timeout=10)
    assert resp.status_code == 200
    body = resp.json()
    assert "models" not in body
    assert body["object"] == "list" and {m["id"] for m in body["data"]} >= {"fake-model", "alias-model"}
