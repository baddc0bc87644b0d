"""Logs as users run them (gunicorn): one JSON access line per request with ids, tenant, timings and
token counts; one line per upstream error with its kind; and never a key, an Authorization header
or prompt/output text, even at DEBUG (only LOG_BODIES=1 lets upstream error text through)."""
from __future__ import annotations

import json
import time

import pytest
import requests

from tests.fakes import upstream as fake
from tests.integration.test_websocket import MODEL, Socket
from tests.support import GunicornGateway, post_stream

pytestmark = pytest.mark.integration
KEY = "sk-canary-key-3141"
PROMPT, OUTPUT, REASONING = "PROMPT-CANARY-2718", "OUTPUT-CANARY-1618", "REASONING-CANARY-1414"


def lines(server: GunicornGateway) -> list[dict]:
    return [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]


def wait_for_line(server: GunicornGateway, **match) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in lines(server):
            if all(line.get(k) == v for k, v in match.items()):
                return line
        time.sleep(0.05)
    raise AssertionError(f"no log line with {match}:\n{server.log_text()[-3000:]}")


@pytest.fixture
def server(fake_upstream, tmp_path, request):
    env = {"GATEWAY_API_KEYS_FILE": str(tmp_path / "keys"), "UPSTREAM_TIMEOUT_S": "2,2",
           "LOG_LEVEL": "DEBUG", **getattr(request, "param", {})}
    (tmp_path / "keys").write_text(f"acme: {KEY}\n")
    gateway = GunicornGateway.for_upstream(fake_upstream.base_url, tmp_path, **env).start()
    yield gateway
    gateway.stop()


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


def test_a_stream_gets_one_access_line_with_its_ids_timings_and_tokens(server, upstream):
    upstream.enqueue(fake.text(OUTPUT))
    resp, events = post_stream(server.url, {"model": MODEL, "input": PROMPT},
                               headers={**auth(), "x-request-id": "client-req-42"})
    assert resp.headers["x-request-id"] == "client-req-42"
    final = events[-1]["response"]
    line = wait_for_line(server, logger="gateway.access", request_id="client-req-42")
    assert {k: line[k] for k in ("tenant", "route", "method", "status", "response_id", "model", "upstream_status",
                                 "input_tokens", "output_tokens")} == {
        "tenant": "acme", "route": "/v1/responses", "method": "POST", "status": 200, "response_id": final["id"],
        "model": MODEL, "upstream_status": 200, "input_tokens": final["usage"]["input_tokens"],
        "output_tokens": final["usage"]["output_tokens"]}
    assert 0 < line["ttft_ms"] <= line["duration_ms"]
    assert len([x for x in lines(server) if x.get("request_id") == "client-req-42"]) == 1


def test_a_request_without_an_id_gets_one_minted_and_logged(server):
    resp = requests.get(f"{server.url}/v1/models", headers=auth(), timeout=10)
    minted = resp.headers["x-request-id"]
    assert minted.startswith("req_")
    assert wait_for_line(server, logger="gateway.access", request_id=minted)["route"] == "/v1/models"


def test_upstream_errors_get_one_line_with_their_kind(server, upstream):
    upstream.enqueue(fake.http_error(429, "slow down", headers={"Retry-After": "1"}))
    assert requests.post(f"{server.url}/v1/responses", json={"model": MODEL, "input": "q"}, headers=auth(),
                         timeout=10).status_code == 429
    line = wait_for_line(server, logger="gateway.upstream", kind="rate_limited")
    assert line["upstream_status"] == 429 and line["level"] == "warning"


def test_no_key_header_or_text_reaches_the_log_even_at_debug(server, upstream):
    upstream.enqueue(fake.text(OUTPUT, reasoning=REASONING))
    post_stream(server.url, {"model": MODEL, "input": PROMPT}, headers=auth())
    upstream.enqueue(fake.http_error(400, f"bad input: {PROMPT}"))
    requests.post(f"{server.url}/v1/responses", json={"model": MODEL, "input": PROMPT}, headers=auth(), timeout=10)
    upstream.enqueue(fake.text(OUTPUT))
    with Socket(server.url, headers=auth()) as ws:
        ws.completed(model=MODEL, input=PROMPT)
    requests.get(f"{server.url}/v1/models", headers={"Authorization": "Bearer wrong-key-2236"}, timeout=10)
    wait_for_line(server, logger="gateway.access", status=401)
    text = server.log_text()
    for secret in (KEY, "wrong-key-2236", PROMPT, OUTPUT, REASONING, "Authorization", "Bearer"):
        assert secret not in text, secret


@pytest.mark.parametrize("server", [{"LOG_BODIES": "1", "LOG_LEVEL": "INFO"}], indirect=True)
def test_log_bodies_lets_upstream_error_text_through(server, upstream):
    upstream.enqueue(fake.http_error(400, f"bad input: {PROMPT}"))
    requests.post(f"{server.url}/v1/responses", json={"model": MODEL, "input": PROMPT}, headers=auth(), timeout=10)
    assert PROMPT in wait_for_line(server, logger="gateway.upstream", kind="bad_request")["detail"]


@pytest.mark.parametrize("server", [{"LOG_FORMAT": "text", "LOG_LEVEL": "INFO"}], indirect=True)
def test_text_format_is_for_people(server):
    resp = requests.get(f"{server.url}/health", timeout=10)
    deadline = time.monotonic() + 10
    wanted = f"request_id={resp.headers['x-request-id']}"
    while wanted not in server.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(x for x in server.log_text().splitlines() if wanted in x)
    assert "INFO gateway.access: access" in line and "route=/health" in line and not line.startswith("{")
