"""Fixtures for the repository contract suite: every test runs against SQLite and PostgreSQL.

`database` binds the module-level `storage.db.db` proxy to a fresh backend, runs `migrate()`,
yields a `Repository()` and removes every table afterwards.

* SQLite: a file in the test's `tmp_path`.
* PostgreSQL: `TEST_DATABASE_URL` (default `postgresql://postgres@127.0.0.1:5432/test`). The
  session works in a schema of its own (`search_path` set through the URL's `options`), created
  at session start and dropped (CASCADE) at session end, so nothing is left in the database even
  if a test's own clean-up is interrupted. Unreachable server: skipped locally, but a *failure*
  when `CI=true`, so the PostgreSQL run can never be silently skipped in CI.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from typing import Iterator
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import pytest

from storage.db import connect_database, db
from storage.migrations import migrate
from storage.models import ALL_MODELS
from storage.repository import Repository

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgres")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def _with_search_path(url: str, schema: str) -> str:
    """`url` with `options=-csearch_path=<schema>` added (kept alongside any existing options)."""
    parsed = urlparse(url)
    query = dict(parse_qsl(parsed.query))
    option = f"-csearch_path={schema}"
    query["options"] = f"{query['options']} {option}" if query.get("options") else option
    return urlunparse(parsed._replace(query=urlencode(query)))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A URL into a schema private to this test session; the schema is dropped at the end."""
    import psycopg2

    url = os.environ.get("TEST_DATABASE_URL") or DEFAULT_POSTGRES_URL
    try:
        admin = psycopg2.connect(url, connect_timeout=5)
    except psycopg2.OperationalError as error:
        reason = f"PostgreSQL unreachable at {url} (set TEST_DATABASE_URL): {str(error).strip()}"
        if _in_ci():
            pytest.fail(f"CI=true and the PostgreSQL contract run cannot be skipped: {reason}", pytrace=False)
        pytest.skip(reason)
    admin.autocommit = True
    schema = f"storage_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{schema}"')
        yield _with_search_path(url, schema)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


def drop_all_tables() -> None:
    with db.connection_context():
        db.drop_tables(ALL_MODELS, safe=True)


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path) -> Iterator[Repository]:
    """A migrated, empty database on the parametrized backend, bound to `storage.db.db`."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'storage.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    previous = db.obj
    db.initialize(connect_database(url))
    try:
        migrate()
        yield Repository()
    finally:
        try:
            drop_all_tables()
        finally:
            db.close_all()          # the pool's connections, idle and in use (threads included)
            db.initialize(previous)


@pytest.fixture
def backend(request, database) -> str:
    """'sqlite' or 'postgres': the backend `database` is bound to in this test."""
    return request.node.callspec.params["database"]


@pytest.fixture
def xfail_on(request, backend):
    """`xfail_on("postgres", reason, raises=…)`: a strict xfail for this test on that backend only."""
    def mark(target: str, reason: str, raises=None) -> None:
        if backend == target:
            request.node.add_marker(pytest.mark.xfail(strict=True, reason=reason, raises=raises))
    return mark


# -- query counting ------------------------------------------------------------------------
_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "END", "SAVEPOINT", "RELEASE")


class QueryCounter(logging.Handler):
    """Counts the SQL statements peewee executes on the current thread.

    What is counted: every statement that goes through `Database.execute_sql` — all model
    queries (select/insert/update/delete, `.exists()`, `.first()`, …) and raw `db.execute_sql`
    calls such as the recursive CTEs — which peewee logs at DEBUG on the `peewee` logger as
    `(sql, params)`.
    What is not counted: transaction control (BEGIN / COMMIT / ROLLBACK / SAVEPOINT / RELEASE:
    peewee issues these on the raw cursor, and any that do reach the logger are filtered out
    here), connection set-up (SQLite PRAGMAs run on the raw connection when the pool opens one),
    and statements run by other threads.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.thread = threading.get_ident()
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread or not isinstance(record.msg, tuple) or not record.msg:
            return
        sql = str(record.msg[0]).strip()
        if sql.upper().startswith(_TRANSACTION_CONTROL):
            return
        self.statements.append(sql)


@contextlib.contextmanager
def count_queries() -> Iterator[QueryCounter]:
    logger = logging.getLogger("peewee")
    counter = QueryCounter()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(counter)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False        # keep thousands of DEBUG records out of pytest's log capture
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.fixture
def query_counter():
    """`with query_counter() as queries: …; queries.count` — see `QueryCounter` for what counts."""
    return count_queries
