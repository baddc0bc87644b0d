"""RESPONSE_TTL_DAYS as users run it: a worker purges old responses in the background while
recent ones, and the API, carry on."""
from __future__ import annotations

import sqlite3
import time

import pytest
import requests

from tests.fakes import upstream as fake

pytestmark = pytest.mark.integration
MODEL = "fake-model"


def create(url: str, text: str) -> str:
    return requests.post(f"{url}/v1/responses", json={"model": MODEL, "input": text}, timeout=10).json()["id"]


def test_old_responses_are_purged_in_the_background(gunicorn_factory, upstream, tmp_path):
    server = gunicorn_factory(RESPONSE_TTL_DAYS="1", RETENTION_INTERVAL_S="1", WORKER_LEASE_S="3")
    upstream.enqueue(fake.text("old"), fake.text("new"))
    old, new = create(server.url, "old one"), create(server.url, "new one")
    with sqlite3.connect(tmp_path / "gateway.db") as database:
        database.execute("UPDATE responses SET created_at = created_at - 2 * 86400 WHERE id = ?", (old,))
    deadline = time.monotonic() + 20
    while requests.get(f"{server.url}/v1/responses/{old}", timeout=5).status_code != 404:
        assert time.monotonic() < deadline, "the old response was not purged"
        time.sleep(0.2)
    assert requests.get(f"{server.url}/v1/responses/{new}", timeout=5).status_code == 200
