"""Upstream failures → OpenAI-shaped errors (responses-api.md §5, §8.5), directly and through the app."""
from __future__ import annotations

import gzip
import json

import pytest
import requests
import responses

from gateway.errors import APIError
from gateway.upstream.failures import from_status, from_stream
from tests.checks import validate_response
from tests.unit.conftest import CHAT_URL
from tests.unit.helpers import check_events, content_chunk, finish_chunk, parse_sse, sse_body, usage_chunk

NEW_CONTEXT_MESSAGE = ("You passed 9000 input tokens and requested 1000 output tokens. However, the model's "
                       "context length is only 8192 tokens, resulting in a maximum input length of 7192 tokens. "
                       "Please reduce the length of the input prompt. (parameter=input_tokens, value=9000)")
OLD_CONTEXT_MESSAGE = ("This model's maximum context length is 8192 tokens. However, you requested 9000 tokens "
                       "(8000 in the messages, 1000 in the completion). Please reduce the length of the messages "
                       "or completion.")
TOOL_PARSER_MESSAGE = ('"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set')


def vllm_error(message, status=400, type_="BadRequestError", param=None):
    """vLLM's current error body: `code` is the HTTP status as an int."""
    return {"error": {"message": message, "type": type_, "param": param, "code": status}}


def flat_error(message, status=400, type_="BadRequestError"):
    """Older vLLM's flat error body."""
    return {"object": "error", "message": message, "type": type_, "param": None, "code": status}


# -- from_status --------------------------------------------------------------------

def test_429_with_retry_after_is_rate_limit_exceeded():
    error = from_status(429, vllm_error("busy", 429), {"Retry-After": "2"})
    assert (error.status, error.code) == (429, "rate_limit_exceeded")
    assert "Please try again in 2s." in error.message
    assert error.headers["Retry-After"] == "2"


def test_429_with_fractional_retry_after_keeps_the_fraction_in_the_message():
    error = from_status(429, vllm_error("busy", 429), {"Retry-After": "1.5"})
    assert "Please try again in 1.5s." in error.message
    assert error.headers["Retry-After"] == "2"


def test_429_without_retry_after_suggests_one_second():
    error = from_status(429, vllm_error("busy", 429), {})
    assert (error.status, error.code) == (429, "rate_limit_exceeded")
    assert "Please try again in 1s." in error.message
    assert error.headers["Retry-After"] == "1"


@pytest.mark.parametrize("status", [500, 503])
def test_upstream_5xx_is_a_502_server_error(status):
    error = from_status(status, vllm_error("engine dead", status, "InternalServerError"), {})
    assert (error.status, error.type, error.code) == (502, "server_error", "server_error")


def test_upstream_5xx_with_a_text_body_is_a_502_server_error():
    error = from_status(500, "Internal Server Error", {})
    assert (error.status, error.code) == (502, "server_error")


@pytest.mark.parametrize("body", [
    vllm_error(NEW_CONTEXT_MESSAGE, param="input_tokens"),
    vllm_error(OLD_CONTEXT_MESSAGE),
    flat_error(NEW_CONTEXT_MESSAGE),
    flat_error(OLD_CONTEXT_MESSAGE),
], ids=["current shape, vLLM>=0.16", "current shape, old message", "flat shape, vLLM>=0.16", "flat shape, old message"])
def test_context_overflow_is_context_length_exceeded(body):
    error = from_status(400, body, {})
    assert (error.status, error.type, error.code) == (400, "invalid_request_error", "context_length_exceeded")
    assert "context length" in error.message


def test_missing_tool_parser_is_a_400_with_a_deployment_hint():
    error = from_status(400, vllm_error(TOOL_PARSER_MESSAGE), {})
    assert (error.status, error.type) == (400, "invalid_request_error")
    assert "--enable-auto-tool-choice" in error.message and "--tool-call-parser" in error.message


def test_unknown_upstream_model_is_model_not_found():
    error = from_status(404, vllm_error("The model `gpt-x` does not exist.", 404, "NotFoundError"), {})
    assert (error.status, error.code, error.param) == (404, "model_not_found", "model")
    assert "gpt-x" in error.message


def test_upstream_422_is_a_400():
    error = from_status(422, {"detail": [{"msg": "field required"}]}, {})
    assert (error.status, error.type) == (400, "invalid_request_error")
    assert "field required" in error.message


def test_other_upstream_400_keeps_the_upstream_message():
    error = from_status(400, vllm_error("temperature must be non-negative"), {})
    assert error.status == 400 and "temperature must be non-negative" in error.message


def test_stream_error_object_is_a_server_error():
    error = from_stream({"error": {"message": "engine crashed", "type": "InternalServerError", "code": 500}})
    assert (error.status, error.code) == (502, "server_error")
    assert "engine crashed" in error.message


def test_stream_error_about_context_is_context_length_exceeded():
    error = from_stream({"error": {"message": OLD_CONTEXT_MESSAGE, "code": 400}})
    assert (error.status, error.code) == (400, "context_length_exceeded")


def test_api_error_renders_the_openai_envelope():
    error = APIError(400, "bad", param="input", code="x")
    assert error.to_dict() == {"error": {"message": "bad", "type": "invalid_request_error",
                                         "param": "input", "code": "x"}}


# -- through the app -------------------------------------------------------------------------

BODY = {"model": "gpt-test", "input": "Hello"}


def post(client, stream=False, **extra):
    return client.post("/v1/responses", json={**BODY, "stream": stream, **extra})


def assert_openai_error(resp, status, code=None, type_=None):
    assert resp.status_code == status
    assert resp.mimetype == "application/json"
    assert resp.headers.get("x-request-id")
    error = resp.get_json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    if type_ is not None:
        assert error["type"] == type_
    return error


def streamed(resp):
    assert resp.status_code == 200
    assert resp.mimetype == "text/event-stream"
    events = parse_sse(resp.get_data(as_text=True))
    return events, check_events(events)


UPSTREAM_FAILURES = {
    "429": (dict(json=vllm_error("busy", 429), status=429, headers={"Retry-After": "3"}), "rate_limit_exceeded"),
    "500": (dict(json=vllm_error("boom", 500, "InternalServerError"), status=500), "server_error"),
    "503": (dict(body="Service Unavailable", status=503), "server_error"),
    "context overflow": (dict(json=vllm_error(NEW_CONTEXT_MESSAGE, param="input_tokens"), status=400),
                         "context_length_exceeded"),
    "connection refused": (dict(body=requests.exceptions.ConnectionError("refused")), "server_error"),
    "connect timeout": (dict(body=requests.exceptions.ConnectTimeout("connect timed out")), "server_error"),
    "read timeout": (dict(body=requests.exceptions.ReadTimeout("read timed out")), "server_error"),
}


def test_successful_upstream_gives_a_valid_response(client, upstream):
    upstream.add(responses.POST, CHAT_URL, body=sse_body([content_chunk("Hi!"), finish_chunk("stop"),
                                                          usage_chunk(3, 2)]), content_type="text/event-stream")
    resp = post(client)
    assert resp.status_code == 200
    body = resp.get_json()
    validate_response(body)
    assert body["output"][0]["content"][0]["text"] == "Hi!"


def test_gzip_encoded_upstream_stream_is_decoded(client, upstream):
    body = sse_body([content_chunk("Zipped!"), finish_chunk("stop"), usage_chunk(3, 2)])
    upstream.add(responses.POST, CHAT_URL, body=gzip.compress(body.encode() if isinstance(body, str) else body),
                 content_type="text/event-stream", headers={"Content-Encoding": "gzip"})
    resp = post(client)
    assert resp.status_code == 200
    assert resp.get_json()["output"][0]["content"][0]["text"] == "Zipped!"


def test_upstream_request_is_the_translated_chat_request(client, upstream):
    upstream.add(responses.POST, CHAT_URL, body=sse_body([content_chunk("Hi!"), finish_chunk("stop")]),
                 content_type="text/event-stream")
    post(client)
    sent = json.loads(upstream.calls[0].request.body)
    assert sent["messages"] == [{"role": "user", "content": "Hello"}]
    assert sent["stream"] is True


def test_upstream_429_is_a_429_with_retry_after(client, upstream):
    upstream.add(responses.POST, CHAT_URL, json=vllm_error("busy", 429), status=429, headers={"Retry-After": "3"})
    resp = post(client)
    error = assert_openai_error(resp, 429, "rate_limit_exceeded")
    assert "Please try again in 3s." in error["message"]
    assert resp.headers["Retry-After"] == "3"


@pytest.mark.parametrize("status", [500, 503])
def test_upstream_5xx_is_a_502(client, upstream, status):
    upstream.add(responses.POST, CHAT_URL, json=vllm_error("boom", status, "InternalServerError"), status=status)
    assert_openai_error(post(client), 502, "server_error", "server_error")


def test_upstream_context_overflow_is_a_400_context_length_exceeded(client, upstream):
    upstream.add(responses.POST, CHAT_URL, json=vllm_error(NEW_CONTEXT_MESSAGE, param="input_tokens"), status=400)
    assert_openai_error(post(client), 400, "context_length_exceeded", "invalid_request_error")


def test_upstream_unknown_model_is_a_404_model_not_found(client, upstream):
    upstream.add(responses.POST, CHAT_URL, json=vllm_error("The model `x` does not exist.", 404), status=404)
    assert_openai_error(post(client), 404, "model_not_found")


def test_connection_refused_is_a_502(client, upstream):
    upstream.add(responses.POST, CHAT_URL, body=requests.exceptions.ConnectionError("refused"))
    assert_openai_error(post(client), 502, "server_error", "server_error")


@pytest.mark.parametrize("exc", [requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout])
def test_upstream_timeout_is_a_504(client, upstream, exc):
    upstream.add(responses.POST, CHAT_URL, body=exc("timed out"))
    assert_openai_error(post(client), 504, "server_error", "server_error")


def test_mid_stream_error_object_is_a_502(client, upstream):
    upstream.add(responses.POST, CHAT_URL, body=sse_body([content_chunk("Hi"), {"error": {
        "message": "engine crashed", "type": "InternalServerError", "code": 500}}]),
        content_type="text/event-stream")
    assert_openai_error(post(client), 502, "server_error")


def test_upstream_stream_without_finish_reason_is_a_502(client, upstream):
    upstream.add(responses.POST, CHAT_URL, body=sse_body([content_chunk("Hi")]), content_type="text/event-stream")
    assert_openai_error(post(client), 502, "server_error")


@pytest.mark.parametrize("mock, code", UPSTREAM_FAILURES.values(), ids=UPSTREAM_FAILURES.keys())
def test_streamed_failure_is_created_in_progress_failed(client, upstream, mock, code):
    upstream.add(responses.POST, CHAT_URL, **mock)
    events, final = streamed(post(client, stream=True))
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.failed"]
    assert final["status"] == "failed"
    assert final["error"]["code"] == code


def test_streamed_mid_stream_error_closes_the_message_and_fails(client, upstream):
    upstream.add(responses.POST, CHAT_URL, body=sse_body([content_chunk("Hi"), {"error": {
        "message": "engine crashed", "type": "InternalServerError", "code": 500}}]),
        content_type="text/event-stream")
    events, final = streamed(post(client, stream=True))
    assert final["error"]["code"] == "server_error"
    assert final["output"][0]["status"] == "incomplete"


def test_streamed_response_has_a_request_id(client, upstream):
    upstream.add(responses.POST, CHAT_URL, json=vllm_error("busy", 429), status=429)
    assert post(client, stream=True).headers.get("x-request-id")


@pytest.mark.parametrize("mock", [
    dict(json=vllm_error("The model `x` does not exist.", 404, "NotFoundError"), status=404),
    dict(json=vllm_error(TOOL_PARSER_MESSAGE), status=400),
    dict(json={"detail": "bad"}, status=422),
], ids=["404", "tool parser", "422"])
def test_streamed_upstream_refusal_fails_with_invalid_prompt(client, upstream, mock):
    """Only ResponseError codes go into response.failed; other upstream 4xx become invalid_prompt."""
    upstream.add(responses.POST, CHAT_URL, **mock)
    events, final = streamed(post(client, stream=True))
    validate_response(final)
    assert final["error"]["code"] == "invalid_prompt"


# -- the app's own errors --------------------------------------------------------------------

def test_request_id_from_the_client_is_echoed_on_errors(client):
    resp = client.post("/v1/responses", json={"input": "no model"}, headers={"x-request-id": "req_mine"})
    assert resp.headers["x-request-id"] == "req_mine"


def test_invalid_body_is_a_400_naming_the_field(client):
    error = assert_openai_error(client.post("/v1/responses", json={"input": "no model"}), 400)
    assert error["param"] == "model"


def test_unknown_route_is_a_404(client):
    assert_openai_error(client.get("/v1/nope"), 404, "not_found", "invalid_request_error")


def test_wrong_method_is_a_405(client):
    resp = client.delete("/v1/responses")
    assert_openai_error(resp, 405, "method_not_allowed")
    assert "POST" in resp.headers["Allow"]


@pytest.mark.parametrize("data", ["{not json", "", "[1, 2"], ids=["broken", "empty", "truncated"])
def test_malformed_json_is_a_400_invalid_json(client, data):
    resp = client.post("/v1/responses", data=data, content_type="application/json")
    assert_openai_error(resp, 400, "invalid_json", "invalid_request_error")


def test_json_that_is_not_an_object_is_a_400(client):
    assert_openai_error(client.post("/v1/responses", json=["model"]), 400, type_="invalid_request_error")


def test_oversized_body_is_a_413(make_app):
    client = make_app(max_request_bytes=1000).test_client()
    resp = client.post("/v1/responses", json={"model": "gpt-test", "input": "x" * 2000})
    assert_openai_error(resp, 413, type_="invalid_request_error")


def test_body_under_the_limit_is_not_rejected_as_too_large(make_app, upstream):
    upstream.add(responses.POST, CHAT_URL, body=sse_body([content_chunk("ok"), finish_chunk("stop")]),
                 content_type="text/event-stream")
    client = make_app(max_request_bytes=1000).test_client()
    assert client.post("/v1/responses", json={"model": "gpt-test", "input": "short"}).status_code == 200
