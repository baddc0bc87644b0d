"""Worker leases: which gateway process serves each response in progress, and recovery of the
responses of a process that died without finishing them (killed with SIGKILL, out of memory, the
machine lost).

A worker holds a lease it renews every few seconds. A response in progress names its worker; when
that worker's lease has run out, or its process is gone from this host, any worker marks the
response failed. Clients holding its id then read a failed response instead of a 404 or an
`in_progress` that never ends.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from storage.background import log_terminal
from storage.db import db, write_transaction
from storage.models import ResponseRecord, WorkerRecord


def register_worker(worker_id: str, host: str, pid: int, lease_s: float) -> None:
    now = int(time.time())
    with db.connection_context(), write_transaction():
        (WorkerRecord.insert(id=worker_id, host=host, pid=pid, started_at=now, lease_until=now + int(lease_s))
         .on_conflict(conflict_target=[WorkerRecord.id], update={WorkerRecord.lease_until: now + int(lease_s)})
         .execute())


def renew_worker(worker_id: str, lease_s: float) -> bool:
    """Extend the lease (a real write, so it also proves storage accepts writes); False when the
    row was gone (another worker judged this one dead)."""
    with db.connection_context(), write_transaction():
        updated = (WorkerRecord.update(lease_until=int(time.time()) + int(lease_s))
                   .where(WorkerRecord.id == worker_id).execute())
    return bool(updated)


def retire_worker(worker_id: str) -> None:
    with db.connection_context(), write_transaction():
        WorkerRecord.delete().where(WorkerRecord.id == worker_id).execute()


def _dead_workers(host: str, process_alive: Callable[[int], bool]) -> set[str]:
    """Ids of workers whose lease ran out or whose process is gone from this host."""
    now = int(time.time())
    return {row.id for row in WorkerRecord.select()
            if row.lease_until < now or (row.host == host and not process_alive(row.pid))}


def fail_abandoned(host: str, process_alive: Callable[[int], bool], error: dict[str, Any]) -> list[str]:
    """Mark failed every response in progress whose worker is dead (or unknown); returns their ids."""
    failed: list[str] = []
    with db.connection_context():
        dead = _dead_workers(host, process_alive)
        live = [row.id for row in WorkerRecord.select(WorkerRecord.id) if row.id not in dead]
        abandoned = ResponseRecord.select(ResponseRecord.id, ResponseRecord.worker, ResponseRecord.response).where(
            ResponseRecord.worker.is_null(False) & ResponseRecord.worker.not_in(live) & ~ResponseRecord.deleted)
        for row in list(abandoned):
            response = {**(row.response or {}), "status": "failed", "error": error}
            with write_transaction():
                done = (ResponseRecord.update(status="failed", worker=None, response=response)
                        .where((ResponseRecord.id == row.id) & (ResponseRecord.worker == row.worker)).execute())
                if done:
                    log_terminal(row.id, response)
            if done:
                failed.append(row.id)
        if dead:
            with write_transaction():
                WorkerRecord.delete().where(WorkerRecord.id.in_(dead)).execute()
    return failed
