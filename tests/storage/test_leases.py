"""Worker leases on both backends: a response recorded at its start names its worker; once that
worker's lease runs out, or its process is gone from this host, the response is marked failed by
whichever worker sweeps next — and a finished response is completed in place."""
from __future__ import annotations

import time

from storage import leases
from storage.db import db
from storage.models import WorkerRecord
from storage.repository import Repository
from tests.storage.builders import make_turn

ERROR = {"code": "server_error", "message": "worker died"}


def always_alive(pid: int) -> bool:
    return True


def start(database: Repository, response_id: str, worker: str) -> None:
    turn = make_turn(response_id, status="in_progress", outputs=[])
    database.start_response(turn, worker)


def expire(worker_id: str) -> None:
    with db.connection_context():
        WorkerRecord.update(lease_until=int(time.time()) - 1).where(WorkerRecord.id == worker_id).execute()


def test_a_started_response_exists_in_progress_and_is_completed_in_place(database):
    leases.register_worker("w1", "host-a", 101, 30)
    start(database, "resp_1", "w1")
    assert database.get_response("resp_1")["status"] == "in_progress"
    database.save_response(make_turn("resp_1"))
    assert database.get_response("resp_1")["status"] == "completed"
    assert database.list_input_items("resp_1", after=None, limit=10, order="asc").data
    assert leases.fail_abandoned("host-a", always_alive, ERROR) == []


def test_responses_of_a_worker_whose_lease_ran_out_are_failed_by_another(database):
    leases.register_worker("w-dead", "host-b", 202, 30)
    leases.register_worker("w-live", "host-a", 101, 30)
    start(database, "resp_dead", "w-dead")
    start(database, "resp_live", "w-live")
    assert leases.fail_abandoned("host-a", always_alive, ERROR) == []
    expire("w-dead")
    assert leases.fail_abandoned("host-a", always_alive, ERROR) == ["resp_dead"]
    failed = database.get_response("resp_dead")
    assert (failed["status"], failed["error"]) == ("failed", ERROR)
    assert database.get_response("resp_live")["status"] == "in_progress"
    with db.connection_context():
        assert [w.id for w in WorkerRecord.select()] == ["w-live"]


def test_a_gone_process_on_this_host_is_dead_before_its_lease_runs_out(database):
    leases.register_worker("w-gone", "host-a", 303, 30)
    start(database, "resp_gone", "w-gone")
    assert leases.fail_abandoned("host-a", lambda pid: pid != 303, ERROR) == ["resp_gone"]


def test_a_response_whose_worker_is_unknown_is_failed(database):
    start(database, "resp_orphan", "w-never-registered")
    assert leases.fail_abandoned("host-a", always_alive, ERROR) == ["resp_orphan"]


def test_a_response_deleted_while_in_progress_stays_deleted(database):
    leases.register_worker("w1", "host-a", 101, 30)
    start(database, "resp_del", "w1")
    assert database.delete_response("resp_del")
    database.save_response(make_turn("resp_del"))
    assert database.get_response("resp_del") is None


def test_renewing_a_lease_keeps_its_responses_and_says_when_it_was_taken(database):
    leases.register_worker("w1", "host-a", 101, 30)
    expire("w1")
    assert leases.renew_worker("w1", 30)
    start(database, "resp_1", "w1")
    assert leases.fail_abandoned("host-a", always_alive, ERROR) == []
    leases.retire_worker("w1")
    assert not leases.renew_worker("w1", 30)
