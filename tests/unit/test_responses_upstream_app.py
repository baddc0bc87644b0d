"""The app with `UPSTREAM_API=responses` in front of a `responses`-mocked upstream: which path a
request takes, what goes upstream, and what comes back (both paths read the body the way
production does: requests' own adapter, sseclient-py)."""
from __future__ import annotations

import json

import pytest
import responses

from tests.checks import validate_response
from tests.fakes import scripts
from tests.fakes.responses_api import render_responses
from tests.unit.conftest import CHAT_URL, RESPONSES_URL
from tests.unit.helpers import check_events, content_chunk, finish_chunk, parse_sse, sse_body

WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
PATCH = {"type": "custom", "name": "apply_patch", "format": {"type": "text"}}


@pytest.fixture
def client(make_app):
    return make_app(upstream_api="responses", llm_api_key="upstream-key",
                    model_aliases={"alias": "upstream-model"}).test_client()


def stream_of(script) -> str:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n"
                   for e in render_responses(script, model="upstream-model", body={}, prompt_tokens=2))


def sent(upstream, index=-1) -> dict:
    return json.loads(upstream.calls[index].request.body)


def test_a_stored_turn_takes_the_stateful_path(client, upstream):
    upstream.add(responses.POST, RESPONSES_URL, body=stream_of(scripts.text("Stored.")),
                 content_type="text/event-stream")
    resp = client.post("/v1/responses", json={"model": "alias", "input": "hi", "tools": [PATCH], "stream": True})
    final = check_events(parse_sse(resp.get_data(as_text=True)))
    assert final["output"][0]["content"][0]["text"] == "Stored." and final["output"][0]["id"].startswith("msg_")
    body = sent(upstream)
    assert (body["model"], body["store"], body["stream"]) == ("upstream-model", False, True)
    assert body["tools"][0]["name"] == "apply_patch" and body["tools"][0]["type"] == "function"
    assert client.get(f"/v1/responses/{final['id']}").get_json() == final


def test_a_stateless_request_is_forwarded_as_sent_with_the_model_resolved(client, upstream):
    upstream.add(responses.POST, RESPONSES_URL, body=stream_of(scripts.text("Relayed.")),
                 content_type="text/event-stream")
    body = {"model": "alias", "input": "hi", "store": False, "stream": True, "tools": [WEATHER],
            "metadata": {"k": "v"}, "client_metadata": {"x": "y"}}
    resp = client.post("/v1/responses", json=body, headers={
        "Authorization": "Bearer client-key", "X-Request-Id": "req-42", "Connection": "keep-alive"})
    final = check_events(parse_sse(resp.get_data(as_text=True)))
    assert final["model"] == "alias" and final["metadata"] == {"k": "v"}
    assert sent(upstream) == {**body, "model": "upstream-model"}
    headers = upstream.calls[0].request.headers
    assert headers["Authorization"] == "Bearer upstream-key" and headers["X-Request-Id"] == "req-42"
    assert "client-key" not in json.dumps(dict(headers))


def test_a_stateless_json_request_gets_the_final_response_of_the_upstream_stream(client, upstream):
    events = render_responses(scripts.length("Cut"), model="upstream-model", body={}, prompt_tokens=2)
    upstream.add(responses.POST, RESPONSES_URL, content_type="text/event-stream",
                 body="".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events))
    resp = client.post("/v1/responses", json={"model": "alias", "input": "hi", "store": False})
    body = resp.get_json()
    validate_response(body)
    assert body["status"] == "incomplete" and body["output"][-1]["status"] == "incomplete"
    assert body["output"][-1]["content"][0]["text"] == "Cut"
    assert body["id"] == events[-1]["response"]["id"] and body["model"] == "alias"
    # Streamed upstream, so that the request can be ended the moment its client leaves.
    assert sent(upstream) == {"model": "upstream-model", "input": "hi", "store": False, "stream": True}


@pytest.mark.parametrize("store", [True, False])
def test_upstream_errors_map_the_same_on_both_paths(client, upstream, store):
    message = "This model's maximum context length is 10 tokens. However, your prompt contains at least 11."
    upstream.add(responses.POST, RESPONSES_URL, status=400, json={"error": {
        "message": message, "type": "BadRequestError", "param": "input_tokens", "code": 400}})
    resp = client.post("/v1/responses", json={"model": "alias", "input": "hi", "store": store})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "context_length_exceeded"


@pytest.mark.parametrize("store", [True, False])
def test_an_unknown_model_is_model_not_found_on_both_paths(client, upstream, store):
    upstream.add(responses.POST, RESPONSES_URL, status=404, json={"error": {
        "message": "The model `nope` does not exist.", "type": "NotFoundError", "param": "model", "code": 404}})
    resp = client.post("/v1/responses", json={"model": "nope", "input": "hi", "store": store})
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (404, "model_not_found")


def test_a_chain_stored_through_the_chat_kind_continues_through_the_responses_kind(make_app, upstream):
    chat = make_app().test_client()
    upstream.add(responses.POST, CHAT_URL, body=sse_body([content_chunk("First answer."), finish_chunk("stop")]),
                 content_type="text/event-stream")
    first = chat.post("/v1/responses", json={"model": "m", "input": "First question."}).get_json()
    upstream.add(responses.POST, RESPONSES_URL, body=stream_of(scripts.text("Second.")),
                 content_type="text/event-stream")
    second = make_app(upstream_api="responses").test_client().post(
        "/v1/responses", json={"model": "m", "input": "Second question.", "previous_response_id": first["id"]})
    assert second.status_code == 200, second.get_json()
    assert sent(upstream)["input"] == [
        {"type": "message", "role": "user", "content": "First question."},
        {"type": "message", "role": "assistant", "content": "First answer."},
        {"type": "message", "role": "user", "content": "Second question."}]


def test_a_chain_stored_through_the_responses_kind_continues_through_the_chat_kind(make_app, upstream):
    upstream.add(responses.POST, RESPONSES_URL, body=stream_of(scripts.tool_calls([{"name": "get_weather",
                                                                                    "arguments": {}}])),
                 content_type="text/event-stream")
    first = make_app(upstream_api="responses").test_client().post(
        "/v1/responses", json={"model": "m", "input": "Weather?", "tools": [WEATHER]}).get_json()
    call = first["output"][0]
    upstream.add(responses.POST, CHAT_URL, body=sse_body([content_chunk("Sunny."), finish_chunk("stop")]),
                 content_type="text/event-stream")
    second = make_app().test_client().post("/v1/responses", json={
        "model": "m", "previous_response_id": first["id"],
        "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}]})
    assert second.status_code == 200, second.get_json()
    messages = sent(upstream)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["function"]["name"] == "get_weather"


def test_rows_stored_before_responses_fragments_existed_are_re_translated(make_app, upstream):
    from storage.db import db
    from storage.models import ResponseRecord

    upstream.add(responses.POST, CHAT_URL, body=sse_body([content_chunk("Old answer."), finish_chunk("stop")]),
                 content_type="text/event-stream")
    first = make_app().test_client().post("/v1/responses", json={"model": "m", "input": "Old question."}).get_json()
    with db.connection_context():
        ResponseRecord.update(responses_fragment=None).execute()  # as a database from before schema v5
    upstream.add(responses.POST, RESPONSES_URL, body=stream_of(scripts.text("New.")), content_type="text/event-stream")
    second = make_app(upstream_api="responses").test_client().post(
        "/v1/responses", json={"model": "m", "input": "New question.", "previous_response_id": first["id"]})
    assert second.status_code == 200
    assert [item["content"] for item in sent(upstream)["input"]] == ["Old question.", "Old answer.", "New question."]
