"""Row helpers shared by the repository's parts: item rows, batched inserts, keyset pages."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable

from storage.models import ItemRecord


@dataclass
class Page:
    data: list[dict[str, Any]]
    has_more: bool

    def to_dict(self) -> dict[str, Any]:
        return {"object": "list", "data": self.data,
                "first_id": self.data[0]["id"] if self.data else None,
                "last_id": self.data[-1]["id"] if self.data else None,
                "has_more": self.has_more}


def item_rows(items: Iterable[dict[str, Any]], **columns: Any) -> list[dict[str, Any]]:
    now = int(time.time())
    return [{"item_id": item.get("id") or "", "data": item, "position": index, "created_at": now, **columns}
            for index, item in enumerate(items)]


def insert_items(rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 500):
        ItemRecord.insert_many(rows[start:start + 500]).execute()


def page_of(query, order: str, after_seq: int | None, limit: int) -> Page:
    ordering = ItemRecord.seq.asc() if order == "asc" else ItemRecord.seq.desc()
    if after_seq is not None:
        query = query.where(ItemRecord.seq > after_seq if order == "asc" else ItemRecord.seq < after_seq)
    rows = list(query.order_by(ordering).limit(limit + 1))
    return Page([r.data for r in rows[:limit]], has_more=len(rows) > limit)


def page_after(query, after: str | None, limit: int, order: str) -> Page:
    """`query`'s items after the item with id `after` (none if that id is not among them)."""
    after_seq = None
    if after:
        anchor = query.where(ItemRecord.item_id == after).order_by(ItemRecord.seq).first()
        if anchor is None:
            return Page([], False)
        after_seq = anchor.seq
    return page_of(query, order, after_seq, limit)


def page_of_list(items: list[dict[str, Any]], *, after: str | None, before: str | None, limit: int,
                 order: str) -> Page:
    """A page of an ordered list (oldest first) by item-id cursors, for lists assembled from
    several sources. Ids may repeat (clients replay items): a cursor is the first match in the
    page's order; an unknown cursor gives an empty page."""
    ordered = items if order == "asc" else items[::-1]
    ids = [item.get("id") for item in ordered]
    start, end = 0, len(ordered)
    if after is not None:
        if after not in ids:
            return Page([], False)
        start = ids.index(after) + 1
    if before is not None:
        if before not in ids[start:]:
            return Page([], False)
        end = ids.index(before, start)
    window = ordered[start:end]
    return Page(window[:limit], has_more=len(window) > limit)
