"""Soak: 200 chains × 5 stored turns at concurrency 16 over SSE, with 5 % of upstream answers
failing (drops, 5xx, stalls). A failed turn is retried from the same parent, as Codex retries.
Nothing may be lost or corrupted: every failure the client saw is a stored `failed` response and
matches a fault the upstream injected, every completed turn is stored as it was streamed, and
every turn reached the upstream with exactly its chain's history.
"""
from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fakes import upstream as fake
from tests.support import post_stream

pytestmark = pytest.mark.integration
CHAINS, TURNS, CONCURRENCY, FAULT_RATE = 200, 5, 16, 0.05
ATTEMPTS = 6
DEADLINE_S = 240
MODEL = "fake-model"


def said(chain: int, turn: int) -> str:
    return f"chain {chain} turn {turn}"


def run_chain(url: str, chain: int) -> dict:
    """Returns the completed response ids in order and the ids of failed attempts."""
    completed, failed, parent = [], [], None
    for turn in range(TURNS):
        for _ in range(ATTEMPTS):
            body = {"model": MODEL, "input": said(chain, turn), "previous_response_id": parent}
            resp, events = post_stream(url, body)
            assert resp.status_code == 200, resp.text
            final = events[-1]
            assert final["type"] in ("response.completed", "response.failed"), final["type"]
            if final["type"] == "response.completed":
                text = final["response"]["output"][-1]["content"][0]["text"]
                completed.append((final["response"]["id"], text))
                parent = final["response"]["id"]
                break
            failed.append(final["response"]["id"])
        else:
            raise AssertionError(f"chain {chain} turn {turn} failed {ATTEMPTS} times")
    return {"completed": completed, "failed": failed}


def test_soak_loses_and_corrupts_nothing(gunicorn_factory, upstream, tmp_path):
    server = gunicorn_factory(GATEWAY_WORKERS="2", UPSTREAM_TIMEOUT_S="2,1")
    upstream.inject_faults(FAULT_RATE, [fake.drop_after(2), fake.http_error(500, "flaky"),
                                        fake.stall_after(1, seconds=3)], seed=7)
    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(lambda chain: run_chain(server.url, chain), range(CHAINS)))
    assert time.monotonic() - started < DEADLINE_S

    failed_ids = [rid for result in results for rid in result["failed"]]
    assert len(failed_ids) == upstream.faults_injected > 0, "every injected fault, and only those, failed a turn"
    with sqlite3.connect(tmp_path / "gateway.db") as database:
        rows = dict(database.execute("SELECT id, status FROM responses").fetchall())
    assert all(rows[rid] == "failed" for rid in failed_ids)
    completed = [(rid, text) for result in results for rid, text in result["completed"]]
    assert len(completed) == CHAINS * TURNS and all(rows[rid] == "completed" for rid, _ in completed)
    assert len(rows) == len(completed) + len(failed_ids), "nothing stored twice, nothing missing"

    # Each completed turn went upstream with exactly its chain's history, failed attempts left out.
    by_last = {}
    for request in upstream.chat_requests():
        by_last.setdefault(request["messages"][-1]["content"], []).append(request["messages"])
    for chain, result in enumerate(results):
        history: list[dict] = []
        for turn, (_, text) in enumerate(result["completed"]):
            history.append({"role": "user", "content": said(chain, turn)})
            assert history in by_last[said(chain, turn)], f"chain {chain} turn {turn} was sent another history"
            assert text == f"You said: {said(chain, turn)}"
            history = history + [{"role": "assistant", "content": text}]
