"""The database: one module-level `DatabaseProxy`, bound from `DATABASE_URL` by the app factory.

SQLite (default) runs in WAL mode with a busy timeout so several gunicorn workers share one file;
PostgreSQL (`postgresql://…`) serves a fleet of gateway instances. Both use peewee's connection
pools, so `connection_context()` per operation costs a pool checkout, not a new connection; the
per-response write goes through `write_connection()` (one SQLite connection per process).
Backend differences stay inside `storage/`.
"""
from __future__ import annotations

import logging
import os
import threading
import weakref
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import parse_qs, unquote, urlparse

from peewee import Database, DatabaseProxy, SqliteDatabase
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

log = logging.getLogger(__name__)

db = DatabaseProxy()

SQLITE_PRAGMAS = {"journal_mode": "wal", "busy_timeout": 30000, "synchronous": "normal",
                  "foreign_keys": 1, "cache_size": -16000}


class StorageConfigError(ValueError):
    """DATABASE_URL cannot be used."""


class GatewaySqliteDatabase(PooledSqliteDatabase):
    """Pooled connections, plus the one connection this process writes responses through.

    In WAL mode a connection drops its whole page cache whenever another connection committed
    since its last transaction. With a connection per thread, every response write therefore
    re-read the pages of each table and index it touches; one writer per process keeps them
    between its own commits (writes are serialised per process anyway)."""

    def __init__(self, path: str, **kwargs) -> None:
        super().__init__(path, **kwargs)
        self._writer: SqliteDatabase | None = None
        _SQLITE_DATABASES.add(self)

    def writer(self) -> SqliteDatabase:
        """This process's write connection, opened on first use."""
        if self._writer is None:
            self._writer = SqliteDatabase(self.database, pragmas=SQLITE_PRAGMAS, timeout=30,
                                          thread_safe=False, check_same_thread=False)
        return self._writer

    def forget_writer(self) -> None:
        """In a forked child: drop the parent's writer unclosed (SQLite connections must not cross a
        fork; closing it could checkpoint and remove the WAL file the parent still uses). The
        child opens its own on first use."""
        self._writer = None

    def close_all(self) -> None:
        super().close_all()
        if self._writer is not None:
            self._writer.close()


_SQLITE_DATABASES: weakref.WeakSet[GatewaySqliteDatabase] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for database in list(_SQLITE_DATABASES):
        database.forget_writer()


os.register_at_fork(after_in_child=_after_fork_in_child)


def connect_database(url: str, max_connections: int = 64) -> GatewaySqliteDatabase | PooledPostgresqlDatabase:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # sqlite:///relative.db and sqlite:////absolute/path.db, as in SQLAlchemy.
        path = unquote(parsed.netloc + parsed.path[1:])
        if path in ("", ":memory:"):
            raise StorageConfigError("an in-memory SQLite database cannot be shared by workers; use a file")
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        return GatewaySqliteDatabase(path, pragmas=SQLITE_PRAGMAS, max_connections=max_connections,
                                     stale_timeout=300, timeout=30, check_same_thread=False)
    if parsed.scheme in ("postgres", "postgresql"):
        options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return PooledPostgresqlDatabase(
            unquote(parsed.path.lstrip("/")) or "postgres", host=parsed.hostname or None,
            port=parsed.port or None, user=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            max_connections=max_connections, stale_timeout=300, timeout=30, **options)
    raise StorageConfigError(f"DATABASE_URL scheme {parsed.scheme!r} is not supported "
                             "(use sqlite:///path or postgresql://user@host/db)")


def probe_database(url: str, timeout_s: float = 5.0) -> None:
    """Connect to `url` once and run one statement; raises the driver's error when it cannot."""
    database = connect_database(url, max_connections=1)
    if isinstance(database, PooledPostgresqlDatabase):
        database.connect_params.setdefault("connect_timeout", max(1, int(timeout_s)))
    try:
        database.connect()
        database.execute_sql("SELECT 1")
    finally:
        database.close_all()


def is_sqlite(database: Database | None = None) -> bool:
    target = database or db.obj
    return isinstance(target, PooledSqliteDatabase)


_PROCESS_WRITE_LOCK = threading.Lock()


@contextmanager
def write_transaction():
    """A write transaction.

    SQLite has one writer at a time. Threads of this process queue on a Python lock, which wakes
    the next writer the moment the previous one commits; only the few other worker processes meet
    SQLite's busy handler, whose fixed sleeps (1, 2, 5, 10 … ms) would otherwise make every
    contending thread oversleep. The write lock is taken up front (BEGIN IMMEDIATE) so a waiting
    writer never fails a read→write upgrade. PostgreSQL needs neither."""
    if not is_sqlite():
        with db.atomic():
            yield
        return
    with _PROCESS_WRITE_LOCK, db.atomic("IMMEDIATE"):
        yield


@contextmanager
def write_connection() -> Iterator[Database | DatabaseProxy]:
    """A write transaction for raw SQL, on the connection this process writes through.

    SQLite: the process's writer (`GatewaySqliteDatabase.writer`), under the same process lock and
    BEGIN IMMEDIATE as `write_transaction`. PostgreSQL: the thread's pooled connection."""
    if not is_sqlite():
        with db.connection_context(), db.atomic():
            yield db
        return
    with _PROCESS_WRITE_LOCK:
        writer = db.obj.writer()
        with writer.atomic("IMMEDIATE"):
            yield writer
