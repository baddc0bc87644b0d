"""Codex's compaction through the gateway, end to end with the real Codex CLI and a small
`model_auto_compact_token_limit`, so that one `codex exec` session of several tool calls compacts
and goes on:

- remote: the built-in OpenAI provider pointed at the gateway (`openai_base_url`) compacts with a
  `compaction_trigger` turn over its WebSocket; the gateway's model writes the summary, and later
  requests carry the sealed compaction item, which the gateway opens for the model;
- local: a custom provider never asks the gateway to compact; Codex sends its own checkpoint prompt
  as an ordinary turn, as before.

Compaction requests offer no tools, so the fake answers them with its auto responder (a text), and
the scripted tool calls go to the agent's own requests whatever the point at which Codex compacts.
"""
from __future__ import annotations

import json

import pytest

from gateway.compaction import SUMMARY_INTRO, SUMMARY_REQUEST
from tests.e2e.codex import Codex
from tests.e2e.test_codex_cli import diagnostics
from tests.fakes.upstream import FakeUpstream, text, tool_calls

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
MODEL = "fake-model"
STEPS = 4
FINAL = "All steps done."
LIMIT = "model_auto_compact_token_limit = 300"
CODEX_LOCAL_PROMPT = "CONTEXT CHECKPOINT COMPACTION"


@pytest.fixture
def fake(e2e_upstream):
    e2e_upstream.reset()
    e2e_upstream.auto_when = lambda chat: not chat.get("tools")    # compaction requests
    for step in range(STEPS):
        e2e_upstream.enqueue(tool_calls([{"name": "exec_command",
                                          "arguments": {"cmd": f"echo step{step} " + "x" * 200}}]))
    e2e_upstream.enqueue(text(FINAL), *[text("UNEXPECTED spare reply") for _ in range(3)])
    yield e2e_upstream
    e2e_upstream.reset()


def last_user_texts(fake: FakeUpstream) -> list[str]:
    return [json.dumps(chat["messages"][-1]["content"]) for chat in fake.chat_requests()]


def assert_session_went_on(run) -> None:
    assert run.returncode == 0 and not run.timed_out, run.stderr[-2000:]
    commands = run.items("command_execution")
    assert [c["status"] for c in commands] == ["completed"] * STEPS, commands
    assert [m["text"] for m in run.items("agent_message")][-1:] == [FINAL]


def test_remote_compaction_with_the_builtin_provider(codex_bin, e2e_gateway, fake, tmp_path):
    codex = Codex(codex_bin, e2e_gateway, tmp_path, "websocket", model=MODEL, mcp=False,
                  builtin_provider=True, extra_config=LIMIT)
    run = codex.exec("Run the steps one by one.")
    with diagnostics(run, fake, e2e_gateway):
        assert_session_went_on(run)
        asked = last_user_texts(fake)
        assert any(SUMMARY_REQUEST[:40] in text_ for text_ in asked), "the gateway wrote no summary"
        carried = [chat for chat in fake.chat_requests() if SUMMARY_INTRO[:40] in json.dumps(chat["messages"])]
        assert carried, "no later request carried the opened compaction item"
        assert not any(CODEX_LOCAL_PROMPT in text_ for text_ in asked), "Codex compacted locally instead"


def test_local_compaction_with_a_custom_provider(codex_bin, e2e_gateway, fake, tmp_path):
    codex = Codex(codex_bin, e2e_gateway, tmp_path, "http", model=MODEL, mcp=False, extra_config=LIMIT)
    run = codex.exec("Run the steps one by one.")
    with diagnostics(run, fake, e2e_gateway):
        assert_session_went_on(run)
        asked = last_user_texts(fake)
        assert any(CODEX_LOCAL_PROMPT in text_ for text_ in asked), "Codex did not compact"
        assert not any(SUMMARY_REQUEST[:40] in text_ for text_ in asked)
