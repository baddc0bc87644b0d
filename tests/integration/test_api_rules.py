"""Rules of the Responses API the compliance suite checks, over HTTP and WebSocket
(responses-api.md §2.3 and §7): a failed WebSocket continuation evicts its parent from the
connection's cache, and a tool output must answer a call the context holds."""
from __future__ import annotations

import pytest
import requests

from tests.checks import check_stream
from tests.fakes import upstream as fake
from tests.integration.test_websocket import MODEL, WEATHER, Socket

pytestmark = pytest.mark.integration
UNKNOWN_OUTPUT = {"type": "function_call_output", "call_id": "call_nowhere", "output": "42"}
NOT_FOUND = "No tool call found for function call output with call_id call_nowhere."


@pytest.mark.parametrize("failure", ["failed-response", "error-frame"])
def test_a_failed_websocket_continuation_evicts_its_parent_and_the_socket_stays_usable(gateway, upstream, failure):
    upstream.enqueue(fake.text("first"))
    with Socket(gateway) as ws:
        _, first = ws.completed(input="hi", store=False)
        if failure == "failed-response":
            upstream.enqueue(fake.http_error(500, "engine down"))
            events = ws.create(input="more", previous_response_id=first["id"], store=False)
            assert check_stream(events)["status"] == "failed"
        else:
            error = ws.error(input=[UNKNOWN_OUTPUT], previous_response_id=first["id"], store=False)
            assert error["status"] == 400
        retry = ws.error(input="again", previous_response_id=first["id"], store=False)
        assert retry["error"]["code"] == "previous_response_not_found"
        upstream.enqueue(fake.text("fresh"))
        _, fresh = ws.completed(input="start over", store=False)
    assert fresh["status"] == "completed"


def test_a_stored_parent_stays_continuable_after_a_failed_websocket_continuation(gateway, upstream):
    upstream.enqueue(fake.text("first"), fake.http_error(500, "engine down"), fake.text("retried"))
    with Socket(gateway) as ws:
        _, first = ws.completed(input="hi", store=True)
        ws.create(input="more", previous_response_id=first["id"])
        _, retried = ws.completed(input="more", previous_response_id=first["id"])
    assert retried["previous_response_id"] == first["id"]


def test_a_tool_output_for_no_call_is_refused_over_http_before_the_upstream(gateway, upstream):
    resp = requests.post(f"{gateway}/v1/responses", timeout=10, json={
        "model": MODEL, "input": [{"role": "user", "content": "hi"}, UNKNOWN_OUTPUT]})
    assert resp.status_code == 400
    assert resp.json()["error"] == {"message": NOT_FOUND, "type": "invalid_request_error", "param": "input",
                                    "code": None}
    assert upstream.model_requests() == []


def test_a_tool_output_for_no_call_is_an_error_frame_over_websocket(gateway, upstream):
    upstream.enqueue(fake.text("first"))
    with Socket(gateway) as ws:
        _, first = ws.completed(input="hi", store=False)
        error = ws.error(input=[UNKNOWN_OUTPUT], previous_response_id=first["id"], store=False)
    assert (error["status"], error["error"]["message"]) == (400, NOT_FOUND)
    assert len(upstream.model_requests()) == 1


def test_tool_outputs_may_answer_calls_from_the_input_the_parent_or_earlier_in_the_chain(gateway, upstream):
    call = {"type": "function_call", "call_id": "call_in_input", "name": "get_weather", "arguments": "{}"}
    upstream.enqueue(fake.text("from input"))
    resp = requests.post(f"{gateway}/v1/responses", timeout=10, json={
        "model": MODEL, "tools": [WEATHER], "input": [call, {**UNKNOWN_OUTPUT, "call_id": "call_in_input"}]})
    assert resp.status_code == 200, resp.text

    upstream.enqueue(fake.tool_calls([{"name": "get_weather", "arguments": {}}]), fake.text("answered"),
                     fake.text("late answer"))
    first = requests.post(f"{gateway}/v1/responses", timeout=10, json={
        "model": MODEL, "tools": [WEATHER], "input": "weather?"}).json()
    call_id = first["output"][0]["call_id"]
    second = requests.post(f"{gateway}/v1/responses", timeout=10, json={
        "model": MODEL, "previous_response_id": first["id"], "input": [{**UNKNOWN_OUTPUT, "call_id": call_id}]})
    assert second.status_code == 200, second.text
    third = requests.post(f"{gateway}/v1/responses", timeout=10, json={     # the call is two levels up now
        "model": MODEL, "previous_response_id": second.json()["id"],
        "input": [{**UNKNOWN_OUTPUT, "call_id": call_id, "output": "corrected"}]})
    assert third.status_code == 200, third.text
