"""Compaction (responses-api.md §1, §4.1): `/v1/responses/compact` (through the openai SDK, which
validates what it gets), `compaction` items opened in later input over HTTP and WebSocket with
`store` true and false, and `compaction_trigger` turns."""
from __future__ import annotations

import json

import openai
import pytest
import requests
from openai.types.responses import CompactedResponse

from tests.checks import check_stream, collect_text
from tests.fakes import upstream as fake
from tests.integration.test_websocket import Socket
from tests.support import post_stream

pytestmark = pytest.mark.integration
MODEL = "fake-model"
SUMMARY = "The user asked for the capital of France; it is Paris. Next: Spain."


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def create(url: str, **body) -> dict:
    resp = requests.post(f"{url}/v1/responses", json={"model": MODEL, **body}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def sent_texts(upstream) -> list[str]:
    return [m["content"] if isinstance(m["content"], str) else json.dumps(m["content"])
            for m in upstream.chat_requests()[-1]["messages"]]


@pytest.fixture
def compacted(gateway, upstream) -> tuple[dict, CompactedResponse]:
    """A stored turn, then its chain compacted with one more user message."""
    upstream.enqueue(fake.text("Paris."), fake.text(SUMMARY))
    first = create(gateway, input="Capital of France?")
    result = sdk(gateway).responses.compact(model=MODEL, previous_response_id=first["id"],
                                            input=[{"role": "user", "content": "And Spain?"}])
    return first, result


def test_compact_keeps_the_user_messages_and_seals_a_summary_written_by_the_model(compacted, upstream):
    _, result = compacted
    assert result.object == "response.compaction" and result.usage.input_tokens > 0
    *users, item = [entry.model_dump(warnings=False) for entry in result.output]
    assert [u["content"][0]["text"] for u in users] == ["Capital of France?", "And Spain?"]
    assert item["type"] == "compaction" and item["id"].startswith("cmp_") and "Paris" not in item["encrypted_content"]
    asked = sent_texts(upstream)
    assert asked[:2] == ["Capital of France?", "Paris."] and "Context checkpoint" in asked[-1]


@pytest.mark.parametrize("store", [False, True])
def test_a_compaction_item_stands_for_everything_before_it(gateway, upstream, compacted, store):
    first, result = compacted
    window = [entry.model_dump(exclude_none=True, warnings=False) for entry in result.output]
    upstream.enqueue(fake.text("Madrid."), fake.text("Rome."))
    body = {"input": window + [{"role": "user", "content": "Go on."}], "store": store}
    if store:
        body["previous_response_id"] = first["id"]       # dropped: the compaction replaces the chain
    second = create(gateway, **body)
    asked = sent_texts(upstream)
    assert "Paris." not in asked and asked[-1] == "Go on."
    assert any(SUMMARY in text for text in asked) and asked[:2] == ["Capital of France?", "And Spain?"]
    if store:   # continuing later from storage starts at the compaction, not at the chain's root
        create(gateway, input="And Italy?", previous_response_id=second["id"])
        asked = sent_texts(upstream)
        assert "Paris." not in asked and any(SUMMARY in text for text in asked) and asked[-2:] == ["Madrid.", "And Italy?"]


def test_a_compaction_item_is_opened_over_websocket(gateway, upstream, compacted):
    _, result = compacted
    window = [entry.model_dump(exclude_none=True, warnings=False) for entry in result.output]
    upstream.enqueue(fake.text("Madrid."))
    with Socket(gateway) as ws:
        _, final = ws.completed(input=window + [{"role": "user", "content": "Go on."}], store=False)
    assert collect_text(final) == "Madrid." and any(SUMMARY in text for text in sent_texts(upstream))


@pytest.mark.parametrize("blob", ["not-a-sealed-blob", "reasoning"])
def test_a_compaction_item_the_gateway_cannot_open_is_a_400(gateway, upstream, blob):
    if blob == "reasoning":     # a real blob of this gateway, sealed for reasoning, is not a summary
        upstream.enqueue(fake.text("ok", reasoning="thinking"))
        made = create(gateway, input="q", include=["reasoning.encrypted_content"])
        blob = next(i for i in made["output"] if i["type"] == "reasoning")["encrypted_content"]
    calls = len(upstream.chat_requests())
    resp = requests.post(f"{gateway}/v1/responses", timeout=10, json={"model": MODEL, "input": [
        {"role": "user", "content": "hi"}, {"type": "compaction", "id": "cmp_x", "encrypted_content": blob}]})
    error = resp.json()["error"]
    assert resp.status_code == 400 and error["code"] == "invalid_compaction" and error["param"] == "input[1].encrypted_content"
    assert len(upstream.chat_requests()) == calls


def test_a_compaction_trigger_turn_outputs_exactly_one_compaction_item(gateway, upstream):
    upstream.enqueue(fake.text("Paris."), fake.text(SUMMARY), fake.text("Madrid."))
    first = create(gateway, input="Capital of France?")
    resp, events = post_stream(gateway, {"model": MODEL, "previous_response_id": first["id"],
                                         "input": [{"type": "compaction_trigger"}]})
    final = check_stream(events)
    assert resp.status_code == 200 and final["status"] == "completed"
    [item] = final["output"]
    assert item["type"] == "compaction" and item["encrypted_content"]
    assert any(e["type"] == "response.compaction.compacting" for e in events)
    assert not any(e["type"] == "response.output_text.delta" for e in events), "the summary is never shown"
    create(gateway, input="And Spain?", previous_response_id=final["id"])
    asked = sent_texts(upstream)
    assert "Paris." not in asked and any(SUMMARY in text for text in asked)


def test_a_compaction_trigger_that_is_not_last_is_a_400(gateway, upstream):
    resp = requests.post(f"{gateway}/v1/responses", timeout=10, json={"model": MODEL, "input": [
        {"type": "compaction_trigger"}, {"role": "user", "content": "hi"}]})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "input[0]"


def test_a_failed_summary_fails_the_compaction(gateway, upstream):
    upstream.enqueue(fake.drop_after(2))
    resp, events = post_stream(gateway, {"model": MODEL, "input": [{"role": "user", "content": "hi"},
                                                                   {"type": "compaction_trigger"}]})
    final = check_stream(events)
    assert final["status"] == "failed" and final["error"]["code"] == "server_error"


@pytest.mark.parametrize("body, param", [({"input": "hi"}, "model"), ({"model": MODEL}, "input")],
                         ids=["no-model", "nothing-to-compact"])
def test_a_bad_compact_request_is_a_400(gateway, upstream, body, param):
    resp = requests.post(f"{gateway}/v1/responses/compact", json=body, timeout=10)
    assert resp.status_code == 400 and resp.json()["error"]["param"] == param


def auto(threshold: int) -> list[dict]:
    return [{"type": "compaction", "compact_threshold": threshold}]


@pytest.mark.parametrize("tokenize", [True, False], ids=["upstream-count", "last-usage"])
def test_context_management_compacts_first_once_the_input_reaches_the_threshold(gateway, upstream, tokenize):
    upstream.tokenize = tokenize
    upstream.enqueue(fake.text("Paris is the capital of France, and a long answer it is."), fake.text(SUMMARY),
                     fake.text("Madrid."))
    first = create(gateway, input="Capital of France? Tell me at length.")
    resp, events = post_stream(gateway, {"model": MODEL, "previous_response_id": first["id"],
                                         "input": "And Spain?", "context_management": auto(5)})
    final = check_stream(events)
    assert resp.status_code == 200 and [i["type"] for i in final["output"]] == ["compaction", "message"]
    assert collect_text(final) == "Madrid."
    summary_call, answer_call = upstream.chat_requests()[-2:]
    assert "Context checkpoint" in summary_call["messages"][-1]["content"]
    answered = [m["content"] for m in answer_call["messages"]]
    assert answered[0] == "Capital of France? Tell me at length." and SUMMARY in answered[1]
    assert answered[-1] == "And Spain?" and not any("Paris is" in text for text in answered)


def test_context_management_below_the_threshold_just_answers(gateway, upstream):
    upstream.enqueue(fake.text("Paris."), fake.text("Madrid."))
    first = create(gateway, input="Capital of France?")
    second = create(gateway, previous_response_id=first["id"], input="And Spain?",
                    context_management=auto(100_000))
    assert [i["type"] for i in second["output"]] == ["message"] and len(upstream.chat_requests()) == 2
