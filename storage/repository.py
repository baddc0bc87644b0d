"""The only storage interface the engine and the transports see.

Continuation is constant-cost in chain depth: `load_parent` is two queries (the parent row, then
one recursive CTE that returns every ancestor's fragments in order), never one per ancestor.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from peewee import IntegrityError, fn

from storage.background import BackgroundLog
from storage.conversations import Conversations
from storage.db import db, write_connection, write_transaction
from storage.models import EventRecord, ItemRecord, ResponseRecord, SecretRecord
from storage.rows import Page, page_of_list
from storage.sessions import Sessions

# Walks from a response to the root, taking a checkpoint's segment and skipping to its skip_parent
# where one exists, else the row's own fragment and its parent.
_CHAIN_SQL = """
WITH RECURSIVE chain(id, next_id, depth, text, version, is_segment, responses_text) AS (
    SELECT id, CASE WHEN segment IS NULL THEN previous_response_id ELSE skip_parent END, depth,
           COALESCE(segment, chat_fragment), fragment_version, segment IS NOT NULL,
           CASE WHEN segment IS NULL THEN responses_fragment ELSE responses_segment END
    FROM responses WHERE id = {p}
    UNION ALL
    SELECT r.id, CASE WHEN r.segment IS NULL THEN r.previous_response_id ELSE r.skip_parent END, r.depth,
           COALESCE(r.segment, r.chat_fragment), r.fragment_version, r.segment IS NOT NULL,
           CASE WHEN r.segment IS NULL THEN r.responses_fragment ELSE r.responses_segment END
    FROM chain c JOIN responses r ON r.id = c.next_id
)
SELECT id, text, version, depth, is_segment, responses_text FROM chain ORDER BY depth
"""
_CHAIN_ITEMS_SQL = """
WITH RECURSIVE chain(id, parent) AS (
    SELECT id, previous_response_id FROM responses WHERE id = {p}
    UNION ALL
    SELECT r.id, r.previous_response_id FROM responses r JOIN chain c ON r.id = c.parent
)
SELECT i.response_id, i.data FROM items i JOIN chain c ON i.response_id = c.id
JOIN responses r ON r.id = c.id
WHERE i.kind IN ('input', 'output')
ORDER BY r.depth, CASE i.kind WHEN 'input' THEN 0 ELSE 1 END, i.position
"""


class Fragment(NamedTuple):
    """Encoded upstream history of one response (or, for a checkpoint, of several levels): `text`
    as chat messages, `responses` as a Responses upstream's input items (None where not stored)."""

    response_id: str
    text: str | None
    version: int
    depth: int = 0
    segment: bool = False
    responses: str | None = None

    def for_kind(self, kind: str) -> str | None:
        return self.text if kind == "chat" else self.responses


@dataclass
class ParentContext:
    """What a continuation needs from the chain it continues."""

    response: dict[str, Any]
    request: dict[str, Any]
    loaded_tools: list[dict[str, Any]]
    depth: int
    fragments: list[Fragment]                  # root first
    conversation_id: str | None = None


@dataclass
class StoredTurn:
    response: dict[str, Any]
    request: dict[str, Any]
    input_items: list[dict[str, Any]]
    chat_fragment: str
    fragment_version: int
    loaded_tools: list[dict[str, Any]] = field(default_factory=list)
    depth: int = 0
    conversation_id: str | None = None
    segment: str | None = None         # a checkpoint's encoded last levels (see ResponseRecord)
    skip_parent: str | None = None
    responses_fragment: str | None = None
    responses_segment: str | None = None


_RESPONSE_COLUMNS = ("id", "tenant", "created_at", "status", "model", "previous_response_id", "conversation_id",
                     "depth", "deleted", "response", "request", "loaded_tools", "chat_fragment", "fragment_version",
                     "segment", "skip_parent", "responses_fragment", "responses_segment", "worker")
# A response recorded when it started (it names its worker) is completed in place: every column
# but its identity is replaced, unless it was deleted meanwhile (then nothing is written). Any
# other existing row with the id is a duplicate.
_UPDATED_COLUMNS = tuple(c for c in _RESPONSE_COLUMNS if c not in ("id", "tenant", "deleted"))
_ITEM_COLUMNS = ("item_id", "tenant", "response_id", "conversation_id", "kind", "position", "created_at", "data")


@functools.lru_cache(maxsize=8)
def _insert_sql(table: str, columns: tuple[str, ...], param: str) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([param] * len(columns))})"


@functools.lru_cache(maxsize=4)
def _upsert_response_sql(param: str) -> str:
    updates = ", ".join(f"{column} = excluded.{column}" for column in _UPDATED_COLUMNS)
    return (_insert_sql("responses", _RESPONSE_COLUMNS, param) + f" ON CONFLICT (id) DO UPDATE SET {updates} "
            "WHERE responses.worker IS NOT NULL AND responses.deleted = FALSE AND responses.tenant = excluded.tenant")


def _json(value: Any) -> str:
    return ItemRecord.data.db_value(value)


class Repository(Conversations, BackgroundLog, Sessions):
    def __init__(self, tenant: str = "default") -> None:
        self.tenant = tenant

    def ping(self) -> bool:
        with db.connection_context():
            db.execute_sql("SELECT 1")
        return True

    # -- responses -------------------------------------------------------------------------
    def save_response(self, turn: StoredTurn) -> None:
        # Rows are encoded before the write transaction so the write lock is held only for the two
        # statements (SQLite serializes writers across workers; Python work under it costs them all).
        response = turn.response
        tenant = self.tenant
        now = int(time.time())
        row = (response["id"], tenant, response["created_at"], response["status"], response["model"],
               response.get("previous_response_id"), turn.conversation_id, turn.depth, False, _json(response),
               _json(turn.request), _json(turn.loaded_tools), turn.chat_fragment, turn.fragment_version,
               turn.segment, turn.skip_parent, turn.responses_fragment, turn.responses_segment, None)
        items = [(item.get("id") or "", tenant, response["id"], turn.conversation_id, kind, position, now,
                  _json(item))
                 for kind, group in (("input", turn.input_items), ("output", response["output"]))
                 for position, item in enumerate(group)]
        with write_connection() as connection:
            if not connection.execute_sql(_upsert_response_sql(db.param), row).rowcount:
                existing = connection.execute_sql(f"SELECT deleted FROM responses WHERE id = {db.param}",
                                                  (response["id"],)).fetchone()
                if existing and existing[0]:
                    return      # deleted while in progress: it stays deleted
                raise IntegrityError(f"response {response['id']} is already stored")
            if items:
                connection.cursor().executemany(_insert_sql("items", _ITEM_COLUMNS, db.param), items)

    def start_response(self, turn: StoredTurn, worker: str) -> None:
        """Record a response as it starts (status in progress, served by `worker`), so it exists for
        clients that hold its id even if its worker dies; `save_response` completes it."""
        response = turn.response
        row = (response["id"], self.tenant, response["created_at"], response["status"], response["model"],
               response.get("previous_response_id"), turn.conversation_id, turn.depth, False, _json(response),
               _json(turn.request), _json(turn.loaded_tools), "", turn.fragment_version, None, None, None, None, worker)
        with write_connection() as connection:
            connection.execute_sql(_insert_sql("responses", _RESPONSE_COLUMNS, db.param), row)

    def _live(self, response_id: str):
        return (ResponseRecord.select().where((ResponseRecord.id == response_id)
                                              & (ResponseRecord.tenant == self.tenant)
                                              & (ResponseRecord.deleted == False)).first())  # noqa: E712

    def get_response(self, response_id: str) -> dict[str, Any] | None:
        with db.connection_context():
            row = self._live(response_id)
            return row.response if row else None

    def load_parent(self, response_id: str) -> ParentContext | None:
        with db.connection_context():
            row = self._live(response_id)
            if row is None:
                return None
            cursor = db.execute_sql(_CHAIN_SQL.format(p=db.param), (response_id,))
            fragments = [Fragment(rid, text or "", version, depth, bool(segment), responses)
                         for rid, text, version, depth, segment, responses in cursor.fetchall()]
        return ParentContext(response=row.response, request=row.request or {}, loaded_tools=row.loaded_tools or [],
                             depth=row.depth, fragments=fragments, conversation_id=row.conversation_id)

    def chain_items(self, response_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every item of the chain ending at `response_id`, grouped by response in chain order
        (root first; one query)."""
        grouped: dict[str, list[dict[str, Any]]] = {}
        with db.connection_context():
            cursor = db.execute_sql(_CHAIN_ITEMS_SQL.format(p=db.param), (response_id,))
            for rid, data in cursor.fetchall():
                grouped.setdefault(rid, []).append(ItemRecord.data.python_value(data))
        return grouped

    def delete_response(self, response_id: str) -> bool:
        """Tombstone the response; physically remove it (and tombstoned ancestors) once nothing
        descends from it, so children already stored keep their history."""
        with db.connection_context(), write_transaction():
            row = self._live(response_id)
            if row is None:
                return False
            ResponseRecord.update(deleted=True, response=None, request=None, worker=None).where(
                ResponseRecord.id == response_id).execute()
            EventRecord.delete().where(EventRecord.response_id == response_id).execute()   # a background log
            if row.worker is None:  # one in progress stays a tombstone, so finishing it cannot bring it back
                self._purge_unreferenced(row.id)
        return True

    def _purge_unreferenced(self, response_id: str | None) -> None:
        while response_id:
            row = ResponseRecord.get_or_none(ResponseRecord.id == response_id)
            has_children = ResponseRecord.select().where(ResponseRecord.previous_response_id == response_id).exists()
            if row is None or not row.deleted or has_children:
                return
            ItemRecord.delete().where((ItemRecord.response_id == response_id)
                                      & (ItemRecord.conversation_id.is_null())).execute()
            ItemRecord.update(response_id=None).where(ItemRecord.response_id == response_id).execute()
            row.delete_instance()
            response_id = row.previous_response_id

    def list_input_items(self, response_id: str, *, after: str | None, limit: int, order: str,
                         before: str | None = None) -> Page | None:
        """The items used to generate the response: its chain's items (each ancestor's input, then
        output) or its conversation's items before it, then its own input."""
        with db.connection_context():
            row = self._live(response_id)
            if row is None:
                return None
            own = list(ItemRecord.select(ItemRecord.seq, ItemRecord.data).where(
                (ItemRecord.response_id == response_id) & (ItemRecord.kind == "input")).order_by(ItemRecord.seq))
            if row.previous_response_id:
                inherited = [item for group in self.chain_items(row.previous_response_id).values() for item in group]
            elif row.conversation_id:
                inherited = self._conversation_items_before(row)
            else:
                inherited = []
        return page_of_list(inherited + [r.data for r in own], after=after, before=before, limit=limit, order=order)

    def _conversation_items_before(self, row: ResponseRecord) -> list[dict[str, Any]]:
        """The conversation's items written before the response's own (or, for a response that
        wrote none, before it was created)."""
        first = (ItemRecord.select(fn.MIN(ItemRecord.seq)).where(ItemRecord.response_id == row.id).scalar())
        query = ItemRecord.select(ItemRecord.data).where(ItemRecord.conversation_id == row.conversation_id)
        query = query.where(ItemRecord.seq < first) if first is not None else query.where(
            ItemRecord.created_at <= row.created_at)
        return [r.data for r in query.order_by(ItemRecord.seq)]

    def find_items(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The tenant's stored items with these public ids (ids may repeat: the latest wins)."""
        with db.connection_context():
            rows = ItemRecord.select(ItemRecord.item_id, ItemRecord.data).where(
                (ItemRecord.tenant == self.tenant) & ItemRecord.item_id.in_(sorted(set(item_ids))))
            return {row.item_id: row.data for row in rows.order_by(ItemRecord.seq)}

    def secret(self, name: str, generate) -> str:
        """The named secret, created by the first worker that asks (others then read it)."""
        with db.connection_context():
            row = SecretRecord.get_or_none(SecretRecord.name == name)
            if row is not None:
                return row.value
            with write_transaction():
                SecretRecord.insert(name=name, value=generate()).on_conflict_ignore().execute()
            return SecretRecord.get(SecretRecord.name == name).value

    def count_items(self) -> int:
        with db.connection_context():
            return ItemRecord.select(fn.COUNT(ItemRecord.seq)).scalar()
