"""Stored responses and previous_response_id chains, end to end through gunicorn.

Each test asserts, from the fake upstream's request log, exactly which messages went upstream.
"""
from __future__ import annotations


import pytest
import requests

from tests.checks import check_stream, validate_response
from tests.fakes import upstream as fake
from tests.support import post_stream

pytestmark = pytest.mark.integration
WEATHER = {"type": "function", "name": "get_weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def create(url, **body):
    body.setdefault("model", "fake-model")
    resp = requests.post(f"{url}/v1/responses", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    validate_response(resp.json())
    return resp.json()


def sent_messages(upstream, turn):
    return upstream.chat_requests()[turn]["messages"]


def test_three_turn_chain_with_a_tool_call_in_the_middle(gateway, upstream):
    upstream.enqueue(fake.text("Hello!"),
                     fake.tool_calls([{"name": "get_weather", "arguments": {"city": "Paris"}}]),
                     fake.text("It is sunny in Paris."))
    first = create(gateway, input="hi", instructions="Be brief.", tools=[WEATHER])
    second = create(gateway, input="weather in Paris?", previous_response_id=first["id"])
    call = second["output"][0]
    assert call["type"] == "function_call"
    third = create(gateway, previous_response_id=second["id"], input=[
        {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}])

    assert sent_messages(upstream, 0) == [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "hi"}]
    assert sent_messages(upstream, 1) == [{"role": "user", "content": "hi"},
                                          {"role": "assistant", "content": "Hello!"},
                                          {"role": "user", "content": "weather in Paris?"}]
    assert sent_messages(upstream, 2) == sent_messages(upstream, 1) + [
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": call["call_id"], "type": "function",
            "function": {"name": "get_weather", "arguments": call["arguments"]}}]},
        {"role": "tool", "tool_call_id": call["call_id"], "content": "sunny"}]
    assert third["previous_response_id"] == second["id"]
    assert third["output"][0]["content"][0]["text"] == "It is sunny in Paris."


def test_two_children_branch_from_one_parent(gateway, upstream):
    upstream.enqueue(fake.text("root answer"), fake.text("left"), fake.text("right"))
    root = create(gateway, input="root")
    create(gateway, input="go left", previous_response_id=root["id"])
    create(gateway, input="go right", previous_response_id=root["id"])
    prefix = [{"role": "user", "content": "root"}, {"role": "assistant", "content": "root answer"}]
    assert sent_messages(upstream, 1) == prefix + [{"role": "user", "content": "go left"}]
    assert sent_messages(upstream, 2) == prefix + [{"role": "user", "content": "go right"}]


def test_continuation_after_deleting_an_ancestor(gateway, upstream):
    upstream.enqueue(fake.text("a1"), fake.text("a2"), fake.text("a3"))
    first = create(gateway, input="q1")
    second = create(gateway, input="q2", previous_response_id=first["id"])
    deleted = requests.delete(f"{gateway}/v1/responses/{first['id']}", timeout=10)
    assert deleted.json() == {"id": first["id"], "object": "response", "deleted": True}
    assert requests.get(f"{gateway}/v1/responses/{first['id']}", timeout=10).status_code == 404
    create(gateway, input="q3", previous_response_id=second["id"])
    assert [m["content"] for m in sent_messages(upstream, 2)] == ["q1", "a1", "q2", "a2", "q3"]


def test_deleted_response_cannot_be_continued(gateway, upstream):
    upstream.enqueue(fake.text("a1"))
    first = create(gateway, input="q1")
    requests.delete(f"{gateway}/v1/responses/{first['id']}", timeout=10)
    resp = requests.post(f"{gateway}/v1/responses", timeout=10, json={
        "model": "fake-model", "input": "q2", "previous_response_id": first["id"]})
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "previous_response_not_found"


def test_instructions_are_not_inherited(gateway, upstream):
    upstream.enqueue(fake.text("a1"), fake.text("a2"), fake.text("a3"))
    first = create(gateway, input="q1", instructions="Speak like a pirate.")
    second = create(gateway, input="q2", previous_response_id=first["id"])
    create(gateway, input="q3", previous_response_id=second["id"], instructions="Speak plainly.")
    assert second["instructions"] is None
    assert all(m["role"] != "system" for m in sent_messages(upstream, 1))
    assert sent_messages(upstream, 2)[0] == {"role": "system", "content": "Speak plainly."}
    assert [m["role"] for m in sent_messages(upstream, 2)].count("system") == 1


def test_tools_are_inherited_unless_overridden(gateway, upstream):
    other = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}
    upstream.enqueue(fake.text("a1"), fake.text("a2"), fake.text("a3"))
    first = create(gateway, input="q1", tools=[WEATHER, {"type": "web_search"}], tool_choice="required")
    second = create(gateway, input="q2", previous_response_id=first["id"])
    third = create(gateway, input="q3", previous_response_id=second["id"], tools=[other])
    inherited, overridden = upstream.chat_requests()[1], upstream.chat_requests()[2]
    assert [t["function"]["name"] for t in inherited["tools"]] == ["get_weather"]
    assert inherited["tool_choice"] == "required"
    assert [t["function"]["name"] for t in overridden["tools"]] == ["get_time"]
    assert second["tools"][1] == {"type": "web_search"}, "unknown tool types are stored and echoed raw"
    assert [t["name"] for t in third["tools"]] == ["get_time"]


def test_unknown_previous_response_id_is_400(gateway):
    resp = requests.post(f"{gateway}/v1/responses", timeout=10, json={
        "model": "fake-model", "input": "x", "previous_response_id": "resp_doesnotexist"})
    assert resp.status_code == 400
    assert resp.json()["error"] == {"message": "Previous response with id 'resp_doesnotexist' not found.",
                                    "type": "invalid_request_error", "param": "previous_response_id",
                                    "code": "previous_response_not_found"}


def test_missing_tool_output_names_the_call(gateway, upstream):
    upstream.enqueue(fake.tool_calls([{"name": "get_weather", "arguments": {"city": "Oslo"}}]))
    first = create(gateway, input="weather?", tools=[WEATHER])
    resp = requests.post(f"{gateway}/v1/responses", timeout=10, json={
        "model": "fake-model", "input": "never mind", "previous_response_id": first["id"]})
    assert resp.status_code == 400
    assert first["output"][0]["call_id"] in resp.json()["error"]["message"]
    assert resp.json()["error"]["param"] == "input"


def test_get_and_delete_unknown_ids_are_404(gateway):
    assert requests.get(f"{gateway}/v1/responses/resp_nope", timeout=10).status_code == 404
    assert requests.delete(f"{gateway}/v1/responses/resp_nope", timeout=10).status_code == 404
    assert requests.get(f"{gateway}/v1/responses/resp_nope/input_items", timeout=10).status_code == 404


def test_store_false_is_not_persisted_but_may_continue_a_stored_chain(gateway, upstream):
    upstream.enqueue(fake.text("stored"), fake.text("ephemeral"))
    stored = create(gateway, input="q1")
    ephemeral = create(gateway, input="q2", previous_response_id=stored["id"], store=False)
    assert ephemeral["store"] is False
    assert [m["content"] for m in sent_messages(upstream, 1)] == ["q1", "stored", "q2"]
    assert requests.get(f"{gateway}/v1/responses/{ephemeral['id']}", timeout=10).status_code == 404
    resp = requests.post(f"{gateway}/v1/responses", timeout=10, json={
        "model": "fake-model", "input": "q3", "previous_response_id": ephemeral["id"]})
    assert resp.json()["error"]["code"] == "previous_response_not_found"


def test_streamed_response_is_stored_before_its_terminal_event(gateway, upstream):
    upstream.enqueue(fake.text("streamed"), fake.text("follow-up"))
    resp = requests.post(f"{gateway}/v1/responses", json={"model": "fake-model", "input": "q1", "stream": True},
                         stream=True, timeout=30)
    from tests.support import iter_sse
    for event in iter_sse(resp):
        if event["type"] == "response.completed":
            # The stream is still open: the follow-up must already find the stored response.
            follow = create(gateway, input="q2", previous_response_id=event["response"]["id"])
            assert follow["status"] == "completed"
            break
    resp.close()
    stored = requests.get(f"{gateway}/v1/responses/{follow['previous_response_id']}", timeout=10).json()
    assert stored["output"][0]["content"][0]["text"] == "streamed"


def test_failed_and_incomplete_responses_are_stored_with_their_error(gateway, upstream):
    upstream.enqueue(fake.stream_error("boom", after=2), fake.length("cut"))
    _, events = post_stream(gateway, {"model": "fake-model", "input": "q"})
    failed = check_stream(events)
    stored = requests.get(f"{gateway}/v1/responses/{failed['id']}", timeout=10).json()
    assert stored["status"] == "failed" and stored["error"]["code"] == "server_error"
    incomplete = create(gateway, input="q", max_output_tokens=2)
    stored = requests.get(f"{gateway}/v1/responses/{incomplete['id']}", timeout=10).json()
    assert stored["status"] == "incomplete"
    assert stored["incomplete_details"] == {"reason": "max_output_tokens"}


def test_get_returns_the_stored_response_exactly(gateway, upstream):
    upstream.enqueue(fake.text("exact", reasoning="why"))
    created = create(gateway, input="q", metadata={"k": "v"})
    assert requests.get(f"{gateway}/v1/responses/{created['id']}", timeout=10).json() == created


def test_input_items_are_listed_with_ids_and_paging(gateway, upstream):
    upstream.enqueue(fake.text("ok"))
    created = create(gateway, input=[{"role": "user", "content": f"m{i}"} for i in range(5)])
    base = f"{gateway}/v1/responses/{created['id']}/input_items"
    newest_first = requests.get(base, timeout=10).json()
    assert [i["content"][0]["text"] for i in newest_first["data"]] == ["m4", "m3", "m2", "m1", "m0"]
    assert all(i["id"].startswith("msg_") for i in newest_first["data"])
    page = requests.get(base, params={"order": "asc", "limit": 2}, timeout=10).json()
    assert [i["content"][0]["text"] for i in page["data"]] == ["m0", "m1"] and page["has_more"] is True
    nxt = requests.get(base, params={"order": "asc", "limit": 2, "after": page["last_id"]}, timeout=10).json()
    assert [i["content"][0]["text"] for i in nxt["data"]] == ["m2", "m3"]
    assert nxt["first_id"] == nxt["data"][0]["id"]
    bad = requests.get(base, params={"limit": 101}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"


def test_replayed_client_item_ids_are_kept(gateway, upstream):
    upstream.enqueue(fake.text("ok"))
    item = {"type": "message", "id": "msg_client_1", "role": "user", "content": [{"type": "input_text", "text": "x"}]}
    created = create(gateway, input=[item])
    listed = requests.get(f"{gateway}/v1/responses/{created['id']}/input_items", timeout=10).json()
    assert listed["data"] == [item]


def test_conversation_items_are_prepended_and_the_turn_appended(gateway, upstream):
    conv = requests.post(f"{gateway}/v1/conversations", timeout=10, json={
        "items": [{"role": "user", "content": "My number is 42."}], "metadata": {"topic": "numbers"}}).json()
    assert conv["object"] == "conversation" and conv["metadata"] == {"topic": "numbers"}
    upstream.enqueue(fake.text("Noted."), fake.text("42."))
    first = create(gateway, input="Remember it.", conversation=conv["id"])
    assert first["conversation"] == {"id": conv["id"]}
    create(gateway, input="What is my number?", conversation={"id": conv["id"]})
    assert [m["content"] for m in sent_messages(upstream, 1)] == [
        "My number is 42.", "Remember it.", "Noted.", "What is my number?"]
    items = requests.get(f"{gateway}/v1/conversations/{conv['id']}/items", params={"order": "asc"}, timeout=10).json()
    texts = [i["content"][0]["text"] for i in items["data"]]
    assert texts == ["My number is 42.", "Remember it.", "Noted.", "What is my number?", "42."]


def test_conversation_and_previous_response_id_together_is_400(gateway, upstream):
    upstream.enqueue(fake.text("a"))
    first = create(gateway, input="q")
    conv = requests.post(f"{gateway}/v1/conversations", json={}, timeout=10).json()
    resp = requests.post(f"{gateway}/v1/responses", timeout=10, json={
        "model": "fake-model", "input": "x", "previous_response_id": first["id"], "conversation": conv["id"]})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "conversation"


def test_unknown_conversation_is_404(gateway):
    resp = requests.post(f"{gateway}/v1/responses", timeout=10, json={
        "model": "fake-model", "input": "x", "conversation": "conv_nope"})
    assert resp.status_code == 404 and resp.json()["error"]["param"] == "conversation"
