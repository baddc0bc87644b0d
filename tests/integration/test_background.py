"""Background mode (responses-api.md §6.7) under gunicorn: a response runs independent of its
client, its events go to a log any worker or instance sharing the database replays and follows,
a cancel request made anywhere ends it within a second, and a worker killed mid-turn leaves it
failed. Every replayed stream goes through `check_stream`."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import time

import pytest
import requests

from tests.checks import check_stream, collect_text
from tests.fakes import upstream as fake
from tests.integration.test_websocket import Socket
from tests.reliability.test_lifecycle import slow, stored_response, workers_of
from tests.support import GunicornGateway, iter_sse, wait_for

pytestmark = pytest.mark.integration
MODEL = "fake-model"
BODY = {"model": MODEL, "input": "work in the background", "background": True}


def post(url: str, **body) -> requests.Response:
    return requests.post(f"{url}/v1/responses", json={**BODY, **body}, timeout=10)


def finished(url: str, response_id: str) -> dict:
    """The response once it ended (read again while no worker answers: one may have been killed)."""
    return wait_for(lambda: (r := stored_response(url, response_id)) and r["status"] not in ("queued", "in_progress")
                    and r)


def replay(url: str, response_id: str, after: int | None = None) -> list[dict]:
    params = {"stream": "true"} | ({"starting_after": after} if after is not None else {})
    resp = requests.get(f"{url}/v1/responses/{response_id}", params=params, stream=True, timeout=30)
    assert resp.status_code == 200, resp.text
    return list(iter_sse(resp))


@pytest.fixture
def two_workers(gunicorn_factory):
    return gunicorn_factory(GATEWAY_WORKERS="2")


def test_a_background_response_answers_queued_at_once_and_runs_to_the_end(two_workers, upstream):
    upstream.enqueue(fake.text("Done in the background.", delay_s=0.1))
    started = time.monotonic()
    queued = post(two_workers.url)
    assert queued.status_code == 200 and time.monotonic() - started < 1.0
    assert (queued.json()["status"], queued.json()["background"]) == ("queued", True)
    final = finished(two_workers.url, queued.json()["id"])     # read from whichever worker answers
    assert final["status"] == "completed" and collect_text(final) == "Done in the background."
    events = replay(two_workers.url, final["id"])
    assert events[0]["type"] == "response.queued" and check_stream(events) == final


def test_a_client_that_dropped_resumes_where_it_left_off(two_workers, upstream):
    content = "word " * 40
    upstream.enqueue(fake.text(content, delay_s=0.05))
    resp = requests.post(f"{two_workers.url}/v1/responses", json={**BODY, "stream": True}, stream=True, timeout=30)
    stream = iter_sse(resp)
    seen = [next(stream) for _ in range(6)]
    resp.close()                                   # the client goes away; the response goes on
    rest = replay(two_workers.url, seen[0]["response"]["id"], after=seen[-1]["sequence_number"])
    final = check_stream(seen + rest)
    assert final["status"] == "completed" and collect_text(final) == content
    assert finished(two_workers.url, final["id"])["status"] == "completed"


def test_a_cancel_made_on_another_instance_ends_the_upstream_within_a_second(gunicorn_factory, upstream, tmp_path):
    runner = gunicorn_factory()
    (tmp_path / "other").mkdir()
    other = GunicornGateway.for_upstream(upstream.base_url, tmp_path / "other",
                                         DATABASE_URL=runner.env["DATABASE_URL"]).start()
    try:
        upstream.enqueue(slow(pieces=200, delay_s=0.1))
        closed_before = len(upstream.closed_at)
        response_id = post(runner.url).json()["id"]
        wait_for(lambda: upstream.chat_requests())
        asked_at = time.monotonic()
        cancelled = requests.post(f"{other.url}/v1/responses/{response_id}/cancel", timeout=10).json()
        wait_for(lambda: len(upstream.closed_at) > closed_before, timeout_s=5)
        assert upstream.closed_at[closed_before] - asked_at < 1.0
        assert cancelled["status"] == "cancelled"
        events = replay(other.url, response_id)
        assert events[-1]["type"] == "response.incomplete" and check_stream(events)["status"] == "cancelled"
        again = requests.post(f"{other.url}/v1/responses/{response_id}/cancel", timeout=10).json()
        assert again == requests.get(f"{runner.url}/v1/responses/{response_id}", timeout=10).json() == cancelled
    finally:
        other.stop()


def test_cancel_is_for_background_responses_only(gateway, upstream):
    upstream.enqueue(fake.text("plain"))
    plain = requests.post(f"{gateway}/v1/responses", json={"model": MODEL, "input": "hi"}, timeout=10).json()
    refused = requests.post(f"{gateway}/v1/responses/{plain['id']}/cancel", timeout=10)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "not_background"
    assert requests.post(f"{gateway}/v1/responses/resp_nowhere/cancel", timeout=10).status_code == 404
    stream = requests.get(f"{gateway}/v1/responses/{plain['id']}", params={"stream": "true"}, timeout=10)
    assert stream.status_code == 400 and stream.json()["error"]["param"] == "stream"


def test_background_needs_store_and_plain_http(gateway, upstream, rpc_host):
    refused = post(gateway, store=False)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "background"
    with Socket(gateway) as ws:
        assert ws.error(**BODY)["status"] == 400
    events, result = rpc_host.run_call("bg", BODY)
    assert (events, result["status"]) == ([], 400)
    assert upstream.chat_requests() == []


def test_a_bad_starting_after_is_a_400(gateway, upstream):
    upstream.enqueue(fake.text("ok"))
    response_id = post(gateway).json()["id"]
    bad = requests.get(f"{gateway}/v1/responses/{response_id}", params={"stream": "true", "starting_after": "x"},
                       timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "starting_after"
    finished(gateway, response_id)


def test_a_background_response_whose_worker_was_killed_is_failed(gunicorn_factory, upstream, tmp_path):
    server = gunicorn_factory(WORKER_LEASE_S="3")
    upstream.enqueue(slow(pieces=200))
    response_id = post(server.url).json()["id"]
    wait_for(lambda: upstream.chat_requests())
    with sqlite3.connect(tmp_path / "gateway.db") as database:
        [(worker,)] = database.execute("SELECT worker FROM responses WHERE id = ?", (response_id,)).fetchall()
    pid = int(worker.split(":")[1])
    assert pid in workers_of(server.proc.pid)
    os.kill(pid, signal.SIGKILL)
    final = finished(server.url, response_id)      # the next worker's lease sweep marks it failed
    assert final["status"] == "failed" and "stopped before it finished" in final["error"]["message"]
    events = replay(server.url, response_id)
    assert events[-1]["type"] == "response.failed" and json.dumps(events[-1]["response"]["error"])


def test_background_responses_past_the_worker_limit_are_refused_429(gunicorn_factory, upstream):
    server = gunicorn_factory(BACKGROUND_MAX_RUNS="1")
    upstream.enqueue(slow(pieces=40, delay_s=0.05))
    running = post(server.url).json()["id"]
    refused = post(server.url)
    assert refused.status_code == 429 and "BACKGROUND_MAX_RUNS" in refused.json()["error"]["message"]
    assert finished(server.url, running)["status"] == "completed"
