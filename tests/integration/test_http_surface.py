"""Routes other than create: models, health, readiness, and errors for bad requests."""
from __future__ import annotations

import json

import pytest
import requests

from tests.support import free_port

pytestmark = pytest.mark.integration


def test_models_lists_upstream_models_and_aliases(gateway):
    body = requests.get(f"{gateway}/v1/models", timeout=10).json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert ids == ["fake-model", "other-model", "alias-model"]
    assert all(m["object"] == "model" for m in body["data"])


def test_health_is_200(gateway):
    assert requests.get(f"{gateway}/health", timeout=10).status_code == 200


def test_ready_follows_upstream_health(make_gateway, upstream):
    url = make_gateway(llm_api_base=upstream.base_url, skip_llm_ready_check=False)
    assert requests.get(f"{url}/ready", timeout=10).status_code == 200
    upstream.health_status = 503
    import time
    time.sleep(1.1)  # the probe result is cached for one second
    resp = requests.get(f"{url}/ready", timeout=10)
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "upstream_not_ready"


def test_ready_skips_the_probe_for_hosted_endpoints(make_gateway):
    url = make_gateway(llm_api_base=f"http://127.0.0.1:{free_port()}", skip_llm_ready_check=True)
    assert requests.get(f"{url}/ready", timeout=10).status_code == 200


def test_unknown_route_is_openai_shaped_404(gateway):
    resp = requests.get(f"{gateway}/v1/nothing", timeout=10)
    assert resp.status_code == 404
    assert set(resp.json()["error"]) == {"message", "type", "param", "code"}


def test_wrong_method_is_405(gateway):
    resp = requests.put(f"{gateway}/v1/responses", json={}, timeout=10)
    assert resp.status_code == 405 and resp.json()["error"]["type"] == "invalid_request_error"


def test_malformed_json_is_400(gateway):
    resp = requests.post(f"{gateway}/v1/responses", data="{not json", timeout=10,
                         headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_json"


def test_validation_error_names_the_param(gateway):
    resp = requests.post(f"{gateway}/v1/responses", json={"model": "fake-model", "input": "x",
                                                          "temperature": "hot"}, timeout=10)
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "temperature"


def test_oversized_body_is_413(make_gateway, upstream):
    url = make_gateway(llm_api_base=upstream.base_url, max_request_bytes=2000)
    resp = requests.post(f"{url}/v1/responses", json={"model": "fake-model", "input": "x" * 5000}, timeout=10)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "request_too_large"


def chunks_of(body: bytes, size: int = 500):
    for start in range(0, len(body), size):
        yield body[start:start + size]


@pytest.mark.parametrize("path", ["/v1/responses", "/v1/conversations"])
def test_oversized_chunked_body_is_413_too(gunicorn_factory, path):
    url = gunicorn_factory(MAX_REQUEST_BYTES="2000").url
    body = json.dumps({"model": "fake-model", "input": "x" * 5000, "items": []}).encode()
    resp = requests.post(f"{url}{path}", data=chunks_of(body), headers={"Content-Type": "application/json"},
                         timeout=10)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "request_too_large"


def test_chunked_body_under_the_limit_is_served(gunicorn_factory, upstream):
    url = gunicorn_factory(MAX_REQUEST_BYTES="2000").url
    body = json.dumps({"model": "fake-model", "input": "x" * 1000}).encode()
    resp = requests.post(f"{url}/v1/responses", data=chunks_of(body), headers={"Content-Type": "application/json"},
                         timeout=10)
    assert resp.status_code == 200, resp.text


def test_input_file_that_upstream_cannot_take_is_400(gateway, upstream):
    part = {"type": "input_file", "file_id": "file_123"}
    resp = requests.post(f"{gateway}/v1/responses", timeout=10, json={
        "model": "fake-model", "input": [{"role": "user", "content": [part]}]})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "input[0].content[0]"
    assert upstream.chat_requests() == []
