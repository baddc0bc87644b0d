"""The Conversations API surface: CRUD, items, paging, errors."""
from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.integration


@pytest.fixture
def conv(gateway):
    body = {"items": [{"role": "user", "content": f"c{i}"} for i in range(3)], "metadata": {"a": "1"}}
    return requests.post(f"{gateway}/v1/conversations", json=body, timeout=10).json()


def test_create_returns_a_conversation_object(conv):
    assert conv["id"].startswith("conv_") and conv["object"] == "conversation"
    assert isinstance(conv["created_at"], int) and conv["metadata"] == {"a": "1"}


def test_create_without_body(gateway):
    resp = requests.post(f"{gateway}/v1/conversations", timeout=10)
    assert resp.status_code == 200 and resp.json()["metadata"] == {}


def test_get_update_and_delete(gateway, conv):
    url = f"{gateway}/v1/conversations/{conv['id']}"
    assert requests.get(url, timeout=10).json() == conv
    updated = requests.post(url, json={"metadata": {"b": "2"}}, timeout=10).json()
    assert updated["metadata"] == {"b": "2"}
    assert requests.delete(url, timeout=10).json() == {"id": conv["id"], "object": "conversation.deleted",
                                                       "deleted": True}
    assert requests.get(url, timeout=10).status_code == 404
    assert requests.get(f"{url}/items", timeout=10).status_code == 404


def test_items_are_added_listed_and_paged(gateway, conv):
    url = f"{gateway}/v1/conversations/{conv['id']}/items"
    added = requests.post(url, json={"items": [{"role": "assistant", "content": "c3"}]}, timeout=10).json()
    assert added["object"] == "list" and added["data"][0]["content"][0]["type"] == "output_text"
    newest = requests.get(url, params={"limit": 2}, timeout=10).json()
    assert [i["content"][0]["text"] for i in newest["data"]] == ["c3", "c2"] and newest["has_more"]
    older = requests.get(url, params={"limit": 2, "after": newest["last_id"]}, timeout=10).json()
    assert [i["content"][0]["text"] for i in older["data"]] == ["c1", "c0"] and not older["has_more"]


def test_single_item_get_and_delete(gateway, conv):
    url = f"{gateway}/v1/conversations/{conv['id']}/items"
    first = requests.get(url, params={"order": "asc"}, timeout=10).json()["data"][0]
    assert requests.get(f"{url}/{first['id']}", timeout=10).json() == first
    after_delete = requests.delete(f"{url}/{first['id']}", timeout=10).json()
    assert after_delete["id"] == conv["id"] and after_delete["object"] == "conversation"
    assert requests.get(f"{url}/{first['id']}", timeout=10).status_code == 404
    assert requests.delete(f"{url}/{first['id']}", timeout=10).status_code == 404


def test_more_than_20_items_is_400(gateway):
    body = {"items": [{"role": "user", "content": "x"}] * 21}
    resp = requests.post(f"{gateway}/v1/conversations", json=body, timeout=10)
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "items"


def test_invalid_item_names_the_field(gateway, conv):
    resp = requests.post(f"{gateway}/v1/conversations/{conv['id']}/items", timeout=10,
                         json={"items": [{"type": "function_call_output", "output": "x"}]})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "items[0].call_id"


def test_unknown_conversation_routes_are_404(gateway):
    base = f"{gateway}/v1/conversations/conv_nope"
    for method, url in (("get", base), ("delete", base), ("get", f"{base}/items"),
                        ("get", f"{base}/items/msg_x"), ("delete", f"{base}/items/msg_x")):
        resp = getattr(requests, method)(url, timeout=10)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    resp = requests.post(f"{base}/items", json={"items": [{"role": "user", "content": "x"}]}, timeout=10)
    assert resp.status_code == 404
