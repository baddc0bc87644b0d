"""The background log on both backends: events logged and replayed after a sequence number within
the tenant, the cancel flag, the terminal event a dead worker's response gets, and the log going
with its response (deleted or purged)."""
from __future__ import annotations

from storage import background, leases, retention
from storage.db import db
from storage.models import EventRecord
from storage.repository import Repository
from tests.storage.builders import CREATED_AT, make_turn
from tests.storage.test_leases import ERROR, always_alive, expire, start


def events(response_id: str, *kinds: str, first: int = 0) -> list[dict]:
    return [{"type": kind, "sequence_number": first + n, "response_id": response_id} for n, kind in enumerate(kinds)]


def test_logged_events_are_replayed_after_a_sequence_number_within_the_tenant(database):
    leases.register_worker("w1", "host-a", 101, 30)
    start(database, "resp_bg", "w1")
    database.log_events("resp_bg", events("resp_bg", "response.queued", "response.created", "response.in_progress"))
    database.log_events("resp_bg", events("resp_bg", "response.created", first=1))    # a repeat is ignored
    assert [e["sequence_number"] for e in database.logged_events("resp_bg", -1)] == [0, 1, 2]
    assert [e["type"] for e in database.logged_events("resp_bg", 0)] == ["response.created", "response.in_progress"]
    assert Repository("other").logged_events("resp_bg", -1) == []


def test_a_cancel_flag_is_set_only_on_a_response_in_progress(database):
    leases.register_worker("w1", "host-a", 101, 30)
    start(database, "resp_run", "w1")
    assert background.cancel_requested(["resp_run"]) == set()
    assert Repository("other").request_cancel("resp_run") is False
    assert database.request_cancel("resp_run") is True
    assert background.cancel_requested(["resp_run", "resp_none"]) == {"resp_run"}
    database.save_response(make_turn("resp_run"))
    assert database.request_cancel("resp_run") is False        # finished: nothing left to cancel


def test_the_log_of_a_dead_workers_response_ends_with_response_failed(database):
    leases.register_worker("w1", "host-a", 101, 30)
    start(database, "resp_dead", "w1")
    start(database, "resp_plain", "w1")
    database.log_events("resp_dead", events("resp_dead", "response.queued", "response.created"))
    expire("w1")
    assert sorted(leases.fail_abandoned("host-a", always_alive, ERROR)) == ["resp_dead", "resp_plain"]
    [terminal] = database.logged_events("resp_dead", 1)
    assert (terminal["type"], terminal["sequence_number"]) == ("response.failed", 2)
    assert terminal["response"]["error"] == ERROR
    assert database.logged_events("resp_plain", -1) == []


def test_the_log_goes_with_its_response(database):
    for response_id in ("resp_deleted", "resp_old"):
        turn = make_turn(response_id)
        turn.response["created_at"] = CREATED_AT
        database.save_response(turn)
        database.log_events(response_id, events(response_id, "response.queued", "response.completed"))
    assert database.delete_response("resp_deleted")
    assert database.logged_events("resp_deleted", -1) == []
    retention.purge_older_than(CREATED_AT + 100)
    assert database.get_response("resp_old") is None
    with db.connection_context():
        assert EventRecord.select().count() == 0
