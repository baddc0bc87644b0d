"""Fixtures for the end-to-end tests that drive the real Codex CLI: the pinned CLI, and per test
module a loopback fake vLLM with a gunicorn gateway in front of it."""
import pytest

from tests.e2e.codex import codex_bin  # noqa: F401  (the pinned Codex CLI, installed on demand)
from tests.fakes.upstream import FakeUpstream
from tests.support import GunicornGateway

MODEL = "fake-model"


@pytest.fixture(scope="module")
def e2e_upstream():
    with FakeUpstream(models=(MODEL,)) as fake:
        yield fake


@pytest.fixture(scope="module")
def e2e_gateway(e2e_upstream, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e-gateway")
    server = GunicornGateway.for_upstream(e2e_upstream.base_url, tmp, UPSTREAM_TIMEOUT_S="2,30",
                                          GATEWAY_THREADS="16", GATEWAY_ACCESS_LOG="1", LOG_LEVEL="INFO")
    server.start()
    yield server
    server.stop()
