"""The conversation half of the repository (a mixin of `Repository`, scoped to its tenant)."""
from __future__ import annotations

import time
from typing import Any

from storage.db import db, write_transaction
from storage.models import ConversationRecord, ItemRecord
from storage.rows import Page, insert_items, item_rows, page_after


class Conversations:
    tenant: str

    def create_conversation(self, conversation_id: str, metadata: dict[str, str],
                            items: list[dict[str, Any]]) -> dict[str, Any]:
        now = int(time.time())
        with db.connection_context(), write_transaction():
            ConversationRecord.create(id=conversation_id, tenant=self.tenant, created_at=now, metadata=metadata)
            insert_items(item_rows(items, conversation_id=conversation_id, kind="conversation", tenant=self.tenant))
        return {"id": conversation_id, "object": "conversation", "created_at": now, "metadata": metadata}

    def _conversation(self, conversation_id: str):
        return (ConversationRecord.select().where((ConversationRecord.id == conversation_id)
                                                  & (ConversationRecord.tenant == self.tenant)
                                                  & (ConversationRecord.deleted == False)).first())  # noqa: E712

    @staticmethod
    def _conversation_dict(row: ConversationRecord) -> dict[str, Any]:
        return {"id": row.id, "object": "conversation", "created_at": row.created_at, "metadata": row.metadata}

    def get_conversation(self, conversation_id: str) -> dict[str, Any] | None:
        with db.connection_context():
            row = self._conversation(conversation_id)
            return self._conversation_dict(row) if row else None

    def update_conversation(self, conversation_id: str, metadata: dict[str, str]) -> dict[str, Any] | None:
        with db.connection_context(), write_transaction():
            updated = ConversationRecord.update(metadata=metadata).where(
                (ConversationRecord.id == conversation_id) & (ConversationRecord.tenant == self.tenant)
                & (ConversationRecord.deleted == False)).execute()  # noqa: E712
            if not updated:
                return None
            return self._conversation_dict(self._conversation(conversation_id))

    def delete_conversation(self, conversation_id: str) -> bool:
        with db.connection_context(), write_transaction():
            if self._conversation(conversation_id) is None:
                return False
            ConversationRecord.update(deleted=True).where(ConversationRecord.id == conversation_id).execute()
            ItemRecord.delete().where((ItemRecord.conversation_id == conversation_id)
                                      & (ItemRecord.response_id.is_null())).execute()
            ItemRecord.update(conversation_id=None).where(ItemRecord.conversation_id == conversation_id).execute()
        return True

    def add_conversation_items(self, conversation_id: str, items: list[dict[str, Any]]) -> bool:
        with db.connection_context(), write_transaction():
            if self._conversation(conversation_id) is None:
                return False
            insert_items(item_rows(items, conversation_id=conversation_id, kind="conversation", tenant=self.tenant))
        return True

    def conversation_items(self, conversation_id: str) -> list[dict[str, Any]] | None:
        with db.connection_context():
            if self._conversation(conversation_id) is None:
                return None
            rows = ItemRecord.select(ItemRecord.data).where(ItemRecord.conversation_id == conversation_id)
            return [r.data for r in rows.order_by(ItemRecord.seq)]

    def list_conversation_items(self, conversation_id: str, *, after: str | None, limit: int,
                                order: str) -> Page | None:
        with db.connection_context():
            if self._conversation(conversation_id) is None:
                return None
            query = ItemRecord.select().where(ItemRecord.conversation_id == conversation_id)
            return page_after(query, after, limit, order)

    def get_conversation_item(self, conversation_id: str, item_id: str) -> dict[str, Any] | None:
        with db.connection_context():
            if self._conversation(conversation_id) is None:
                return None
            row = (ItemRecord.select().where((ItemRecord.conversation_id == conversation_id)
                                             & (ItemRecord.item_id == item_id)).order_by(ItemRecord.seq.desc()).first())
            return row.data if row else None

    def delete_conversation_item(self, conversation_id: str, item_id: str) -> bool:
        with db.connection_context(), write_transaction():
            if self._conversation(conversation_id) is None:
                return False
            rows = list(ItemRecord.select().where((ItemRecord.conversation_id == conversation_id)
                                                  & (ItemRecord.item_id == item_id)))
            for row in rows:
                if row.response_id is None:
                    row.delete_instance()
                else:
                    ItemRecord.update(conversation_id=None).where(ItemRecord.seq == row.seq).execute()
            return bool(rows)
