"""Concurrency: gunicorn with 4 workers sharing one database, 32 concurrent chains × 10 turns.

Per backend (one SQLite file; PostgreSQL) the real gunicorn (`gunicorn.conf.py`, 4 gthread
workers × 16 threads) starts on an *empty* database, so the workers race to create the schema,
then 32 client threads each drive one `previous_response_id` chain of 10 turns (even chains
over SSE, odd chains JSON), every request on a fresh connection so consecutive turns of a chain
land on different workers. Afterwards: every request succeeded, every chain's last turn sent
upstream exactly its own history (in order, no duplicates, nothing from other chains), every
response lists exactly its one input item, the database holds exactly 320 responses and 640
items, the schema was applied once, and the gunicorn log is free of locks and tracebacks.

The fake upstream's auto responder answers every request ("You said: <last user text>"): a FIFO
script queue cannot be matched to concurrent requests deterministically.

PostgreSQL: `TEST_POSTGRES_URL` (default `postgresql://postgres@127.0.0.1:5432/test`). When it is
unreachable the test is skipped locally, and fails in CI (`CI=true`).
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import requests

from storage.migrations import SCHEMA_VERSION
from storage.models import ALL_MODELS
from tests.checks import collect_text
from tests.fakes.scripts import text_of
from tests.fakes.upstream import FakeUpstream
from tests.support import GunicornGateway, iter_sse

pytestmark = pytest.mark.integration

CHAINS = 32
TURNS = 10
WORKERS = 4
THREADS = 16
MODEL = "fake-model"
REQUEST_TIMEOUT = (5, 30)        # connect, read (per socket read) for every HTTP call
RUN_DEADLINE_S = 60.0            # global bound on the 320 chained requests
# The gateway's tables: the four the issue names, plus any table a newer migration adds.
TABLES = tuple(dict.fromkeys(("responses", "items", "conversations", "schema_version",
                              *(model._meta.table_name for model in ALL_MODELS))))
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TERMINAL = {"response.completed", "response.failed", "response.incomplete", "error"}


# -- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chain_upstream():
    """This module's own fake vLLM (auto responder only)."""
    fake = FakeUpstream(models=(MODEL,))  # listens with uvicorn's backlog, so bursts are not reset
    fake.start()
    yield fake
    fake.stop()


class Backend:
    """One database the gateway is pointed at, plus direct access for counting rows."""

    def __init__(self, name: str, url: str, query: Callable[[str], list[tuple]],
                 cleanup: Callable[[], None]) -> None:
        self.name, self.url, self.query, self.cleanup = name, url, query, cleanup

    def scalar(self, sql: str) -> Any:
        return self.query(sql)[0][0]


def _sqlite_backend(tmp_path: Path) -> Backend:
    path = tmp_path / "concurrency.db"
    assert not path.exists()

    def query(sql: str) -> list[tuple]:
        conn = sqlite3.connect(path, timeout=30)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    return Backend("sqlite", f"sqlite:///{path}", query, lambda: None)


def _pg_connect():
    import psycopg2

    return psycopg2.connect(PG_URL, connect_timeout=3)


def _pg_drop_tables() -> None:
    conn = _pg_connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS " + ", ".join(TABLES) + " CASCADE")
    finally:
        conn.close()


def _postgres_backend() -> Backend:
    try:
        _pg_connect().close()
    except Exception as exc:  # psycopg2 missing or server unreachable
        reason = f"PostgreSQL at {PG_URL} is unreachable: {exc.__class__.__name__}: {str(exc).strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: the PostgreSQL concurrency test must run)")
        pytest.skip(reason)
    _pg_drop_tables()  # empty database: the 4 workers race to create the schema

    def query(sql: str) -> list[tuple]:
        conn = _pg_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()
        finally:
            conn.close()

    return Backend("postgres", PG_URL, query, _pg_drop_tables)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    db = _sqlite_backend(tmp_path) if request.param == "sqlite" else _postgres_backend()
    yield db
    db.cleanup()


@pytest.fixture
def concurrent_gateway(backend, chain_upstream, tmp_path):
    chain_upstream.reset()
    server = GunicornGateway({
        "GATEWAY_WORKERS": str(WORKERS),
        "GATEWAY_THREADS": str(THREADS),
        "SKIP_LLM_READY_CHECK": "1",
        "LLM_API_BASE": chain_upstream.base_url,
        "DATABASE_URL": backend.url,
        # INFO shows gunicorn's "Booting worker" lines and the migration line (one each).
        "LOG_LEVEL": "INFO",
    }, tmp_path / f"gunicorn-{backend.name}.log")
    started = time.monotonic()
    try:
        server.start()
        server.startup_s = time.monotonic() - started
        yield server
    finally:
        server.stop()
        chain_upstream.reset()


# -- the client side -----------------------------------------------------------------------

def _user_text(c: int, t: int) -> str:
    return f"chain {c} turn {t}"


def _post_turn(url: str, body: dict[str, Any], stream: bool) -> dict[str, Any]:
    """One turn; returns the final Response object, raising AssertionError on any failure."""
    if not stream:
        resp = requests.post(f"{url}/v1/responses", json=body, timeout=REQUEST_TIMEOUT)
        assert resp.status_code == 200, f"HTTP {resp.status_code}: {resp.text[:500]}"
        final = resp.json()
        assert final.get("status") == "completed", f"status {final.get('status')!r}: {final.get('error')}"
        return final
    with requests.post(f"{url}/v1/responses", json={**body, "stream": True}, stream=True,
                       timeout=REQUEST_TIMEOUT) as resp:
        assert resp.status_code == 200, f"HTTP {resp.status_code}: {resp.text[:500]}"
        assert resp.headers.get("content-type", "").startswith("text/event-stream")
        events = list(iter_sse(resp))
    assert events, "empty SSE stream"
    terminals = [e for e in events if e["type"] in TERMINAL]
    assert len(terminals) == 1 and terminals[0] is events[-1], \
        f"expected one terminal event, last; got {[e['type'] for e in events][-5:]}"
    last = events[-1]
    assert last["type"] == "response.completed", f"terminal {last['type']}: {last.get('response', last)}"
    final = last["response"]
    assert final["status"] == "completed"
    return final


class ChainRun:
    def __init__(self, url: str, c: int, deadline: float, start: threading.Barrier) -> None:
        self.url, self.c, self.deadline, self.start = url, c, deadline, start
        self.stream = c % 2 == 0
        self.ids: list[str] = []
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name=f"chain-{c}", daemon=True)

    def _run(self) -> None:
        t = 0
        try:
            self.start.wait(timeout=30)
            previous = None
            for t in range(TURNS):
                if time.monotonic() > self.deadline:
                    raise AssertionError("global deadline passed")
                body: dict[str, Any] = {"model": MODEL, "input": _user_text(self.c, t)}
                if previous:
                    body["previous_response_id"] = previous
                final = _post_turn(self.url, body, self.stream)
                assert final.get("previous_response_id") == previous
                assert collect_text(final) == f"You said: {_user_text(self.c, t)}", collect_text(final)
                previous = final["id"]
                self.ids.append(previous)
        except BaseException as exc:  # recorded and reported by the test
            kind = "SSE" if self.stream else "JSON"
            self.error = f"chain {self.c} ({kind}) turn {t}: {exc.__class__.__name__}: {exc}"


def _run_chains(url: str) -> tuple[list[ChainRun], float]:
    deadline = time.monotonic() + RUN_DEADLINE_S
    barrier = threading.Barrier(CHAINS)
    runs = [ChainRun(url, c, deadline, barrier) for c in range(CHAINS)]
    started = time.monotonic()
    for run in runs:
        run.thread.start()
    for run in runs:
        run.thread.join(timeout=max(0.0, deadline + 35 - time.monotonic()))  # 35: one request's read timeout
    elapsed = time.monotonic() - started
    for run in runs:
        if run.thread.is_alive() and run.error is None:
            run.error = f"chain {run.c}: still running after the {RUN_DEADLINE_S:.0f}s deadline " \
                        f"({len(run.ids)} turns done)"
    return runs, elapsed


# -- checks ---------------------------------------------------------------------------------

def _check_upstream_histories(upstream: FakeUpstream, runs: list[ChainRun]) -> None:
    chats = upstream.chat_requests()
    by_last_user: dict[str, list[list[dict]]] = {}
    for chat in chats:
        messages = chat.get("messages") or []
        users = [m for m in messages if m.get("role") == "user"]
        key = text_of(users[-1].get("content")) if users else ""
        by_last_user.setdefault(key, []).append(messages)
    assert len(chats) == CHAINS * TURNS, f"{len(chats)} chat requests upstream, expected {CHAINS * TURNS}"
    repeated = {k: len(v) for k, v in by_last_user.items() if len(v) != 1}
    assert not repeated, f"user texts sent upstream more than once: {repeated}"

    problems = []
    for run in runs:
        c = run.c
        sent = by_last_user.get(_user_text(c, TURNS - 1))
        if not sent:
            problems.append(f"chain {c}: last turn never reached upstream")
            continue
        got = [(m.get("role"), text_of(m.get("content"))) for m in sent[0]]
        expected = []
        for t in range(TURNS - 1):
            expected += [("user", _user_text(c, t)), ("assistant", f"You said: {_user_text(c, t)}")]
        expected.append(("user", _user_text(c, TURNS - 1)))  # 18 history messages + this turn's input
        if got != expected:
            problems.append(f"chain {c}: upstream messages on the last turn were {got}, expected {expected}")
    assert not problems, "\n".join(problems)


def _check_stored(url: str, runs: list[ChainRun]) -> None:
    problems = []
    with requests.Session() as http:
        for run in runs:
            last = run.ids[-1]
            resp = http.get(f"{url}/v1/responses/{last}", timeout=REQUEST_TIMEOUT)
            if resp.status_code != 200:
                problems.append(f"chain {run.c}: GET {last} -> {resp.status_code} {resp.text[:200]}")
            else:
                body = resp.json()
                if (body["id"], body["status"], body.get("previous_response_id")) != (last, "completed", run.ids[-2]):
                    problems.append(f"chain {run.c}: GET {last} returned {body['id']} {body['status']} "
                                    f"prev={body.get('previous_response_id')}")
            for t, rid in enumerate(run.ids):
                resp = http.get(f"{url}/v1/responses/{rid}/input_items", timeout=REQUEST_TIMEOUT)
                if resp.status_code != 200:
                    problems.append(f"chain {run.c} turn {t}: input_items -> {resp.status_code}")
                    continue
                page = resp.json()      # newest first: the turn's own input, then the chain's items
                texts = [text_of(item.get("content")) for item in page["data"]]
                expected = min(20, 2 * t + 1)
                if len(texts) != expected or texts[0] != _user_text(run.c, t) or page["has_more"] != (2 * t + 1 > 20):
                    problems.append(f"chain {run.c} turn {t}: input_items {texts} has_more={page['has_more']}")
    assert not problems, "\n".join(problems[:40])


def _check_database(db: Backend, runs: list[ChainRun]) -> None:
    total = CHAINS * TURNS
    counts = {
        "responses": db.scalar("SELECT COUNT(*) FROM responses"),
        "distinct response ids": db.scalar("SELECT COUNT(DISTINCT id) FROM responses"),
        "items": db.scalar("SELECT COUNT(*) FROM items"),
        "input items": db.scalar("SELECT COUNT(*) FROM items WHERE kind = 'input'"),
        "output items": db.scalar("SELECT COUNT(*) FROM items WHERE kind = 'output'"),
        "distinct item ids": db.scalar("SELECT COUNT(DISTINCT item_id) FROM items"),
        "conversations": db.scalar("SELECT COUNT(*) FROM conversations"),
    }
    expected = {"responses": total, "distinct response ids": total, "items": 2 * total,
                "input items": total, "output items": total, "distinct item ids": 2 * total,
                "conversations": 0}
    assert counts == expected, f"row counts {counts}, expected {expected}"
    uneven = db.query("SELECT r.id, COUNT(i.seq) FROM responses r LEFT JOIN items i ON i.response_id = r.id "
                      "GROUP BY r.id HAVING COUNT(i.seq) <> 2 "
                      "OR SUM(CASE WHEN i.kind = 'input' THEN 1 ELSE 0 END) <> 1")
    assert not uneven, f"responses without exactly one input and one output item: {uneven[:10]}"
    orphans = db.scalar("SELECT COUNT(*) FROM items i LEFT JOIN responses r ON r.id = i.response_id "
                        "WHERE r.id IS NULL")
    assert orphans == 0, f"{orphans} items belong to no stored response"
    stored = {rid: (prev, depth) for rid, prev, depth in
              db.query("SELECT id, previous_response_id, depth FROM responses")}
    for run in runs:
        for t, rid in enumerate(run.ids):
            assert stored.get(rid) == (run.ids[t - 1] if t else None, t), \
                f"chain {run.c} turn {t}: stored (previous, depth) {stored.get(rid)}"
    versions = db.query("SELECT version FROM schema_version ORDER BY version")
    expected_versions = [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    assert versions == expected_versions, \
        f"schema_version rows {versions}, expected {expected_versions}: each migration applied exactly once"


def _check_log(server: GunicornGateway) -> None:
    log = server.log_text()
    for needle in ("database is locked", "Traceback", "OperationalError", "could not store response",
                   "Worker failed to boot", "WORKER TIMEOUT"):
        assert needle not in log, f"gunicorn log contains {needle!r}:\n{log[-6000:]}"
    booted = log.count("Booting worker with pid")
    assert booted == WORKERS, f"{booted} workers booted (expected {WORKERS}, none restarted):\n{log[-4000:]}"
    for step in range(1, SCHEMA_VERSION + 1):
        applied = log.count(f'"applying schema migration {step}"')
        assert applied == 1, f"schema migration {step} applied {applied} times, expected once:\n{log[-4000:]}"


# -- the test -------------------------------------------------------------------------------

def test_concurrent_chains_on_four_workers(backend, concurrent_gateway, chain_upstream):
    server = concurrent_gateway
    runs, elapsed = _run_chains(server.url)
    rate = CHAINS * TURNS / elapsed if elapsed else 0.0
    print(f"\n[concurrency:{backend.name}] gunicorn start {server.startup_s:.2f}s; "
          f"{CHAINS} chains x {TURNS} turns = {CHAINS * TURNS} requests in {elapsed:.2f}s "
          f"({rate:.0f} req/s) on {WORKERS} workers x {THREADS} threads", flush=True)

    errors = [run.error for run in runs if run.error]
    log_tail = server.log_text()[-4000:]
    assert not errors, f"{len(errors)} of {CHAINS} chains failed:\n" + "\n".join(errors) + \
        f"\n--- gunicorn log tail ---\n{log_tail}"
    assert all(len(run.ids) == TURNS for run in runs)
    assert server.proc.poll() is None, f"gunicorn exited with {server.proc.returncode}"

    checks_started = time.monotonic()
    _check_upstream_histories(chain_upstream, runs)
    _check_stored(server.url, runs)
    _check_database(backend, runs)
    _check_log(server)
    print(f"[concurrency:{backend.name}] verification {time.monotonic() - checks_started:.2f}s", flush=True)
