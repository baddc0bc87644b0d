"""`responses-gateway doctor` against the fake upstream: what it reports for a healthy deployment,
an unreachable upstream, a server started without its tool parser and an open gateway on a public
address, and the Codex config it prints (the same command runs against a real vLLM in
tests/vllm/test_doctor_real.py)."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib

import pytest

from tests.fakes import upstream as fake
from tests.support import ROOT, free_port

pytestmark = pytest.mark.integration
PARSER_ERROR = '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'


def doctor(tmp_path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "doctor"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'doctor.db'}", **env})


def codex_config(output: str) -> dict:
    return tomllib.loads(output.split("config.toml for this gateway (~/.codex/config.toml):", 1)[1])


def test_a_healthy_deployment_passes_and_gets_a_codex_config(tmp_path, upstream):
    run = doctor(tmp_path, LLM_API_BASE=upstream.base_url, GATEWAY_PORT="9123")
    assert run.returncode == 0, run.stdout + run.stderr
    for check in ("health", "models", "context length", "forced tool call", "namespace tool call", "custom tool call",
                  "tool_search call"):
        assert any(line.startswith(f"  [  ok] {check}:") for line in run.stdout.splitlines()), (check, run.stdout)
    assert "[  ok] namespace tool call: mcp__echo.echo" in run.stdout
    assert "[warn] database: schema version 0 of" in run.stdout     # a new file: created when the gateway starts
    config = codex_config(run.stdout)
    provider = config["model_providers"][config["model_provider"]]
    assert config["model"] == "fake-model" and provider["base_url"] == "http://127.0.0.1:9123/v1"
    assert provider["wire_api"] == "responses" and provider["model_catalog_url"].endswith("/v1/models")


def test_an_unreachable_upstream_is_a_problem_with_its_fix(tmp_path):
    run = doctor(tmp_path, LLM_API_BASE=f"http://127.0.0.1:{free_port()}/v1", UPSTREAM_TIMEOUT_S="1,1")
    assert run.returncode == 1
    assert "[FAIL] models" in run.stdout and "fix: check LLM_API_BASE" in run.stdout


def test_a_server_without_its_tool_parser_is_told_how_to_start(tmp_path, upstream):
    upstream.enqueue(*[fake.http_error(400, PARSER_ERROR) for _ in range(4)])
    run = doctor(tmp_path, LLM_API_BASE=upstream.base_url)
    assert run.returncode == 1
    assert "[FAIL] forced tool call" in run.stdout and "--enable-auto-tool-choice --tool-call-parser" in run.stdout


def test_an_open_gateway_on_a_public_address_is_a_problem(tmp_path, upstream):
    run = doctor(tmp_path, LLM_API_BASE=upstream.base_url, GATEWAY_HOST="0.0.0.0")
    assert run.returncode == 1 and "[FAIL] keys" in run.stdout
    assert 'base_url = "http://127.0.0.1:9000/v1"' in run.stdout
