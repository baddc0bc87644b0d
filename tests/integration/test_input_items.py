"""`GET /v1/responses/{id}/input_items`: the items used to generate a response (the chain's or the
conversation's first, then its own input), paged with `after`/`before`/`limit`/`order`, with the
fields `include` asks for; and assistant `phase` kept as sent."""
from __future__ import annotations

import pytest
import requests

from tests.fakes import upstream as fake

pytestmark = pytest.mark.integration
MODEL = "fake-model"


def create(gateway: str, **body) -> dict:
    resp = requests.post(f"{gateway}/v1/responses", json={"model": MODEL, **body}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def items(gateway: str, response_id: str, **params) -> dict:
    resp = requests.get(f"{gateway}/v1/responses/{response_id}/input_items", params=params, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def texts(page: dict) -> list[str]:
    return [part.get("text") for item in page["data"] for part in item.get("content") or []]


def test_a_continuation_lists_its_chain_first_then_its_own_input(gateway, upstream):
    upstream.enqueue(fake.text("one"), fake.text("two"), fake.text("three"))
    first = create(gateway, input="q1")
    second = create(gateway, input="q2", previous_response_id=first["id"])
    third = create(gateway, input="q3", previous_response_id=second["id"])
    page = items(gateway, third["id"], order="asc")
    assert texts(page) == ["q1", "one", "q2", "two", "q3"] and page["has_more"] is False
    newest = items(gateway, third["id"], limit=2)
    assert texts(newest) == ["q3", "two"] and newest["has_more"] is True
    between = items(gateway, third["id"], order="asc", after=page["data"][0]["id"], before=page["data"][4]["id"])
    assert texts(between) == ["one", "q2", "two"]


def test_a_conversation_turn_lists_the_conversation_before_it(gateway, upstream):
    conv = requests.post(f"{gateway}/v1/conversations", json={"items": [{"role": "user", "content": "c0"}]},
                         timeout=10).json()
    upstream.enqueue(fake.text("a0"), fake.text("a1"))
    create(gateway, input="t1", conversation=conv["id"])
    second = create(gateway, input="t2", conversation=conv["id"])
    assert texts(items(gateway, second["id"], order="asc")) == ["c0", "t1", "a0", "t2"]


def test_sealed_reasoning_is_listed_only_when_included(gateway, upstream):
    upstream.enqueue(fake.text("ok", reasoning="thinking"), fake.text("next"))
    first = create(gateway, input="q", include=["reasoning.encrypted_content"])
    reasoning = next(item for item in first["output"] if item["type"] == "reasoning")
    assert reasoning["encrypted_content"]
    second = create(gateway, input="more", previous_response_id=first["id"])
    listed = next(i for i in items(gateway, second["id"])["data"] if i["type"] == "reasoning")
    assert "encrypted_content" not in listed
    included = items(gateway, second["id"], **{"include[]": "reasoning.encrypted_content"})["data"]
    assert next(i for i in included if i["type"] == "reasoning")["encrypted_content"] == reasoning["encrypted_content"]


def test_an_unknown_include_is_a_400(gateway, upstream):
    upstream.enqueue(fake.text("ok"))
    created = create(gateway, input="q")
    resp = requests.get(f"{gateway}/v1/responses/{created['id']}/input_items", params={"include": "everything"},
                        timeout=10)
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "include"


def test_assistant_phase_is_accepted_and_kept(gateway, upstream):
    said = {"type": "message", "role": "assistant", "phase": "commentary",
            "content": [{"type": "output_text", "text": "Looking into it.", "annotations": []}]}
    upstream.enqueue(fake.text("done"))
    created = create(gateway, input=[{"role": "user", "content": "go"}, said])
    [_, listed] = items(gateway, created["id"], order="asc")["data"]
    assert listed["phase"] == "commentary"
    bad = requests.post(f"{gateway}/v1/responses", timeout=10, json={
        "model": MODEL, "input": [{**said, "phase": "thinking"}]})
    assert bad.status_code == 400 and "phase" in bad.json()["error"]["param"]


def test_an_item_reference_is_resolved_from_storage(gateway, upstream):
    upstream.enqueue(fake.text("The answer is 42."), fake.text("ok"))
    first = create(gateway, input="What is the answer?")
    [answer] = first["output"]
    second = create(gateway, input=[{"type": "item_reference", "id": answer["id"]},
                                    {"role": "user", "content": "Say it again."}])
    sent = upstream.chat_requests()[-1]["messages"]
    assert sent[:1] == [{"role": "assistant", "content": "The answer is 42."}]
    assert items(gateway, second["id"], order="asc", include="message.output_text.logprobs")["data"][0] == answer


def test_an_unknown_item_reference_is_a_400_naming_it(gateway, upstream):
    resp = requests.post(f"{gateway}/v1/responses", timeout=10, json={
        "model": MODEL, "input": [{"role": "user", "content": "hi"}, {"type": "item_reference", "id": "msg_nowhere"}]})
    error = resp.json()["error"]
    assert resp.status_code == 400 and "msg_nowhere" in error["message"] and error["param"] == "input[1].id"
    assert upstream.model_requests() == []
