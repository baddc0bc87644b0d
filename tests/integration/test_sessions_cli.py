"""`responses-gateway sessions list|show`: a chain made through the gateway (a namespaced tool call
with reasoning, its output, a failed turn) and a conversation, as an operator reads them in a
terminal; another tenant sees none of it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from tests.fakes import upstream as fake
from tests.integration.test_codex_replay import FLAT_ECHO
from tests.scenarios import FILES
from tests.support import ROOT

pytestmark = pytest.mark.integration
MODEL = "fake-model"
ECHO = {"type": "namespace", "name": "mcp__echo", "description": "Echo tools.",
        "tools": [{"type": "function", "name": "echo", "parameters": {"type": "object", "properties": {}}}]}


@pytest.fixture
def stored(make_gateway, upstream, tmp_path):
    """Three turns of one chain (the last failed) and a conversation, in the gateway's database."""
    url = make_gateway(llm_api_base=upstream.base_url)
    upstream.enqueue(fake.tool_calls([{"name": FLAT_ECHO, "arguments": {"text": "hi"}}], reasoning="Echo it."),
                     fake.text("It said hi."), fake.http_error(500, "engine down"))
    first = requests.post(f"{url}/v1/responses", timeout=10, json={
        "model": MODEL, "input": "Echo hi please.", "tools": [ECHO, FILES]}).json()
    call = next(item for item in first["output"] if item["type"] == "function_call")
    second = requests.post(f"{url}/v1/responses", timeout=10, json={
        "model": MODEL, "previous_response_id": first["id"],
        "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "echo: hi"}]}).json()
    third = requests.post(f"{url}/v1/responses", timeout=10, json={
        "model": MODEL, "previous_response_id": second["id"], "input": "Again?"})
    assert third.status_code == 502
    conversation = requests.post(f"{url}/v1/conversations", timeout=10,
                                 json={"items": [{"role": "user", "content": "A note to self."}]}).json()
    leaf = requests.get(f"{url}/v1/responses/{second['id']}", timeout=10).json()
    return {"database": f"sqlite:///{tmp_path / 'gw.db'}", "conversation": conversation["id"], "second": leaf}


def cli(database: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "sessions", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "DATABASE_URL": database})


def test_sessions_list_shows_the_chain_and_the_conversation_newest_first(stored):
    run = cli(stored["database"], "list")
    assert run.returncode == 0, run.stderr
    header, *rows = run.stdout.splitlines()
    assert header.split()[:3] == ["KIND", "ID", "CREATED"]
    kinds = [row.split()[0] for row in rows]
    assert kinds.count("chain") == 1 and kinds.count("conversation") == 1
    chain = next(row for row in rows if row.startswith("chain"))
    assert " failed " in chain and MODEL in chain and chain.split()[-2] == "3"      # three turns
    assert stored["conversation"] in run.stdout and "(1 items)" in run.stdout
    assert "chain" not in cli(stored["database"], "list", "--status", "completed").stdout.split("\n", 1)[1]


def test_sessions_show_reads_a_chain_turn_by_turn(stored):
    leaf = cli(stored["database"], "list").stdout.splitlines()[1:]
    chain_id = next(row.split()[1] for row in leaf if row.startswith("chain"))
    run = cli(stored["database"], "show", chain_id)
    assert run.returncode == 0, run.stderr
    text = run.stdout
    assert [line.split()[1] for line in text.splitlines() if line.startswith("Turn")] == ["1", "2", "3"]
    assert "  user: Echo hi please." in text and "  reasoning: (folded, 8 characters)" in text
    [call] = [line for line in text.splitlines() if line.startswith("  call ")]
    assert call.startswith("  call mcp__echo.echo (call_") and call.endswith('{"text": "hi"}')
    assert "output (" in text and "echo: hi" in text and "  assistant: It said hi." in text
    assert "  error server_error:" in text


def test_sessions_show_a_conversation(stored):
    run = cli(stored["database"], "show", stored["conversation"])
    assert run.returncode == 0 and "  user: A note to self." in run.stdout


def test_another_tenant_sees_none_of_it(stored):
    assert cli(stored["database"], "list", "--tenant", "other").stdout.splitlines()[1:] == []
    shown = cli(stored["database"], "show", stored["second"]["id"], "--tenant", "other")
    assert shown.returncode == 1 and "no response" in shown.stdout
