"""PostgreSQL ends every gateway connection mid-load (`pg_terminate_backend`, as a restart or a
failover does): requests meanwhile fail cleanly (a failed stream or a 503, never a hang or a 500),
the gateway keeps serving, and requests after it succeed again."""
from __future__ import annotations

import threading
import time
import uuid

import psycopg2
import pytest
import requests

from tests.storage.conftest import postgres_url  # noqa: F401  (the PostgreSQL schema fixture)
from tests.support import post_stream

pytestmark = pytest.mark.integration
MODEL = "fake-model"


def terminate(url: str, application: str) -> int:
    with psycopg2.connect(url) as admin, admin.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                       (application,))
        return cursor.fetchone()[0]


def test_terminated_backends_are_survived(gunicorn_factory, upstream, postgres_url):  # noqa: F811
    application = f"gateway-outage-{uuid.uuid4().hex[:8]}"
    url = f"{postgres_url}&application_name={application}"
    server = gunicorn_factory(DATABASE_URL=url, GATEWAY_WORKERS="2")
    outcomes: list[tuple[float, str]] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        index = 0
        while not stop.is_set():
            index += 1
            resp, events = post_stream(server.url, {"model": MODEL, "input": f"w{worker} #{index}"})
            if resp.status_code != 200:
                outcomes.append((time.monotonic(), f"http {resp.status_code} {resp.json()['error']['code']}"))
                continue
            final = events[-1]["response"]
            if final["status"] != "completed":
                outcomes.append((time.monotonic(), f"failed {final['error']['code']}"))
                continue
            got = requests.get(f"{server.url}/v1/responses/{final['id']}", timeout=10)
            outcomes.append((time.monotonic(), "ok" if got.status_code == 200 else f"get {got.status_code}"))

    threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(outcomes) < 30:
        assert time.monotonic() < deadline, "no load"
        time.sleep(0.05)
    assert terminate(postgres_url, application) > 0
    cut_at = time.monotonic()
    while len([o for at, o in outcomes if at > cut_at + 2]) < 60:
        assert time.monotonic() < deadline + 20, "the gateway stopped answering after the outage"
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(15)

    assert all(o == "ok" or o.startswith(("failed server_error", "http 503", "get 503")) for _, o in outcomes), \
        sorted({o for _, o in outcomes})
    after = [o for at, o in outcomes if at > cut_at + 2]
    assert after and all(o == "ok" for o in after), sorted(set(after))
    assert requests.get(f"{server.url}/ready", timeout=10).status_code == 200
