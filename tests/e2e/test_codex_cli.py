"""The real Codex CLI (`codex exec --json`) running agent loops through the gateway, over HTTP/SSE
and over WebSocket (`supports_websockets = true`).

Codex talks to a dedicated gunicorn gateway wired to the loopback fake vLLM. Each scenario scripts
exactly the two chat completions of one tool round trip (Codex replays the full history each
time): a tool call, then a text answer once the tool result is in the history. A few harmless
"spare" text replies sit behind them in the queue so that an unexpected extra request (a retry,
a title request…) ends the turn quietly instead of hitting the fake's auto responder, which would
call a tool; the tests then fail on the request count with the full transcript.

The three tool scenarios run once per transport (`transport` fixture). Over WebSocket Codex opens
one connection, prewarms it (`generate:false`, answered by the gateway without inference) and
chains each request to the previous response with only the new input items, so the upstream must
still receive exactly the same two full-history chat requests. A WebSocket run must also really
have used WebSocket: Codex printed no "Falling back from WebSockets to HTTPS transport", and the
gateway's access log shows no `POST /v1/responses` during the run (gunicorn does not log upgraded
connections, so the upstream's two chat requests can only have come through the socket); an HTTP
run shows exactly one POST per upstream request, which also proves the log check can see POSTs.

Setup follows `shared/reference/codex-cli.md` §10: a fresh `CODEX_HOME` with a `config.toml`, a
fresh working directory, `--skip-git-repo-check --dangerously-bypass-approvals-and-sandbox`,
stdin from /dev/null and a hard timeout. Failures print the Codex JSONL and stderr, the chat
requests the upstream received, the MCP server's message log and the gateway log.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.e2e.codex import CODEX_TIMEOUT_S, TRANSPORTS, WS_FALLBACK, Codex, CodexRun, responses_posts
from tests.fakes.upstream import FakeUpstream, text, tool_calls
from tests.support import GunicornGateway

# Codex's own timeout (CODEX_TIMEOUT_S) fires first; the margin covers a first-time npm install.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MODEL = "fake-model"
FINAL_TEXT = "All done."
SPARE_TEXT = "UNEXPECTED extra chat request (spare scripted reply)."
SPARES = 3
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello from codex\n*** End Patch\n"


@pytest.fixture
def fake(e2e_upstream):
    """The module's fake upstream with an empty script queue and request log for this test."""
    e2e_upstream.reset()
    yield e2e_upstream
    e2e_upstream.reset()


@pytest.fixture(params=TRANSPORTS)
def transport(request) -> str:
    return request.param


@pytest.fixture
def codex(codex_bin, e2e_gateway, tmp_path, transport) -> Codex:
    return Codex(codex_bin, e2e_gateway, tmp_path, transport, model=MODEL)


# -- diagnostics -----------------------------------------------------------------------------

def _tail(text_: str, limit: int = 12000) -> str:
    return text_ if len(text_) <= limit else f"…[{len(text_) - limit} chars cut]…\n" + text_[-limit:]


def _chat_summary(chats: list[dict[str, Any]]) -> str:
    lines = []
    for index, body in enumerate(chats):
        tools = [t.get("function", {}).get("name") for t in body.get("tools") or []]
        lines.append(f"--- chat request #{index}: {len(body.get('messages') or [])} messages, tools={tools}")
        lines.append(json.dumps({k: v for k, v in body.items() if k not in ("messages", "tools")}))
        for message in (body.get("messages") or [])[3:]:  # skip the long system/developer prompt
            lines.append("  " + _tail(json.dumps(message), 1500))
    return "\n".join(lines)


def report(run: CodexRun | None, upstream: FakeUpstream, gateway: GunicornGateway) -> str:
    parts = []
    if run is not None:
        parts += [f"=== codex over {run.transport}: exit={run.returncode} timed_out={run.timed_out} "
                  f"elapsed={run.elapsed_s:.1f}s",
                  "=== codex JSONL (stdout)", _tail(run.stdout), "=== codex stderr", _tail(run.stderr)]
        if run.mcp_log.exists():
            parts += ["=== MCP echo server log", _tail(run.mcp_log.read_text(errors="replace"), 6000)]
    parts += ["=== upstream requests: " + ", ".join(f"{r['method']} {r['path']}" for r in upstream.requests),
              f"=== scripts still queued: {upstream.pending}",
              _chat_summary(upstream.chat_requests()),
              "=== gateway log", _tail(gateway.log_text())]
    return "\n".join(parts)


@contextmanager
def diagnostics(run: CodexRun | None, upstream: FakeUpstream, gateway: GunicornGateway) -> Iterator[None]:
    try:
        yield
    except AssertionError:
        print("\n" + report(run, upstream, gateway), flush=True)
        raise


# -- shared checks ---------------------------------------------------------------------------

def enqueue_round_trip(upstream: FakeUpstream, call: dict[str, Any]) -> None:
    """The tool call, the final answer, then spares for any request Codex was not expected to make."""
    upstream.enqueue(tool_calls([call]), text(FINAL_TEXT), *[text(SPARE_TEXT) for _ in range(SPARES)])


def assert_turn_completed(run: CodexRun, upstream: FakeUpstream, expected_chats: int = 2) -> list[dict[str, Any]]:
    assert not run.timed_out, f"codex exec did not finish within {CODEX_TIMEOUT_S}s"
    assert not run.bad_lines, f"non-JSON lines on codex stdout: {run.bad_lines[:5]}"
    errors = run.items("error") + run.of_type("error")  # error items, and bare stream error events
    catalog = [e for e in errors if "Model metadata for" in e.get("message", "")]
    assert not catalog, f"Codex did not find {MODEL!r} in the gateway's catalog: {catalog}"
    assert not errors, f"Codex reported error items: {errors}"
    assert not run.of_type("turn.failed"), f"turn failed: {run.of_type('turn.failed')}"
    assert run.of_type("turn.completed"), "no turn.completed event"
    assert run.returncode == 0, f"codex exec exited with {run.returncode}"
    chats = upstream.chat_requests()
    assert len(chats) == expected_chats, (
        f"expected exactly {expected_chats} upstream chat requests, got {len(chats)} "
        f"({upstream.pending} scripted replies left in the queue)")
    messages = run.items("agent_message")
    assert messages and messages[-1].get("text") == FINAL_TEXT, f"final agent message: {messages}"
    assert_transport(run, len(chats))
    return chats


def assert_transport(run: CodexRun, chat_count: int) -> None:
    """The run used the transport it was configured for, and only that one."""
    fallbacks = [line for line in (run.stdout + run.stderr).splitlines() if WS_FALLBACK in line]
    assert not fallbacks, f"Codex fell back from WebSocket to HTTP: {fallbacks[:3]}"
    assert "Traceback" not in run.gateway_log, "the gateway logged a traceback during the run"
    posts = responses_posts(run.gateway_log)
    if run.transport == "websocket":
        assert posts == 0, f"{posts} HTTP POSTs to /v1/responses during a WebSocket run"
    else:
        assert posts == chat_count, f"{posts} POSTs to /v1/responses for {chat_count} upstream requests"


def upstream_tool_names(chat: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in chat.get("tools") or [] if t.get("type") == "function"]


def tool_round_trip(chat: dict[str, Any], upstream_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The replayed assistant tool call and the tool result in a continuation request."""
    messages = chat.get("messages") or []
    calls = [(i, c) for i, m in enumerate(messages) if m.get("role") == "assistant"
             for c in m.get("tool_calls") or []]
    assert len(calls) == 1, f"expected one replayed tool call, got {[c for _, c in calls]}"
    index, call = calls[0]
    assert call["function"]["name"] == upstream_name, f"replayed call: {call}"
    results = [m for m in messages[index + 1:] if m.get("role") == "tool"]
    assert len(results) == 1 and results[0].get("tool_call_id") == call.get("id"), (
        f"tool result after the call {call}: {results}")
    return call, results[0]


def content_text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


# -- the catalog / offered tools (used to discover the MCP tool's upstream name) -------------

@pytest.fixture(scope="module")
def offered_tools(codex_bin, e2e_gateway, e2e_upstream, tmp_path_factory) -> list[dict[str, Any]]:
    """A plain text turn; returns the upstream `tools` of its chat request."""
    e2e_upstream.reset()
    codex = Codex(codex_bin, e2e_gateway, tmp_path_factory.mktemp("codex-discovery"), model=MODEL)
    e2e_upstream.enqueue(text(FINAL_TEXT), *[text(SPARE_TEXT) for _ in range(SPARES)])
    run = codex.exec("Say something.")
    try:
        with diagnostics(run, e2e_upstream, e2e_gateway):
            chats = assert_turn_completed(run, e2e_upstream, expected_chats=1)
            return chats[0].get("tools") or []
    finally:
        e2e_upstream.reset()


def test_plain_turn_uses_catalog_and_offers_codex_tools(offered_tools):
    names = [t["function"]["name"] for t in offered_tools]
    for expected in ("exec_command", "apply_patch"):
        assert expected in names, f"{expected} not offered upstream: {names}"


# -- scenarios -------------------------------------------------------------------------------

def test_exec_command_round_trip(codex, fake, e2e_gateway):
    enqueue_round_trip(fake, {"name": "exec_command", "arguments": {"cmd": "echo hello"}})
    run = codex.exec("Run 'echo hello' in the shell and tell me what it printed.")
    with diagnostics(run, fake, e2e_gateway):
        chats = assert_turn_completed(run, fake)
        assert "exec_command" in upstream_tool_names(chats[0])
        commands = run.items("command_execution")
        assert len(commands) == 1, f"command_execution items: {commands}"
        assert commands[0].get("exit_code") == 0 and commands[0].get("status") == "completed", commands[0]
        assert "echo hello" in commands[0].get("command", "")
        assert "hello" in commands[0].get("aggregated_output", "")
        call, result = tool_round_trip(chats[1], "exec_command")
        assert json.loads(call["function"]["arguments"]) == {"cmd": "echo hello"}
        output = content_text(result.get("content"))
        assert "hello" in output.split("Output:", 1)[-1], f"tool result: {output!r}"
        assert "exited with code 0" in output, f"tool result: {output!r}"


def test_mcp_namespace_tool_round_trip(codex, fake, e2e_gateway, offered_tools):
    # The MCP server's `echo` tool, found by its description (the namespace is not hard-coded).
    candidates = [t["function"]["name"] for t in offered_tools
                  if t["function"].get("description") == "Echo back the given text."
                  and t["function"]["name"] != "echo"]
    assert len(candidates) == 1, f"MCP echo tool not offered exactly once fake: {offered_tools}"
    flat = candidates[0]
    assert flat.startswith("agentic_ns__") and flat.endswith("__echo"), flat
    enqueue_round_trip(fake, {"name": flat, "arguments": {"text": "ping"}})
    run = codex.exec("Call the echo MCP tool with the text 'ping'.")
    with diagnostics(run, fake, e2e_gateway):
        chats = assert_turn_completed(run, fake)
        assert flat in upstream_tool_names(chats[0]), "tools changed between runs"
        calls = run.items("mcp_tool_call")
        assert len(calls) == 1, f"mcp_tool_call items: {calls}"
        item = calls[0]
        assert (item.get("server"), item.get("tool"), item.get("arguments")) == ("echo", "echo", {"text": "ping"}), item
        assert item.get("status") == "completed" and not item.get("error"), item
        assert "echo: ping" in json.dumps(item.get("result")), item
        _, result = tool_round_trip(chats[1], flat)
        assert "echo: ping" in content_text(result.get("content")), result


def test_apply_patch_round_trip(codex, fake, e2e_gateway):
    enqueue_round_trip(fake, {"name": "apply_patch", "arguments": {"input": PATCH}})
    run = codex.exec("Create hello.txt containing 'hello from codex'.")
    with diagnostics(run, fake, e2e_gateway):
        chats = assert_turn_completed(run, fake)
        assert "apply_patch" in upstream_tool_names(chats[0])
        changes = run.items("file_change")
        assert len(changes) == 1 and changes[0].get("status") == "completed", f"file_change items: {changes}"
        assert [(Path(c["path"]).name, c["kind"]) for c in changes[0]["changes"]] == [("hello.txt", "add")]
        created = run.workdir / "hello.txt"
        assert created.is_file(), f"{created} missing; workdir holds {list(run.workdir.iterdir())}"
        assert created.read_text() == "hello from codex\n"
        call, result = tool_round_trip(chats[1], "apply_patch")
        assert json.loads(call["function"]["arguments"]) == {"input": PATCH}
        assert "Success" in content_text(result.get("content")), result
