"""Background responses in storage: their event log and their cancel flag.

`BackgroundLog` is a mixin of `Repository`, scoped to its tenant (clients replay and cancel
through it). The functions below it are the worker's own: which of the responses it runs someone
asked to cancel, and the terminal event written for a response whose worker died.
"""
from __future__ import annotations

from typing import Any

from peewee import fn

from storage.db import db, write_transaction
from storage.models import EventRecord, ResponseRecord


class BackgroundLog:
    tenant: str

    def log_events(self, response_id: str, events: list[dict[str, Any]]) -> None:
        rows = [{"response_id": response_id, "seq": event["sequence_number"], "data": event} for event in events]
        with db.connection_context(), write_transaction():
            EventRecord.insert_many(rows).on_conflict_ignore().execute()

    def logged_events(self, response_id: str, after: int, limit: int = 500) -> list[dict[str, Any]]:
        """The tenant's logged events of the response with a sequence number above `after`."""
        with db.connection_context():
            rows = (EventRecord.select(EventRecord.data)
                    .join(ResponseRecord, on=(ResponseRecord.id == EventRecord.response_id))
                    .where((EventRecord.response_id == response_id) & (ResponseRecord.tenant == self.tenant)
                           & (EventRecord.seq > after))
                    .order_by(EventRecord.seq).limit(limit))
            return [row.data for row in rows]

    def mark_running(self, response: dict[str, Any]) -> None:
        """A queued background response has started (its stored state says so)."""
        with db.connection_context(), write_transaction():
            (ResponseRecord.update(status=response["status"], response=response)
             .where((ResponseRecord.id == response["id"]) & (ResponseRecord.tenant == self.tenant)
                    & ResponseRecord.worker.is_null(False)).execute())

    def request_cancel(self, response_id: str) -> bool:
        """Flag a response still in progress for cancelling; False when it has already finished."""
        with db.connection_context(), write_transaction():
            return bool(ResponseRecord.update(cancel_requested=True)
                        .where((ResponseRecord.id == response_id) & (ResponseRecord.tenant == self.tenant)
                               & ResponseRecord.worker.is_null(False)).execute())


def cancel_requested(response_ids: list[str]) -> set[str]:
    """Which of these responses (run by this worker) someone asked to cancel, on any worker."""
    if not response_ids:
        return set()
    with db.connection_context():
        rows = ResponseRecord.select(ResponseRecord.id).where(
            ResponseRecord.id.in_(response_ids) & (ResponseRecord.cancel_requested == True))  # noqa: E712
        return {row.id for row in rows}


def log_terminal(response_id: str, response: dict[str, Any]) -> None:
    """End the event log of a response whose worker died (inside the caller's transaction), so
    clients following it get their terminal event; responses without a log are left alone."""
    last = (EventRecord.select(fn.MAX(EventRecord.seq)).where(EventRecord.response_id == response_id).scalar())
    if last is not None:
        event = {"type": "response.failed", "sequence_number": last + 1, "response": response}
        EventRecord.insert(response_id=response_id, seq=last + 1, data=event).on_conflict_ignore().execute()
