"""One integration suite for every upstream: the same scenarios run against the loopback fake
(scripted answers, tests/integration/test_upstream_kinds.py) and against a real vLLM
(tests/vllm/test_real_vllm.py), each through a gunicorn gateway of either upstream kind.

Assertions hold for both: against the fake an answer is scripted (`Target.prime`), against the
real tiny model it is random, so a scenario checks shapes, statuses, names and schemas, and the
exact text only where it was scripted. A random model does not produce every shape on every try
(an empty answer, a tool call its parser dropped), so against the real server a scenario that
needs a shape asks again, up to `Target.attempts` times. Every Response and every event goes
through the openai SDK's types (tests/checks.py).
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

import requests
import simple_websocket

from tests.checks import TERMINAL, check_stream, collect_text, validate_response
from tests.fakes import upstream as fake
from tests.fakes.upstream import FakeUpstream
from tests.jsonrpc_host import WebSocketHost
from tests.support import iter_sse

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["paris", "london"]}},
                          "required": ["city"], "additionalProperties": False}}
ZONE_PATTERN = "^[A-Z]{3}$"
TIME = {"type": "function", "name": "get_time", "description": "The time in a zone.",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string", "pattern": ZONE_PATTERN}},
                       "required": ["zone"], "additionalProperties": False}}
FILES = {"type": "namespace", "name": "mcp__files", "description": "File tools.",
         "tools": [{"type": "function", "name": "read_file",
                    "parameters": {"type": "object", "properties": {"path": {"type": "string", "enum": ["a.txt"]}},
                                   "required": ["path"], "additionalProperties": False}}]}
PATCH = {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch.", "format": {"type": "text"}}
SEARCH = {"type": "tool_search", "description": "Find more tools."}
ANSWER_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
                 "required": ["answer"], "additionalProperties": False}


@dataclass
class Target:
    url: str                          # the gateway
    kind: str                         # its UPSTREAM_API
    model: str
    fake: FakeUpstream | None = None  # None: a real model server
    attempts: int = 1
    context_window: int = 32768       # the upstream's max_model_len

    def prime(self, *scripts: fake.Script) -> None:
        """Script the fake's next answers (a real server answers as it likes)."""
        if self.fake is not None:
            self.fake.enqueue(*scripts)

    def post(self, body: dict[str, Any]) -> requests.Response:
        return requests.post(f"{self.url}/v1/responses", json={"model": self.model, **body}, timeout=120)

    def stream(self, body: dict[str, Any]) -> tuple[requests.Response, list[dict[str, Any]]]:
        resp = requests.post(f"{self.url}/v1/responses", json={"model": self.model, **body, "stream": True},
                             stream=True, timeout=120)
        return resp, (list(iter_sse(resp)) if resp.status_code == 200 else [])

    def completed(self, body: dict[str, Any]) -> dict[str, Any]:
        resp = self.post(body)
        assert resp.status_code == 200, resp.text
        final = resp.json()
        validate_response(final)
        assert final["status"] == "completed", final
        return final

    def streamed(self, body: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        resp, events = self.stream(body)
        assert resp.status_code == 200, resp.text
        return events, check_stream(events)

    def until(self, attempt: Callable[[], Any], wanted: Callable[[Any], bool]) -> Any:
        """The first result of `attempt` that is `wanted` (the fake's first always is)."""
        for _ in range(self.attempts):
            result = attempt()
            if wanted(result):
                return result
        raise AssertionError(f"no wanted result in {self.attempts} attempts; last: {str(result)[:2000]}")

    def upstream_bodies(self) -> list[dict[str, Any]]:
        return self.fake.model_requests() if self.fake is not None else []


def _items(final: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [item for item in final["output"] if item["type"] == kind]


def _text_deltas(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


# -- text ---------------------------------------------------------------------------------------

def plain_text(t: Target) -> None:
    t.prime(fake.text("A plain answer."))
    final = t.until(lambda: t.completed({"input": "Say hello."}), lambda f: collect_text(f))
    assert {item["type"] for item in final["output"]} == {"message"}
    assert final["usage"]["output_tokens"] > 0
    assert t.fake is None or collect_text(final) == "A plain answer."
    assert requests.get(f"{t.url}/v1/responses/{final['id']}", timeout=10).json() == final


def streamed_text(t: Target) -> None:
    t.prime(fake.text("Streamed, piece by piece."))
    events, final = t.until(lambda: t.streamed({"input": "Say something."}), lambda r: _text_deltas(r[0]))
    assert final["status"] == "completed"
    assert _text_deltas(events) == collect_text(final)
    assert t.fake is None or collect_text(final) == "Streamed, piece by piece."


def stateless_text(t: Target) -> None:
    """`store: false` without history: the proxy path on a Responses upstream."""
    t.prime(fake.text("Nothing kept."))
    events, final = t.until(lambda: t.streamed({"input": "Say hi.", "store": False}), lambda r: _text_deltas(r[0]))
    assert final["status"] == "completed" and final["store"] is False
    assert requests.get(f"{t.url}/v1/responses/{final['id']}", timeout=10).status_code == 404
    if t.fake and t.kind == "responses":
        assert t.upstream_bodies()[-1] == {"model": t.model, "input": "Say hi.", "store": False, "stream": True}


def max_output_tokens(t: Target) -> None:
    t.prime(fake.length("Cut off"), fake.length("Cut off"))
    body = {"input": "Tell me a long story.", "max_output_tokens": 1}
    events, final = t.until(lambda: t.streamed(body), lambda r: r[1]["status"] == "incomplete")
    assert events[-1]["type"] == "response.incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][-1]["status"] == "incomplete"
    assert final["usage"]["output_tokens"] >= 1
    answer = t.until(lambda: t.post(body).json(), lambda f: f.get("status") == "incomplete")
    validate_response(answer)
    assert answer["output"][-1]["status"] == "incomplete"


# -- tool calls ---------------------------------------------------------------------------------

def _one_call(final: dict[str, Any], kind: str) -> dict[str, Any] | None:
    calls = _items(final, kind)
    return calls[0] if len(calls) == 1 else None


def forced_required(t: Target) -> None:
    t.prime(fake.tool_calls([{"name": "get_weather", "arguments": {"city": "paris"}}]))
    body = {"input": "What is the weather?", "tools": [WEATHER], "tool_choice": "required"}
    events, final = t.until(lambda: t.streamed(body), lambda r: _one_call(r[1], "function_call"))
    call = _one_call(final, "function_call")
    assert call["name"] == "get_weather" and call["call_id"] and call["status"] == "completed"
    assert json.loads(call["arguments"])["city"] in ("paris", "london")
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [e["arguments"] for e in done] == [call["arguments"]]


def forced_named(t: Target) -> None:
    t.prime(fake.tool_calls([{"name": "get_time", "arguments": {"zone": "UTC"}}], finish_reason="stop"))
    body = {"input": "What time is it?", "tools": [WEATHER, TIME], "tool_choice": {"type": "function", "name": "get_time"}}
    final = t.until(lambda: t.completed(body), lambda f: _one_call(f, "function_call"))
    call = _one_call(final, "function_call")
    assert call["name"] == "get_time"
    assert re.match(ZONE_PATTERN, json.loads(call["arguments"])["zone"])


def namespace_call(t: Target) -> None:
    t.prime(fake.tool_calls([{"name": "agentic_ns__mcp__files__read_file", "arguments": {"path": "a.txt"}}]))
    body = {"input": "Read a.txt", "tools": [FILES], "tool_choice": {"type": "function", "name": "read_file",
                                                                      "namespace": "mcp__files"}}
    final = t.until(lambda: t.completed(body), lambda f: _one_call(f, "function_call"))
    call = _one_call(final, "function_call")
    assert (call["namespace"], call["name"], json.loads(call["arguments"])) == ("mcp__files", "read_file", {"path": "a.txt"})
    for sent in t.upstream_bodies()[-1:]:
        assert "agentic_ns__mcp__files__read_file" in json.dumps(sent["tools"])


def custom_call(t: Target) -> None:
    t.prime(fake.tool_calls([{"name": "apply_patch", "arguments": {"input": "*** Begin Patch\n*** End Patch"}}]))
    body = {"input": "Patch the file.", "tools": [PATCH], "tool_choice": {"type": "custom", "name": "apply_patch"}}
    events, final = t.until(lambda: t.streamed(body), lambda r: _one_call(r[1], "custom_tool_call"))
    call = _one_call(final, "custom_tool_call")
    assert call["name"] == "apply_patch" and isinstance(call["input"], str)
    assert [e["input"] for e in events if e["type"] == "response.custom_tool_call_input.done"] == [call["input"]]
    assert t.fake is None or call["input"] == "*** Begin Patch\n*** End Patch"


def tool_search_call(t: Target) -> None:
    t.prime(fake.tool_calls([{"name": "tool_search", "arguments": {"query": "files"}}]))
    body = {"input": "Find a file tool.", "tools": [SEARCH, WEATHER],
            "tool_choice": {"type": "allowed_tools", "mode": "required", "tools": [{"type": "tool_search"}]}}
    final = t.until(lambda: t.completed(body), lambda f: _one_call(f, "tool_search_call"))
    call = _one_call(final, "tool_search_call")
    assert call["execution"] == "client" and isinstance(call["arguments"], dict)


def json_schema_output(t: Target) -> None:
    t.prime(fake.text('{"answer": "yes"}'))
    body = {"input": "Answer yes or no.",
            "text": {"format": {"type": "json_schema", "name": "answer", "schema": ANSWER_SCHEMA, "strict": True}}}
    final = t.completed(body)
    assert json.loads(collect_text(final))["answer"] in ("yes", "no")
    assert final["text"]["format"]["name"] == "answer"


def chain_with_tool_result(t: Target) -> None:
    t.prime(fake.tool_calls([{"name": "get_weather", "arguments": {"city": "london"}}]))
    first = t.until(lambda: t.completed({"input": "Weather in London?", "tools": [WEATHER], "tool_choice": "required"}),
                    lambda f: _one_call(f, "function_call"))
    call = _one_call(first, "function_call")
    t.prime(fake.text("It is sunny in London."))
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny, 21 C"}
    second = t.completed({"previous_response_id": first["id"], "input": [output], "tool_choice": "none"})
    assert second["previous_response_id"] == first["id"]
    assert [tool["name"] for tool in second["tools"]] == ["get_weather"]  # inherited
    for sent in t.upstream_bodies()[-1:]:
        history = json.dumps(sent)
        assert call["call_id"] in history and "sunny, 21 C" in history and "Weather in London?" in history
    items = requests.get(f"{t.url}/v1/responses/{second['id']}/input_items", timeout=10).json()["data"]
    assert items[0]["type"] == "function_call_output"        # newest first: its own input, then the chain's
    assert call in items and items[-1]["type"] == "message" and items[-1]["role"] == "user"


# -- failures -----------------------------------------------------------------------------------

def context_overflow(t: Target) -> None:
    t.prime(fake.context_overflow(), fake.context_overflow())
    body = {"input": "word " * 70000}
    resp = t.post(body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "context_length_exceeded"
    resp, events = t.stream(body)
    final = check_stream(events)
    assert events[-1]["type"] == "response.failed"
    assert final["error"]["code"] == "context_length_exceeded"


def unknown_model(t: Target) -> None:
    resp = t.post({"model": "no-such-model", "input": "hi"})
    assert resp.status_code == 404, resp.text
    assert resp.json()["error"]["code"] == "model_not_found"
    resp, events = t.stream({"model": "no-such-model", "input": "hi"})
    final = check_stream(events)
    assert final["status"] == "failed" and final["model"] == "no-such-model"


# -- WebSocket ----------------------------------------------------------------------------------

def _ws_turn(ws: simple_websocket.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    ws.send(json.dumps({"type": "response.create", **body}))
    events = []
    while not events or events[-1]["type"] not in (*TERMINAL, "error"):
        raw = ws.receive(timeout=120)
        assert raw is not None, "no frame from the gateway"
        events.append(json.loads(raw))
    return events


def websocket_turns(t: Target) -> None:
    t.prime(fake.text("First over the socket."), fake.text("Second, continuing."))
    ws = simple_websocket.Client.connect("ws" + t.url[len("http"):] + "/v1/responses")
    try:
        first = check_stream(_ws_turn(ws, {"model": t.model, "input": "Hello socket.", "store": False}))
        assert first["status"] == "completed"
        second = check_stream(_ws_turn(ws, {"model": t.model, "previous_response_id": first["id"], "store": False,
                                            "input": [{"role": "user", "content": "And again."}]}))
        assert second["status"] == "completed" and second["previous_response_id"] == first["id"]
    finally:
        ws.close()
    for sent in t.upstream_bodies()[-1:]:
        assert "Hello socket." in json.dumps(sent) and "First over the socket." in json.dumps(sent)


def jsonrpc_calls(t: Target) -> None:
    """Delegated calls (JSON-RPC on `/v1/jsonrpc`): a stored call, its continuation, a refused one."""
    t.prime(fake.text("Delegated."), fake.text("Delegated again."))
    host = WebSocketHost(t.url)
    try:
        events, result = host.run_call("first", {"model": t.model, "input": "Say hello."}, timeout=120)
        first = check_stream(events)
        assert result["status"] == 200 and first["status"] == "completed", result
        events, result = host.run_call("second", {"model": t.model, "previous_response_id": first["id"],
                                                  "input": "And again."}, timeout=120)
        second = check_stream(events)
        assert result["status"] == 200 and second["previous_response_id"] == first["id"], result
        events, result = host.run_call("refused", {"model": "no-such-model", "input": "hi"}, timeout=120)
        assert (result["status"], events) == (404, []) and result["error"], result
    finally:
        host.stop()
    assert not host.problems, host.problems
    assert requests.get(f"{t.url}/v1/responses/{second['id']}", timeout=10).json()["status"] == "completed"
    for sent in t.upstream_bodies()[-2:-1]:     # the continuation (the refused call came last)
        assert "Say hello." in json.dumps(sent) and "Delegated." in json.dumps(sent)


def input_tokens_count(t: Target) -> None:
    """`/v1/responses/input_tokens` counts what the model then reports as its input."""
    body = {"input": "Count the tokens of this question, please.", "max_output_tokens": 16}
    resp = requests.post(f"{t.url}/v1/responses/input_tokens", json={"model": t.model, **body}, timeout=60)
    assert resp.status_code == 200, resp.text
    counted = resp.json()["input_tokens"]
    t.prime(fake.text("Counted."))
    final = t.post(body).json()
    if t.fake is not None or t.kind == "chat":     # vLLM's own /v1/responses renders its prompt itself
        assert counted == final["usage"]["input_tokens"], (counted, final["usage"])
    assert counted > 0


def compaction_round_trip(t: Target) -> None:
    """A context compacted by the model (`/v1/responses/compact`), then carried on with its window."""
    t.prime(fake.text("A summary of the talk."), fake.text("Carried on."))
    resp = requests.post(f"{t.url}/v1/responses/compact", timeout=120, json={
        "model": t.model, "input": [{"role": "user", "content": "Remember the word apple."},
                                    {"role": "assistant", "content": "I will remember apple."}]})
    assert resp.status_code == 200, resp.text
    window = resp.json()["output"]
    assert [item["type"] for item in window] == ["message", "compaction"] and window[-1]["encrypted_content"]
    final = t.completed({"input": window + [{"role": "user", "content": "Which word?"}], "store": False})
    assert final["status"] == "completed"
    for sent in t.upstream_bodies()[-1:]:
        assert "Remember the word apple." in json.dumps(sent) and "I will remember apple." not in json.dumps(sent)


def background_run(t: Target) -> None:
    """A background response: queued at once, run to its end, its logged stream replayed whole."""
    t.prime(fake.text("Done in the background."))
    queued = t.post({"input": "Say something.", "background": True})
    assert queued.status_code == 200 and queued.json()["status"] == "queued", queued.text
    url = f"{t.url}/v1/responses/{queued.json()['id']}"
    deadline = time.monotonic() + 120
    while (final := requests.get(url, timeout=10).json())["status"] in ("queued", "in_progress"):
        assert time.monotonic() < deadline, "the background response never finished"
        time.sleep(0.1)
    assert final["status"] == "completed", final
    replay = requests.get(url, params={"stream": "true"}, stream=True, timeout=60)
    events = list(iter_sse(replay))
    assert events[0]["type"] == "response.queued" and check_stream(events) == final


# -- the rest of the surface ---------------------------------------------------------------------

def models_catalog_and_ready(t: Target) -> None:
    models = requests.get(f"{t.url}/v1/models", timeout=10).json()
    assert t.model in [model["id"] for model in models["data"]]
    catalog = requests.get(f"{t.url}/v1/models", params={"client_version": "0.169.0"}, timeout=10).json()["models"]
    entry = next(entry for entry in catalog if entry["slug"] == t.model)
    assert entry["context_window"] == t.context_window
    ready = requests.get(f"{t.url}/ready", timeout=10)
    assert ready.status_code == 200 and ready.json()["upstream"] == "healthy", ready.text


SCENARIOS = (models_catalog_and_ready, plain_text, streamed_text, stateless_text, max_output_tokens, forced_required, forced_named,
             namespace_call, custom_call, tool_search_call, json_schema_output, chain_with_tool_result,
             context_overflow, unknown_model, websocket_turns, jsonrpc_calls, input_tokens_count,
             compaction_round_trip, background_run)
