"""`responses-gateway doctor` against the real vLLM: its tool calls (forced, and in Codex's namespace,
custom and tool_search shapes) come back through vLLM's tool parser, so the deployment passes."""
from __future__ import annotations

import pytest

from tests.integration.test_doctor import doctor

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(600)]


def test_doctor_passes_against_the_real_vllm(vllm_server, tmp_path):
    run = doctor(tmp_path, LLM_API_BASE=vllm_server.base_url, UPSTREAM_TIMEOUT_S="5,300")
    assert run.returncode == 0, run.stdout + run.stderr
    for check in ("forced tool call", "namespace tool call", "custom tool call", "tool_search call"):
        assert f"[  ok] {check}" in run.stdout, check
