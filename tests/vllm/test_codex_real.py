"""The real Codex CLI completing a plain turn through the gateway in front of a real vLLM, over
HTTP/SSE and over WebSocket, with each upstream kind (Codex's own ~20k-token prompt included)."""
from __future__ import annotations

import pytest

from tests.e2e.codex import TRANSPORTS, WS_FALLBACK, Codex, responses_posts

pytestmark = [pytest.mark.vllm, pytest.mark.e2e, pytest.mark.timeout(400)]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_codex_completes_a_plain_turn(real_gateway, vllm_server, codex_bin, tmp_path, transport):
    kind, gateway = real_gateway
    codex = Codex(codex_bin, gateway, tmp_path, transport, model=vllm_server.model, mcp=False, timeout_s=300)
    run = codex.exec("Say hello.")
    report = f"codex over {transport}, upstream {kind}:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}\n" \
             f"gateway log:\n{run.gateway_log[-4000:]}"
    assert not run.timed_out, report
    assert not run.of_type("turn.failed") and not run.items("error") and not run.of_type("error"), report
    assert run.of_type("turn.completed") and run.returncode == 0, report
    assert "Traceback" not in run.gateway_log, report
    assert not [line for line in (run.stdout + run.stderr).splitlines() if WS_FALLBACK in line], report
    posts = responses_posts(run.gateway_log)
    assert posts == 0 if transport == "websocket" else posts >= 1, report
