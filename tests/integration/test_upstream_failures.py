"""Every upstream failure mode: clear HTTP errors for JSON, `response.failed` for streams."""
from __future__ import annotations

import pytest
import requests

from tests.checks import check_stream
from tests.fakes import upstream as fake
from tests.support import free_port, post_stream

pytestmark = pytest.mark.integration
BODY = {"model": "fake-model", "input": "hi"}


def post_json(url, body=BODY):
    return requests.post(f"{url}/v1/responses", json=body, timeout=30)


def failed_stream(url, body=BODY):
    resp, events = post_stream(url, body)
    assert resp.status_code == 200
    final = check_stream(events)
    assert events[-1]["type"] == "response.failed" and final["status"] == "failed"
    return final, events


def test_rate_limit_json_is_429_with_retry_hint(gateway, upstream):
    upstream.enqueue(fake.http_error(429, "slow down", headers={"Retry-After": "3"}))
    resp = post_json(gateway)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "3"
    error = resp.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and "Please try again in 3s." in error["message"]


def test_rate_limit_stream_fails_with_rate_limit_code(gateway, upstream):
    upstream.enqueue(fake.http_error(429, "slow down", headers={"Retry-After": "2"}))
    final, _ = failed_stream(gateway)
    assert final["error"]["code"] == "rate_limit_exceeded"
    assert "Please try again in 2s." in final["error"]["message"]


def test_upstream_5xx_json_is_502_server_error(gateway, upstream):
    upstream.enqueue(fake.http_error(500, "engine dead"))
    resp = post_json(gateway)
    assert resp.status_code == 502
    assert resp.json()["error"]["code"] == "server_error"
    assert resp.json()["error"]["type"] == "server_error"


@pytest.mark.parametrize("new_style", [True, False])
def test_context_overflow_json_is_400_context_length_exceeded(gateway, upstream, new_style):
    upstream.enqueue(fake.context_overflow(new_style=new_style))
    resp = post_json(gateway)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "context_length_exceeded"


def test_context_overflow_stream_is_response_failed(gateway, upstream):
    upstream.enqueue(fake.context_overflow(flat=True))
    final, events = failed_stream(gateway)
    assert final["error"]["code"] == "context_length_exceeded"
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.failed"]


def test_unknown_upstream_model_is_404_model_not_found(gateway, upstream):
    resp = post_json(gateway, {"model": "no-such-model", "input": "hi"})
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "model_not_found"


def test_mid_stream_drop_ends_with_response_failed(gateway, upstream):
    upstream.enqueue(fake.drop_after(4))
    final, events = failed_stream(gateway)
    assert final["error"]["code"] == "server_error"
    assert any(e["type"] == "response.output_text.delta" for e in events)
    (message,) = final["output"]
    assert message["status"] == "incomplete"


def test_mid_stream_drop_json_is_502(gateway, upstream):
    upstream.enqueue(fake.drop_after(4))
    resp = post_json(gateway)
    assert resp.status_code == 502 and resp.json()["error"]["code"] == "server_error"


def test_stall_longer_than_read_timeout_fails_the_stream(gateway, upstream):
    upstream.enqueue(fake.stall_after(3, seconds=6))
    final, _ = failed_stream(gateway)
    assert final["error"]["code"] == "server_error"
    assert "stalled" in final["error"]["message"]


def test_stall_json_is_504(gateway, upstream):
    upstream.enqueue(fake.stall_after(3, seconds=6))
    resp = post_json(gateway)
    assert resp.status_code == 504


def test_mid_stream_error_object_fails_the_stream(gateway, upstream):
    upstream.enqueue(fake.stream_error("CUDA out of memory", after=2))
    final, _ = failed_stream(gateway)
    assert final["error"]["code"] == "server_error"
    assert "CUDA out of memory" in final["error"]["message"]


def test_stream_without_finish_reason_fails(gateway, upstream):
    upstream.enqueue(fake.no_finish("partial"))
    final, _ = failed_stream(gateway)
    assert final["error"]["code"] == "server_error"


def test_connection_refused_json_is_502(make_gateway):
    url = make_gateway(llm_api_base=f"http://127.0.0.1:{free_port()}")
    resp = post_json(url)
    assert resp.status_code == 502
    assert resp.json()["error"] == {"message": resp.json()["error"]["message"], "type": "server_error",
                                    "param": None, "code": "server_error"}


def test_connection_refused_stream_fails(make_gateway):
    url = make_gateway(llm_api_base=f"http://127.0.0.1:{free_port()}")
    final, _ = failed_stream(url)
    assert final["error"]["code"] == "server_error"


def test_slow_upstream_headers_json_is_504(make_gateway, upstream):
    upstream.enqueue(fake.stall_after(0, seconds=5))
    url = make_gateway(llm_api_base=upstream.base_url, upstream_timeout_s=(1.0, 0.5))
    resp = post_json(url)
    assert resp.status_code == 504
    assert resp.json()["error"]["code"] == "server_error"
