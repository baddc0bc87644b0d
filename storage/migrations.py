"""Schema creation and migration at start-up, recorded in `schema_version`.

Every gunicorn worker runs `migrate()` when it starts; a database-level lock (SQLite's write lock
via BEGIN IMMEDIATE, a PostgreSQL advisory lock) makes exactly one of them apply each step while
the others wait and then find the work done.
"""
from __future__ import annotations

import logging
from typing import Callable

from peewee import BooleanField, CharField, TextField
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as schema_migrate

from storage.db import db, is_sqlite, write_transaction
from storage.models import (
    ConversationRecord,
    EventRecord,
    ItemRecord,
    ResponseRecord,
    SchemaVersion,
    SecretRecord,
    WorkerRecord,
)

log = logging.getLogger(__name__)
_LOCK_KEY = 7_294_001  # arbitrary, constant advisory-lock key for this schema


def _v1_initial(database) -> None:
    # Later migrations add their own columns, so v1 creates the table as it was in version 1.
    database.create_tables([SchemaVersion, ResponseRecord, ItemRecord, ConversationRecord], safe=True)


def _v2_secrets(database) -> None:
    database.create_tables([SecretRecord], safe=True)


def _add_response_columns(database, *new: tuple[str, object]) -> None:
    migrator = SchemaMigrator.from_database(database)
    columns = {c.name for c in database.get_columns(ResponseRecord._meta.table_name)}
    steps = [migrator.add_column(ResponseRecord._meta.table_name, name, field)
             for name, field in new if name not in columns]
    if steps:
        schema_migrate(*steps)


def _v3_checkpoints(database) -> None:
    _add_response_columns(database, ("segment", TextField(null=True)),
                          ("skip_parent", CharField(max_length=64, null=True)))


# Every stored response writes its rows and each of their indexes, so an index nothing reads is
# pure write cost. Responses are only looked up by id; children by parent and items by
# conversation only exist for some rows, so those indexes are partial (NULLs are not indexed), and
# items are found by response or conversation first, never by item id alone.
# Dropped: unused ones, and the full indexes the partial ones below replace.
_DROPPED_INDEXES = ("responserecord_tenant", "responserecord_conversation_id", "responserecord_previous_response_id",
                    "itemrecord_item_id", "itemrecord_conversation_id")
_PARTIAL_INDEXES = (
    "CREATE INDEX IF NOT EXISTS responses_children ON responses (previous_response_id) "
    "WHERE previous_response_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS items_conversation ON items (conversation_id, seq) WHERE conversation_id IS NOT NULL",
)


def _v4_lean_indexes(database) -> None:
    for name in _DROPPED_INDEXES:
        database.execute_sql(f"DROP INDEX IF EXISTS {name}")
    for statement in _PARTIAL_INDEXES:
        database.execute_sql(statement)


def _v5_responses_fragments(database) -> None:
    _add_response_columns(database, ("responses_fragment", TextField(null=True)),
                          ("responses_segment", TextField(null=True)))


def _v6_worker_leases(database) -> None:
    database.create_tables([WorkerRecord], safe=True)
    _add_response_columns(database, ("worker", CharField(max_length=128, null=True)))
    # Only responses in progress name a worker, so the index stays as small as the work in flight.
    database.execute_sql("CREATE INDEX IF NOT EXISTS responses_in_progress ON responses (worker) "
                         "WHERE worker IS NOT NULL")


def _v7_item_references(database) -> None:
    # `item_reference` input items name a stored item by its public id, within the tenant.
    database.execute_sql("CREATE INDEX IF NOT EXISTS items_public_id ON items (tenant, item_id)")


def _v8_background(database) -> None:
    database.create_tables([EventRecord], safe=True)
    # Set by a cancel request on any worker; the worker running the response polls for it.
    _add_response_columns(database, ("cancel_requested", BooleanField(null=True)))


MIGRATIONS: list[Callable] = [_v1_initial, _v2_secrets, _v3_checkpoints, _v4_lean_indexes, _v5_responses_fragments,
                              _v6_worker_leases, _v7_item_references, _v8_background]
SCHEMA_VERSION = len(MIGRATIONS)


def current_version() -> int:
    if not db.table_exists(SchemaVersion._meta.table_name):
        return 0
    row = SchemaVersion.select().order_by(SchemaVersion.version.desc()).first()
    return row.version if row else 0


def migrate() -> int:
    with db.connection_context():
        with write_transaction():
            if not is_sqlite():
                db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            version = current_version()
            for step in range(version, SCHEMA_VERSION):
                log.info("applying schema migration %d", step + 1)
                MIGRATIONS[step](db)
                SchemaVersion.create(version=step + 1)
            return max(version, SCHEMA_VERSION)
