"""The database: one module-level `DatabaseProxy`, bound from `DATABASE_URL` by the app factory.

SQLite (default) runs in WAL mode with a busy timeout so several gunicorn workers share one file;
PostgreSQL (`postgresql://…`) serves a fleet of gateway instances. Both use peewee's connection
pools, so `connection_context()` per operation costs a pool checkout, not a new connection.
Backend differences stay inside `storage/`.
"""
from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from urllib.parse import parse_qs, unquote, urlparse

from peewee import Database, DatabaseProxy
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

log = logging.getLogger(__name__)

db = DatabaseProxy()

SQLITE_PRAGMAS = {"journal_mode": "wal", "busy_timeout": 30000, "synchronous": "normal",
                  "foreign_keys": 1, "cache_size": -16000}


class StorageConfigError(ValueError):
    """DATABASE_URL cannot be used."""


def connect_database(url: str, max_connections: int = 64) -> Database:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # sqlite:///relative.db and sqlite:////absolute/path.db, as in SQLAlchemy.
        path = unquote(parsed.netloc + parsed.path[1:])
        if path in ("", ":memory:"):
            raise StorageConfigError("an in-memory SQLite database cannot be shared by workers; use a file")
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        return PooledSqliteDatabase(path, pragmas=SQLITE_PRAGMAS, max_connections=max_connections,
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
