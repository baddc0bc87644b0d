"""Each API key acts as its tenant: another tenant's responses, chains and conversations do not
exist for it (404, or `previous_response_not_found`), over HTTP and WebSocket, while keys of the
same tenant share everything."""
from __future__ import annotations

import signal

import pytest
import requests

from tests.fakes import upstream as fake
from tests.integration.test_websocket import MODEL, Socket, not_found_frame
from tests.support import GunicornGateway, wait_for

pytestmark = pytest.mark.integration
ACME, ACME_TOO, GLOBEX = "k-acme-1", "k-acme-2", "k-globex"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def gateway(make_gateway, upstream, tmp_path) -> str:
    keys = tmp_path / "keys"
    keys.write_text(f"acme: {ACME}\nacme: {ACME_TOO}\nglobex: {GLOBEX}\n")
    return make_gateway(llm_api_base=upstream.base_url, api_keys_file=str(keys))


@pytest.fixture
def stored(gateway, upstream) -> dict:
    """A stored response and a conversation of tenant acme."""
    upstream.enqueue(fake.text("acme's answer"))
    response = requests.post(f"{gateway}/v1/responses", headers=auth(ACME), timeout=10,
                             json={"model": MODEL, "input": "acme's question"}).json()
    conversation = requests.post(f"{gateway}/v1/conversations", headers=auth(ACME), timeout=10,
                                 json={"items": [{"role": "user", "content": "acme's note"}]}).json()
    return {"response": response["id"], "conversation": conversation["id"]}


def call(gateway: str, key: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{gateway}{path}", headers=auth(key), timeout=10, **kwargs)


def test_another_tenant_cannot_read_list_or_delete_a_response(gateway, stored):
    rid = stored["response"]
    for method, path in (("GET", f"/v1/responses/{rid}"), ("GET", f"/v1/responses/{rid}/input_items"),
                         ("DELETE", f"/v1/responses/{rid}")):
        answer = call(gateway, GLOBEX, method, path)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "not_found"
    assert call(gateway, ACME, "GET", f"/v1/responses/{rid}").json()["output"][0]["content"][0]["text"] == "acme's answer"


def test_another_tenant_cannot_continue_a_chain(gateway, upstream, stored):
    answer = call(gateway, GLOBEX, "POST", "/v1/responses",
                  json={"model": MODEL, "input": "more", "previous_response_id": stored["response"]})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "previous_response_not_found"
    assert len(upstream.chat_requests()) == 1        # acme's own turn only


def test_another_tenant_cannot_continue_a_chain_over_websocket(gateway, upstream, stored):
    with Socket(gateway, headers=auth(GLOBEX)) as ws:
        assert ws.error(model=MODEL, input="more", previous_response_id=stored["response"]) == \
            not_found_frame(stored["response"])


def test_another_tenant_cannot_reference_an_item(gateway, upstream, stored):
    item_id = call(gateway, ACME, "GET", f"/v1/responses/{stored['response']}").json()["output"][0]["id"]
    reference = {"model": MODEL, "input": [{"type": "item_reference", "id": item_id}]}
    answer = call(gateway, GLOBEX, "POST", "/v1/responses", json=reference)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "item_not_found"
    upstream.enqueue(fake.text("resolved"))
    assert call(gateway, ACME_TOO, "POST", "/v1/responses", json=reference).status_code == 200


def test_another_tenant_cannot_reach_a_conversation(gateway, upstream, stored):
    cid = stored["conversation"]
    for method, path, body in (("GET", f"/v1/conversations/{cid}", None),
                               ("POST", f"/v1/conversations/{cid}", {"metadata": {"x": "y"}}),
                               ("GET", f"/v1/conversations/{cid}/items", None),
                               ("POST", f"/v1/conversations/{cid}/items", {"items": [{"role": "user", "content": "x"}]}),
                               ("DELETE", f"/v1/conversations/{cid}", None),
                               ("POST", "/v1/responses", {"model": MODEL, "input": "hi", "conversation": cid})):
        answer = call(gateway, GLOBEX, method, path, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
    items = call(gateway, ACME, "GET", f"/v1/conversations/{cid}/items").json()["data"]
    assert [item["content"][0]["text"] for item in items] == ["acme's note"]


def test_keys_of_one_tenant_share_its_responses(gateway, upstream, stored):
    upstream.enqueue(fake.text("continued"))
    answer = call(gateway, ACME_TOO, "POST", "/v1/responses",
                  json={"model": MODEL, "input": "more", "previous_response_id": stored["response"]})
    assert answer.status_code == 200, answer.text
    assert call(gateway, ACME_TOO, "DELETE", f"/v1/responses/{stored['response']}").status_code == 200


def test_without_keys_every_client_is_the_one_open_tenant(make_gateway, upstream):
    url = make_gateway(llm_api_base=upstream.base_url)
    upstream.enqueue(fake.text("open"))
    rid = requests.post(f"{url}/v1/responses", json={"model": MODEL, "input": "q"}, timeout=10).json()["id"]
    assert requests.get(f"{url}/v1/responses/{rid}", headers=auth("anything"), timeout=10).status_code == 200


def test_the_keys_file_is_read_again_on_sighup_and_a_broken_one_keeps_the_old_keys(fake_upstream, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f"acme: {ACME}\n")
    server = GunicornGateway.for_upstream(fake_upstream.base_url, tmp_path, GATEWAY_API_KEYS_FILE=str(keys),
                                          LOG_LEVEL="INFO").start()

    def status(key: str) -> int:
        return requests.get(f"{server.url}/v1/models", headers=auth(key), timeout=5).status_code

    def booted() -> int:
        return server.log_text().count("Booting worker")

    try:
        assert (status(ACME), status(GLOBEX)) == (200, 401)
        keys.write_text(f"acme: {ACME}\nglobex: {GLOBEX}\n")
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: status(GLOBEX) == 200)
        keys.write_text("globex k-without-a-colon\n")
        workers = booted()
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "keeping the API keys read before" in server.log_text() and booted() > workers)
        wait_for(lambda: "Worker exiting" in server.log_text())
        assert server.proc.poll() is None
        assert (status(ACME), status(GLOBEX)) == (200, 200)
    finally:
        server.stop()
