"""Fixtures of the real-vLLM tier: one vLLM server for the session (or `VLLM_BASE_URL`, one
already running, while developing) and a gunicorn gateway in front of it for each upstream kind."""
from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from gateway.config import UPSTREAM_APIS
from tests.e2e.codex import codex_bin  # noqa: F401  (the pinned Codex CLI, installed on demand)
from tests.support import GunicornGateway
from tests.vllm.server import MAX_MODEL_LEN, SERVED_NAME, VLLMServer


@dataclass
class RunningServer:
    base_url: str
    model: str = SERVED_NAME
    max_model_len: int = MAX_MODEL_LEN


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory):
    if os.environ.get("VLLM_BASE_URL"):
        yield RunningServer(os.environ["VLLM_BASE_URL"])
        return
    server = VLLMServer(tmp_path_factory.mktemp("vllm") / "vllm.log")
    server.start()
    try:
        yield RunningServer(server.base_url, server.model, server.max_model_len)
    finally:
        server.stop()


@pytest.fixture(scope="session", params=UPSTREAM_APIS)
def real_gateway(request, vllm_server, tmp_path_factory):
    """(upstream kind, gateway) in front of the real vLLM."""
    tmp = tmp_path_factory.mktemp(f"real-gateway-{request.param}")
    server = GunicornGateway.for_upstream(vllm_server.base_url, tmp, UPSTREAM_API=request.param,
                                          UPSTREAM_TIMEOUT_S="5,120", SKIP_LLM_READY_CHECK="0",
                                          GATEWAY_ACCESS_LOG="1", LOG_LEVEL="INFO")
    server.start()
    yield request.param, server
    server.stop()
