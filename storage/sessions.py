"""What an operator looks at (a mixin of `Repository`, scoped to its tenant): the tenant's sessions —
response chains by their newest response, and conversations — newest first, and one chain turn by
turn with its items."""
from __future__ import annotations

from typing import Any

from peewee import fn

from storage.db import db
from storage.models import ConversationRecord, ItemRecord, ResponseRecord

# The chain from a response to its root, newest first (ids only: the walk a listing needs).
_CHAIN_IDS_SQL = """
WITH RECURSIVE chain(id, parent, depth) AS (
    SELECT id, previous_response_id, depth FROM responses WHERE id = {p} AND tenant = {p}
    UNION ALL
    SELECT r.id, r.previous_response_id, r.depth FROM responses r JOIN chain c ON r.id = c.parent
)
SELECT id FROM chain ORDER BY depth DESC LIMIT {p}
"""


def _usage_tokens(response: dict[str, Any] | None) -> int | None:
    usage = (response or {}).get("usage") or {}
    return usage.get("total_tokens")


class Sessions:
    tenant: str

    def list_sessions(self, *, limit: int = 20, status: str | None = None, model: str | None = None,
                      since: int | None = None) -> list[dict[str, Any]]:
        """Chains (each by its newest response) and conversations, newest first."""
        with db.connection_context():
            children = ResponseRecord.alias()
            has_child = fn.EXISTS(children.select(children.id)
                                  .where(children.previous_response_id == ResponseRecord.id))
            leaves = ResponseRecord.select().where(
                (ResponseRecord.tenant == self.tenant) & ~ResponseRecord.deleted & ~has_child)
            if status:
                leaves = leaves.where(ResponseRecord.status == status)
            if model:
                leaves = leaves.where(ResponseRecord.model == model)
            if since:
                leaves = leaves.where(ResponseRecord.created_at >= since)
            chains: list[dict[str, Any]] = [
                {"kind": "chain", "id": row.id, "created_at": row.created_at, "status": row.status, "model": row.model,
                 "turns": row.depth + 1, "tokens": _usage_tokens(row.response), "conversation": row.conversation_id}
                for row in leaves.order_by(ResponseRecord.created_at.desc()).limit(limit)]
            conversations: list[dict[str, Any]] = []
            if not status and not model:
                query = ConversationRecord.select().where(
                    (ConversationRecord.tenant == self.tenant) & ~ConversationRecord.deleted)
                if since:
                    query = query.where(ConversationRecord.created_at >= since)
                rows = list(query.order_by(ConversationRecord.created_at.desc()).limit(limit))
                counts: dict[str, int] = {}
                if rows:        # every listed conversation's item count, in one query
                    grouped = (ItemRecord.select(ItemRecord.conversation_id, fn.COUNT(ItemRecord.seq).alias("n"))
                               .where(ItemRecord.conversation_id.in_([row.id for row in rows]))
                               .group_by(ItemRecord.conversation_id))
                    counts = {str(item.conversation_id): getattr(item, "n") for item in grouped}
                conversations = [{"kind": "conversation", "id": row.id, "created_at": row.created_at, "status": None,
                                  "model": None, "turns": None, "tokens": None, "items": counts.get(row.id, 0)}
                                 for row in rows]
        return sorted(chains + conversations, key=lambda s: s["created_at"], reverse=True)[:limit]

    def chain_turns(self, response_id: str, limit: int = 50) -> list[dict[str, Any]] | None:
        """The chain ending at `response_id`, its last `limit` turns oldest first, each with its
        response and its input and output items; None when the tenant has no such response."""
        with db.connection_context():
            cursor = db.execute_sql(_CHAIN_IDS_SQL.format(p=db.param), (response_id, self.tenant, limit))
            ids = [row[0] for row in cursor.fetchall()][::-1]
            if not ids:
                return None
            rows = {row.id: row for row in ResponseRecord.select().where(ResponseRecord.id.in_(ids))}
            items: dict[str, dict[str, list[dict[str, Any]]]] = {rid: {"input": [], "output": []} for rid in ids}
            for item in (ItemRecord.select().where(ItemRecord.response_id.in_(ids)
                                                   & ItemRecord.kind.in_(("input", "output")))
                         .order_by(ItemRecord.seq)):
                items[str(item.response_id)][item.kind].append(item.data)
        return [{"response": rows[rid].response or {"id": rid, "status": "deleted"}, "depth": rows[rid].depth,
                 "input": items[rid]["input"], "output": items[rid]["output"]} for rid in ids if rid in rows]

