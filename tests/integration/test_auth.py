"""Inbound API keys (`GATEWAY_API_KEYS`): every `/v1/` request — HTTP and the WebSocket handshake
alike — needs `Authorization: Bearer <key>`; a missing or wrong key is a 401 with the OpenAI error
body, before any upgrade and before anything reaches the upstream."""
from __future__ import annotations

import pytest
import requests
import simple_websocket

from tests.checks import collect_text
from tests.fakes import upstream as fake
from tests.integration.test_websocket import MODEL, RawSocket, Socket, handshake, ws_url

pytestmark = pytest.mark.integration

UNAUTHORIZED = {"error": {"message": "Incorrect or missing API key. Send 'Authorization: Bearer <key>'.",
                          "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
BAD_HEADERS = {
    "missing": {},
    "wrong-key": {"Authorization": "Bearer k2"},
    "empty-bearer": {"Authorization": "Bearer "},
    "not-bearer": {"Authorization": "Basic azE6"},
    "key-prefix": {"Authorization": "Bearer k"},
    "key-extended": {"Authorization": "Bearer k1x"},
}


@pytest.fixture
def secured(make_gateway, upstream) -> str:
    return make_gateway(llm_api_base=upstream.base_url, api_keys=("k1", "other-key"))


@pytest.mark.parametrize("headers", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_websocket_handshake_without_the_right_key_is_401(secured, upstream, headers):
    raw = handshake(secured, headers=headers)
    assert raw.status == 401, (raw.status, raw.body)
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.json() == UNAUTHORIZED
    if all(value == value.strip() for value in headers.values()):  # wsproto refuses to send "Bearer "
        with pytest.raises(simple_websocket.ConnectionError) as refused:
            simple_websocket.Client.connect(ws_url(secured), headers=headers)
        assert refused.value.status_code == 401
    assert upstream.requests == []


@pytest.mark.parametrize("key", ["k1", "other-key"])
def test_websocket_with_the_right_key_works(secured, upstream, key):
    upstream.enqueue(fake.text("authorized"))
    raw = RawSocket(secured, headers={"Authorization": f"Bearer {key}"})
    raw.close()
    assert raw.status == 101
    with Socket(secured, headers={"Authorization": f"Bearer {key}"}) as ws:
        _, final = ws.completed(input="q", store=False)
    assert collect_text(final) == "authorized"


@pytest.mark.parametrize("headers", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_http_without_the_right_key_is_401(secured, upstream, headers):
    for method, path, body in (("POST", "/v1/responses", {"model": MODEL, "input": "q"}),
                               ("POST", "/v1/responses", {"model": MODEL, "input": "q", "stream": True}),
                               ("GET", "/v1/models", None),
                               ("GET", "/v1/responses/resp_any", None)):
        resp = requests.request(method, f"{secured}{path}", json=body, headers=headers, timeout=10)
        assert resp.status_code == 401, (method, path, resp.status_code, resp.text)
        assert resp.json() == UNAUTHORIZED
    assert upstream.requests == []


def test_http_with_the_right_key_works_and_health_is_open(secured, upstream):
    upstream.enqueue(fake.text("authorized"))
    resp = requests.post(f"{secured}/v1/responses", json={"model": MODEL, "input": "q"},
                         headers={"Authorization": "Bearer k1"}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert collect_text(resp.json()) == "authorized"
    assert requests.get(f"{secured}/health", timeout=10).status_code == 200


def test_without_configured_keys_no_authorization_is_needed(make_gateway, upstream):
    url = make_gateway(llm_api_base=upstream.base_url)
    upstream.enqueue(fake.text("open"), fake.text("open too"))
    resp = requests.post(f"{url}/v1/responses", json={"model": MODEL, "input": "q"}, timeout=10)
    assert resp.status_code == 200 and collect_text(resp.json()) == "open"
    with Socket(url, headers={"Authorization": "Bearer anything"}) as ws:
        _, final = ws.completed(input="q", store=False)
    assert collect_text(final) == "open too"
