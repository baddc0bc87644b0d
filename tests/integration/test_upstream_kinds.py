"""The shared integration suite (tests/scenarios.py) against the loopback fake, through a gunicorn
gateway of each upstream kind: the fake serves both /v1/chat/completions and, quirks included,
vLLM's own /v1/responses from the same scripts."""
from __future__ import annotations

from dataclasses import replace

import pytest
import requests

from gateway.config import UPSTREAM_APIS
from tests.checks import check_stream
from tests.fakes import upstream as fake
from tests.scenarios import SCENARIOS, Target
from tests.support import GunicornGateway, post_stream

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session", params=UPSTREAM_APIS)
def kind_gateway(request, fake_upstream, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"gateway-{request.param}")
    server = GunicornGateway.for_upstream(fake_upstream.base_url, tmp, UPSTREAM_API=request.param,
                                          UPSTREAM_TIMEOUT_S="2,2", SKIP_LLM_READY_CHECK="0")
    server.start()
    yield request.param, server
    server.stop()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_scenario(scenario, kind_gateway, upstream):
    kind, server = kind_gateway
    scenario(Target(url=server.url, kind=kind, model="fake-model", fake=upstream))
    assert upstream.pending == 0, "every scripted answer was used"
    expected = {"chat": "/v1/chat/completions", "responses": "/v1/responses"}[kind]
    assert {r["path"] for r in upstream.requests if r["method"] == "POST"} <= {expected, "/tokenize"}


# -- upstream failures after the stream started, on every path (fake only: they are scripted) -------

FAILURES = {
    "error event": (fake.stream_error("engine died", after=6), "engine died"),
    "dropped": (fake.drop_after(6), "closed the stream unexpectedly"),
    "stalled": (fake.stall_after(6, 30), "stalled"),
}


@pytest.mark.parametrize("store", [True, False], ids=["stored", "stateless"])
@pytest.mark.parametrize("failure", FAILURES)
def test_a_stream_that_breaks_ends_with_one_response_failed(failure, store, kind_gateway, upstream):
    kind, server = kind_gateway
    script, message = FAILURES[failure]
    upstream.enqueue(script)
    resp, events = post_stream(server.url, {"model": "fake-model", "input": "hi", "store": store})
    final = check_stream(events)
    assert events[-1]["type"] == "response.failed"
    assert final["error"]["code"] == "server_error" and message in final["error"]["message"]
    if store:
        stored = requests.get(f"{server.url}/v1/responses/{final['id']}", timeout=10).json()
        assert stored["status"] == "failed"


@pytest.mark.parametrize("sequence", ["missing", "restart"])
def test_upstream_sequence_numbers_never_reach_the_client(sequence, kind_gateway, upstream):
    kind, server = kind_gateway
    upstream.enqueue(replace(fake.text("Numbered."), sequence=sequence))
    _, events = post_stream(server.url, {"model": "fake-model", "input": "hi", "store": False})
    assert check_stream(events)["status"] == "completed"  # numbered 0, 1, 2, … with no gaps
