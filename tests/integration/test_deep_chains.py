"""Deep chains through the gateway: checkpoints keep hydration short without changing history."""
from __future__ import annotations

import pytest
import requests

from gateway.history import CHECKPOINT_EVERY
from storage.db import connect_database, db
from storage.repository import Repository
from tests.integration.test_websocket import Socket
from tests.storage.conftest import count_queries

pytestmark = pytest.mark.integration
DEPTH = 2 * CHECKPOINT_EVERY + 5


@pytest.fixture
def deep_gateway(make_gateway, upstream, tmp_path):
    url = make_gateway(llm_api_base=upstream.base_url, database_url=f"sqlite:///{tmp_path / 'deep.db'}")
    return url, tmp_path / "deep.db"


def build_chain(url: str, depth: int) -> list[str]:
    ids, previous = [], None
    session = requests.Session()
    for level in range(depth):
        resp = session.post(f"{url}/v1/responses", timeout=30, json={
            "model": "fake-model", "input": f"level {level}", "previous_response_id": previous})
        assert resp.status_code == 200, resp.text
        previous = resp.json()["id"]
        ids.append(previous)
    return ids


def test_deep_chain_sends_the_exact_history_upstream(deep_gateway, upstream):
    url, _ = deep_gateway
    build_chain(url, DEPTH)
    last = upstream.chat_requests()[-1]["messages"]
    expected = []
    for level in range(DEPTH - 1):
        expected += [{"role": "user", "content": f"level {level}"},
                     {"role": "assistant", "content": f"You said: level {level}"}]
    assert last == expected + [{"role": "user", "content": f"level {DEPTH - 1}"}]


def test_checkpoints_shorten_the_chain_walk(deep_gateway, upstream):
    url, path = deep_gateway
    ids = build_chain(url, DEPTH)
    db.initialize(connect_database(f"sqlite:///{path}"))
    parent = Repository().load_parent(ids[-1])
    # Walk: the leaf's levels below the last checkpoint one by one, then one row per checkpoint.
    assert len(parent.fragments) == DEPTH % CHECKPOINT_EVERY + DEPTH // CHECKPOINT_EVERY
    assert sum(f.segment for f in parent.fragments) == DEPTH // CHECKPOINT_EVERY


def test_branch_from_inside_a_checkpoint_span_keeps_its_own_history(deep_gateway, upstream):
    url, _ = deep_gateway
    ids = build_chain(url, CHECKPOINT_EVERY + 3)
    middle = CHECKPOINT_EVERY - 5
    resp = requests.post(f"{url}/v1/responses", timeout=30, json={
        "model": "fake-model", "input": "branch", "previous_response_id": ids[middle]})
    assert resp.status_code == 200
    contents = [m["content"] for m in upstream.chat_requests()[-1]["messages"]]
    assert contents[-1] == "branch" and contents[-3] == f"level {middle}"
    assert len(contents) == 2 * (middle + 1) + 1


def test_a_chain_stored_over_one_websocket_keeps_checkpoints_and_constant_cost(make_gateway, upstream, tmp_path):
    """The connection's cache serves each turn's parent, yet the stored chain gets the checkpoints
    an HTTP chain gets, so continuing it later from storage walks a few rows in a few queries."""
    path = tmp_path / "ws.db"
    url = make_gateway(llm_api_base=upstream.base_url, database_url=f"sqlite:///{path}")
    depth, previous = 200, None
    with Socket(url) as ws:
        for level in range(depth):
            _, final = ws.completed(input=f"level {level}", previous_response_id=previous)
            previous = final["id"]
    db.initialize(connect_database(f"sqlite:///{path}"))
    with count_queries() as queries:
        parent = Repository().load_parent(previous)
    assert queries.count <= 3
    assert sum(f.segment for f in parent.fragments) == depth // CHECKPOINT_EVERY
    assert len(parent.fragments) == depth % CHECKPOINT_EVERY + depth // CHECKPOINT_EVERY
    resp = requests.post(f"{url}/v1/responses", timeout=30, json={
        "model": "fake-model", "input": "from storage", "previous_response_id": previous})
    assert resp.status_code == 200
    sent = upstream.chat_requests()[-1]["messages"]
    assert len(sent) == 2 * depth + 1 and sent[0]["content"] == "level 0" and sent[-3]["content"] == "level 199"
