"""Retention: responses, their items and conversations older than the configured age are purged.

Chains are purged from their newest end: a response goes only once nothing descends from it, so a
chain that is still being continued keeps its whole history (a continuation reads every ancestor),
and a chain everyone stopped using disappears a few levels per pass. Each batch is its own short
transaction, so requests never wait behind a long purge. One worker in the fleet runs a pass per
interval: it claims the pass with a conditional update that only one of them can win.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from storage.db import db, write_transaction
from storage.models import ConversationRecord, EventRecord, ItemRecord, ResponseRecord, SecretRecord

_CLAIM = "retention_last_pass"
# Leaves of the chain forest older than the cutoff: old responses nothing descends from, not in progress.
_OLD_LEAVES_SQL = """
SELECT r.id FROM responses r
WHERE r.created_at < {p} AND r.worker IS NULL
  AND NOT EXISTS (SELECT 1 FROM responses c WHERE c.previous_response_id = r.id)
LIMIT {p}
"""
_OLD_CONVERSATIONS_SQL = """
SELECT c.id FROM conversations c
WHERE c.created_at < {p}
  AND NOT EXISTS (SELECT 1 FROM items i WHERE i.conversation_id = c.id AND i.created_at >= {p})
  AND NOT EXISTS (SELECT 1 FROM responses r WHERE r.conversation_id = c.id AND r.created_at >= {p})
LIMIT {p}
"""


@dataclass
class Purged:
    responses: int = 0
    conversations: int = 0
    complete: bool = True      # False: stopped at the time budget, the next pass goes on


def claim_pass(interval_s: float) -> bool:
    """True for exactly one caller per interval, across workers and instances."""
    now = int(time.time())
    with db.connection_context(), write_transaction():
        SecretRecord.insert(name=_CLAIM, value="0").on_conflict_ignore().execute()
        row = SecretRecord.get(SecretRecord.name == _CLAIM)
        if now - int(row.value) < interval_s:
            return False
        won = (SecretRecord.update(value=str(now))
               .where((SecretRecord.name == _CLAIM) & (SecretRecord.value == row.value)).execute())
    return bool(won)


def _ids(sql: str, *params: object) -> list[str]:
    with db.connection_context():
        return [row[0] for row in db.execute_sql(sql.format(p=db.param), params).fetchall()]


def _purge_responses(ids: list[str]) -> None:
    with db.connection_context(), write_transaction():
        ItemRecord.delete().where(ItemRecord.response_id.in_(ids) & ItemRecord.conversation_id.is_null()).execute()
        ItemRecord.update(response_id=None).where(ItemRecord.response_id.in_(ids)).execute()
        EventRecord.delete().where(EventRecord.response_id.in_(ids)).execute()
        ResponseRecord.delete().where(ResponseRecord.id.in_(ids)).execute()


def _purge_conversations(ids: list[str]) -> None:
    with db.connection_context(), write_transaction():
        ItemRecord.delete().where(ItemRecord.conversation_id.in_(ids) & ItemRecord.response_id.is_null()).execute()
        ItemRecord.update(conversation_id=None).where(ItemRecord.conversation_id.in_(ids)).execute()
        ConversationRecord.delete().where(ConversationRecord.id.in_(ids)).execute()


def purge_older_than(cutoff: int, batch: int = 500, budget_s: float = 30.0,
                     progress: Callable[[Purged], None] | None = None) -> Purged:
    """Purge what was created before `cutoff` (epoch seconds), in batches, for at most `budget_s`;
    `progress` hears of each batch."""
    purged = Purged()
    deadline = time.monotonic() + budget_s
    while True:
        if time.monotonic() > deadline:
            purged.complete = False
            return purged
        leaves = _ids(_OLD_LEAVES_SQL, cutoff, batch)
        if leaves:
            _purge_responses(leaves)
            purged.responses += len(leaves)
            if progress is not None:
                progress(purged)
            continue
        conversations = _ids(_OLD_CONVERSATIONS_SQL, cutoff, cutoff, cutoff, batch)
        if not conversations:
            return purged
        _purge_conversations(conversations)
        purged.conversations += len(conversations)
        if progress is not None:
            progress(purged)
