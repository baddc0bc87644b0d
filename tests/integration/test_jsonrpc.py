"""JSON-RPC delegation (`responsesApi/call`), driven by a simulated agent host over both transports:
stdio (`python -m gateway.jsonrpc` as the host's child, sharing the session gateway's database) and
the session gunicorn gateway's `/v1/jsonrpc` WebSocket. Every call's events go through
`check_stream` (the openai SDK's event types and the event-order checker)."""
from __future__ import annotations

import json
import re

import pytest
import requests

from tests.checks import check_stream, collect_text
from tests.fakes import upstream as fake
from tests.integration.test_codex_replay import FLAT_ECHO, codex_body, codex_headers, declared, last_chat
from tests.support import post_stream

pytestmark = pytest.mark.integration
MODEL = "fake-model"
WEATHER = {"type": "function", "name": "get_weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def completed(events: list[dict], result: dict) -> dict:
    assert result["status"] == 200 and "error" not in result, result
    final = check_stream(events)
    assert final["status"] == "completed", final
    return final


def test_a_host_delegates_two_calls_of_a_conversation(rpc_host, upstream):
    """The flow of the delegation design's own test: the host starts, a user message becomes a
    delegated call streaming created → the assistant message → completed, then is answered; the
    next turn is a second call."""
    answer = rpc_host.answer(rpc_host.request("initialize", {"clientInfo": {"name": "simulated-host", "version": "1"}}))
    assert answer["result"]["serverInfo"]["name"] == "responses-gateway" and answer["result"]["serverInfo"]["version"]
    rpc_host.send({"method": "initialized"})
    history = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hello"}]}]
    for call_id, reply in (("call-1", "Hello!"), ("call-2", "Hello again!")):
        upstream.enqueue(fake.text(reply))
        events, result = rpc_host.run_call(call_id, {"model": MODEL, "input": history, "store": False, "stream": True})
        final = completed(events, result)
        kinds = [e["type"] for e in events]
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
        [message] = [e["item"] for e in events if e["type"] == "response.output_item.done"]
        assert message["role"] == "assistant" and collect_text(final) == reply
        history = history + [message, {"type": "message", "role": "user",
                                       "content": [{"type": "input_text", "text": "Again"}]}]
    assert [m["role"] for m in upstream.chat_requests()[-1]["messages"]] == ["user", "assistant", "user"]


def _shape(events: list[dict]) -> str:
    """The events with ids, timestamps and sealed blobs blanked: what must be the same over SSE and
    JSON-RPC."""
    text = re.sub(r'"(resp|msg|rs|req)_[0-9a-f]+"', '"ID"', json.dumps(events))
    return re.sub(r'"(created_at|completed_at|encrypted_content)": ("[^"]*"|\d+)', r'"\1": 0', text)


def test_events_are_what_sse_sends_for_the_same_call(rpc_host, gateway, upstream):
    body = {"model": MODEL, "input": "hi", "store": True, "stream": True}
    upstream.enqueue(fake.text("Same over both", reasoning="think first"))
    resp, sse_events = post_stream(gateway, body)
    assert resp.status_code == 200
    upstream.enqueue(fake.text("Same over both", reasoning="think first"))
    events, result = rpc_host.run_call("c", body, headers={"x-request-id": "req-from-the-host"})
    completed(events, result)
    assert result["requestId"] == "req-from-the-host"
    assert _shape(events) == _shape(sse_events)
    stored = requests.get(f"{gateway}/v1/responses/{events[0]['response']['id']}", timeout=10).json()
    assert stored["status"] == "completed" and collect_text(stored) == "Same over both"


def test_a_tool_call_chain_across_two_calls(rpc_host, gateway, upstream):
    upstream.enqueue(fake.tool_calls([{"name": "get_weather", "arguments": {"city": "Paris"}}]))
    events, result = rpc_host.run_call("first", {"model": MODEL, "input": "Weather in Paris?", "tools": [WEATHER]})
    first = completed(events, result)
    [call] = first["output"]
    assert call["type"] == "function_call" and call["name"] == "get_weather"

    upstream.enqueue(fake.text("It is sunny."))
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": '{"sky": "sunny"}'}
    events, result = rpc_host.run_call("second", {"model": MODEL, "previous_response_id": first["id"],
                                                  "input": [output]})
    second = completed(events, result)
    assert second["previous_response_id"] == first["id"] and collect_text(second) == "It is sunny."
    messages = last_chat(upstream)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    stored = requests.get(f"{gateway}/v1/responses/{second['id']}", timeout=10).json()
    assert stored["previous_response_id"] == first["id"]


def test_a_codex_shaped_call_and_its_encrypted_reasoning_replay(rpc_host, upstream):
    body = codex_body("http_mcp_namespace_turn.json")
    body["tools"].append(declared(codex_body("http_custom_apply_patch_continuation.json"), "custom", "apply_patch"))
    assert body["store"] is False and declared(body, "namespace", "mcp__echo")
    upstream.enqueue(fake.tool_calls([{"name": FLAT_ECHO, "arguments": {"text": "over json-rpc"}}],
                                     reasoning="I should call the echo tool."))
    events, result = rpc_host.run_call("turn-1", body, headers=codex_headers())
    completed(events, result)
    first_chat = last_chat(upstream)
    assert {FLAT_ECHO, "apply_patch"} <= {tool["function"]["name"] for tool in first_chat["tools"]}
    reasoning, call = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert reasoning["encrypted_content"] and (call["name"], call["namespace"]) == ("echo", "mcp__echo")
    assert "I should call" not in reasoning["encrypted_content"]

    output = {"type": "function_call_output", "call_id": call["call_id"], "output": "echo: over json-rpc"}
    upstream.enqueue(fake.text("done"))
    replay = body["input"] + [dict(reasoning, content=None), call, output]   # as Codex replays a turn
    events, result = rpc_host.run_call("turn-2", dict(body, input=replay), headers=codex_headers())
    completed(events, result)
    assistant, tool = last_chat(upstream)["messages"][len(first_chat["messages"]):]
    assert assistant["reasoning_content"] == "I should call the echo tool."
    assert assistant["tool_calls"][0]["function"]["name"] == FLAT_ECHO
    assert tool == {"role": "tool", "tool_call_id": call["call_id"], "content": "echo: over json-rpc"}


def test_eight_concurrent_calls_interleave_on_one_connection(rpc_host, upstream):
    replies = [f"reply number {i} " * 3 for i in range(8)]
    upstream.enqueue(*[fake.text(reply, delay_s=0.02) for reply in replies])
    ids = {f"call-{i}": rpc_host.call(f"call-{i}", {"model": MODEL, "input": f"question {i}"}) for i in range(8)}
    texts = set()
    for call_id, msg_id in ids.items():
        result = rpc_host.answer(msg_id, timeout=30)["result"]
        texts.add(collect_text(completed(rpc_host.events[call_id], result)))
    assert texts == set(replies)
    switches = sum(a != b for a, b in zip(rpc_host.order, rpc_host.order[1:]))
    assert switches > 16, f"the calls' events did not interleave ({switches} switches)"


def test_an_upstream_failure_mid_stream_is_response_failed_then_answered_200_with_the_error(rpc_host, upstream):
    upstream.enqueue(fake.drop_after(4))
    events, result = rpc_host.run_call("drops", {"model": MODEL, "input": "hi"})
    final = check_stream(events)
    assert events[-1]["type"] == "response.failed" and final["error"]["code"] == "server_error"
    assert result["status"] == 200 and result["error"] and result["requestId"].startswith("req_")


@pytest.mark.parametrize("case, body, url, status", [
    pytest.param("no model", {"input": "hi"}, None, 400, id="no-model"),
    pytest.param("bad input", {"model": MODEL, "input": 5}, None, 400, id="bad-input"),
    pytest.param("other api", {"model": MODEL, "input": "hi"}, "http://gateway.invalid/v1/chat/completions", 404,
                 id="not-the-responses-api"),
    pytest.param("unknown model", {"model": "no-such-model", "input": "hi"}, None, 404, id="unknown-model"),
])
def test_a_call_refused_before_streaming_is_answered_with_its_status_and_no_events(rpc_host, upstream, case, body,
                                                                                   url, status):
    kwargs = {"url": url} if url else {}
    events, result = rpc_host.run_call("refused", body, **kwargs)
    assert events == [] and result["status"] == status and result["error"], result
    assert not upstream.chat_requests() or case == "unknown model"


def test_over_a_responses_upstream_a_call_passes_codex_headers_on_as_http_does(open_rpc_host, upstream):
    rpc_host = open_rpc_host(UPSTREAM_API="responses")
    upstream.enqueue(fake.text("proxied"))
    events, result = rpc_host.run_call("proxied", {"model": MODEL, "input": "hi", "store": False},
                                       headers={"session_id": "sess-1", "Authorization": "Bearer client-secret"})
    assert collect_text(completed(events, result)) == "proxied"
    [sent] = [r for r in upstream.requests if r["path"].endswith("/responses")]
    headers = {name.lower(): value for name, value in sent["headers"].items()}
    assert headers["session_id"] == "sess-1" and "client-secret" not in headers.get("authorization", "")


def test_a_call_with_stream_false_still_streams_its_events_then_answers(rpc_host, upstream):
    upstream.enqueue(fake.text("all the events"))
    events, result = rpc_host.run_call("not-streamed", {"model": MODEL, "input": "hi", "stream": False}, stream=False)
    assert collect_text(completed(events, result)) == "all the events"
    assert any(e["type"] == "response.output_text.delta" for e in events)
