"""Hydrating a chain costs a constant number of queries, whatever its depth (never one per ancestor)."""
from __future__ import annotations

import json
import time

import pytest

from storage.db import db
from storage.repository import StoredTurn
from tests.storage.builders import CREATED_AT

DEPTH = 500
PROBED = (1, 10, 100, 500)       # chain lengths at which load_parent is measured
MAX_QUERIES = 3
BUILD_BUDGET_S = 10.0


def turn_at(n: int) -> StoredTurn:
    """Turn n (0-based) of the chain: one input and one output item, a two-message fragment."""
    response_id = f"resp_{n:04d}"
    user = {"role": "user", "content": str(n)}
    assistant = {"role": "assistant", "content": f"answer {n}"}
    response = {"id": response_id, "object": "response", "created_at": CREATED_AT + n, "status": "completed",
                "model": "fake-model", "previous_response_id": f"resp_{n - 1:04d}" if n else None,
                "output": [{"id": f"msg_out_{n}", "type": "message", "role": "assistant", "status": "completed",
                            "content": [{"type": "output_text", "text": f"answer {n}", "annotations": []}]}]}
    return StoredTurn(response=response, request={"model": "fake-model"},
                      input_items=[{"id": f"msg_in_{n}", "type": "message", "role": "user",
                                    "content": [{"type": "input_text", "text": str(n)}]}],
                      chat_fragment=f"{json.dumps(user)},{json.dumps(assistant)}", fragment_version=2, depth=n)


@pytest.fixture
def deep_chain(database):
    """A chain of DEPTH responses saved one `save_response` at a time, as the gateway does."""
    started = time.perf_counter()
    turns = [turn_at(n) for n in range(DEPTH)]
    for turn in turns:
        database.save_response(turn)
    elapsed = time.perf_counter() - started
    assert elapsed < BUILD_BUDGET_S, f"saving {DEPTH} turns took {elapsed:.1f}s"
    return turns


def test_load_parent_costs_the_same_few_queries_at_any_depth(database, deep_chain, query_counter):
    counts = {}
    for length in PROBED:
        leaf = deep_chain[length - 1]
        with query_counter() as queries:
            parent = database.load_parent(leaf.response["id"])
        counts[length] = queries.count
        assert parent.depth == length - 1
        assert [f.response_id for f in parent.fragments] == [t.response["id"] for t in deep_chain[:length]]
    assert len(set(counts.values())) == 1, f"query count depends on depth: {counts}"
    assert counts[DEPTH] <= MAX_QUERIES, counts


def test_deepest_chain_hydrates_all_fragments_in_order(database, deep_chain):
    parent = database.load_parent(deep_chain[-1].response["id"])
    assert len(parent.fragments) == DEPTH
    assert [f[:3] for f in parent.fragments] == [(t.response["id"], t.chat_fragment, t.fragment_version) for t in deep_chain]
    assert parent.fragments[0][1] == '{"role": "user", "content": "0"},{"role": "assistant", "content": "answer 0"}'


def test_chain_items_is_one_query_at_any_depth(database, deep_chain, query_counter):
    counts = {}
    for length in PROBED:
        with query_counter() as queries:
            grouped = database.chain_items(deep_chain[length - 1].response["id"])
        counts[length] = queries.count
        assert len(grouped) == length
    assert set(counts.values()) == {1}, counts
    assert grouped[deep_chain[-1].response["id"]] == deep_chain[-1].input_items + deep_chain[-1].response["output"]


def test_query_counter_counts_statements_not_transaction_control(database, query_counter):
    database.save_response(turn_at(0))
    with query_counter() as queries:
        database.delete_response(turn_at(0).response["id"])   # one transaction, several statements
    assert queries.count >= 2, queries.statements
    assert not any(s.upper().startswith(("BEGIN", "COMMIT")) for s in queries.statements)
    with query_counter() as queries:
        with db.connection_context():
            db.execute_sql("SELECT 1")
    assert queries.statements == ["SELECT 1"]
