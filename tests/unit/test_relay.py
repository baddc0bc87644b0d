"""The stateless proxy path's relay: vLLM's own Responses events passed on with only its quirks
fixed, every event valid for the openai SDK and the event-order checker."""
from __future__ import annotations

from dataclasses import replace

from gateway.errors import server_error
from gateway.translate.relay import Relay, normalize_response
from gateway.translate.resource import new_response
from tests.fakes import scripts
from tests.fakes.responses_api import render_responses
from tests.unit.helpers import check_events

REQUEST = {"model": "alias-model", "store": False}


def relayed(script, request=REQUEST):
    relay = Relay(new_response(request))
    events = []
    for event in render_responses(script, model="upstream-model", body={}, prompt_tokens=3):
        events += relay.feed(event)
    return relay, events


def test_a_text_stream_passes_with_the_upstreams_ids_and_fixed_snapshots():
    relay, events = relayed(scripts.text("Hi there."))
    final = check_events(events)
    assert final["id"].startswith("resp_") and len(final["id"]) == 21  # vLLM's id, not a gateway one
    assert final["model"] == "alias-model"
    assert final["text"] == {"format": {"type": "text"}} and final["tool_choice"] == "auto"
    assert final["store"] is False and final["metadata"] == {} and final["completed_at"]
    assert not {"kv_transfer_params", "ec_transfer_params", "input_messages", "output_messages"} & set(final)
    assert set(final["usage"]["output_tokens_details"]) == {"reasoning_tokens"}
    assert "phase" not in final["output"][0]
    assert relay.ended and relay.response is final


def test_an_incomplete_response_ends_with_response_incomplete_and_its_cut_item_says_so():
    _, events = relayed(scripts.length("Cut"))
    final = check_events(events)
    assert events[-1]["type"] == "response.incomplete"
    done = [e for e in events if e["type"] == "response.output_item.done"]
    assert done[-1]["item"]["status"] == final["output"][-1]["status"] == "incomplete"


def test_missing_or_restarting_sequence_numbers_are_renumbered():
    for sequence in ("missing", "restart"):
        _, events = relayed(replace(scripts.text("Numbered."), sequence=sequence))
        assert [e["sequence_number"] for e in events] == list(range(len(events)))


def test_vllms_reasoning_parts_become_content_parts_and_nulls_are_fixed():
    _, events = relayed(scripts.tool_calls([{"name": "f", "arguments": {}}], reasoning="Hmm."))
    check_events(events)
    types = [e["type"] for e in events]
    assert "response.content_part.added" in types and not [t for t in types if "reasoning_part" in t]
    call = [e for e in events if e["type"] == "response.output_item.added"][-1]["item"]
    assert not {"async", "caller", "namespace"} & set(call)
    reasoning = events[-1]["response"]["output"][0]
    assert "encrypted_content" not in reasoning


def test_logprobs_null_becomes_an_empty_list():
    _, events = relayed(scripts.text("Probable."))
    parts = [e["part"] for e in events if e["type"] == "response.content_part.done"]
    assert parts and all(part["logprobs"] == [] for part in parts)


def test_a_stream_that_breaks_ends_with_one_response_failed():
    relay = Relay(new_response(REQUEST))
    events = []
    for event in render_responses(scripts.text("Half"), model="m", body={}, prompt_tokens=1)[:5]:
        events += relay.feed(event)
    events += relay.fail(server_error(502, "Upstream model server closed the stream unexpectedly."))
    final = check_events(events)
    assert final["status"] == "failed" and final["error"]["code"] == "server_error"
    [cut] = final["output"]  # closed with what had arrived
    assert cut["status"] == "incomplete" and cut["content"][0]["text"] == "Half"
    assert relay.feed({"type": "response.output_text.delta", "delta": "late"}) == []  # nothing after the end


def test_a_refused_request_still_gets_created_in_progress_and_failed():
    relay = Relay(new_response(REQUEST))
    error = server_error(502, "Could not connect to the upstream model server.")
    events = relay.start_failed(error)
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.failed"]
    assert check_events(events)["error"]["message"] == error.message


def test_a_json_answer_is_normalized_like_a_snapshot():
    final = render_responses(scripts.length("Cut"), model="upstream-model", body={}, prompt_tokens=1)[-1]["response"]
    answer = normalize_response(final, new_response(REQUEST))
    assert answer["status"] == "incomplete" and answer["output"][-1]["status"] == "incomplete"
    assert answer["model"] == "alias-model" and "kv_transfer_params" not in answer
