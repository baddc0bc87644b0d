"""Retention on both backends: what is older than the cutoff goes, chains from their newest end (a
chain still continued keeps its whole history), conversations once nothing in them is recent;
and exactly one caller wins each interval's pass."""
from __future__ import annotations

from gateway.lifecycle import Retention
from storage import leases, retention
from tests.storage.builders import CREATED_AT, make_turn

CUTOFF = CREATED_AT + 100


def save(database, response_id, *, previous=None, depth=0, age=0, conversation_id=None):
    turn = make_turn(response_id, previous=previous, depth=depth, conversation_id=conversation_id)
    turn.response["created_at"] = CREATED_AT + age
    database.save_response(turn)


def test_an_abandoned_old_chain_is_purged_whole(database):
    save(database, "resp_a")
    save(database, "resp_b", previous="resp_a", depth=1)
    purged = retention.purge_older_than(CUTOFF)
    assert (purged.responses, purged.complete) == (2, True)
    assert database.get_response("resp_a") is None and database.get_response("resp_b") is None
    assert database.count_items() == 0


def test_a_chain_continued_recently_keeps_its_old_ancestors(database):
    save(database, "resp_old")
    save(database, "resp_new", previous="resp_old", depth=1, age=500)
    assert retention.purge_older_than(CUTOFF).responses == 0
    parent = database.load_parent("resp_new")
    assert [f.response_id for f in parent.fragments] == ["resp_old", "resp_new"]


def test_a_response_in_progress_is_never_purged(database):
    leases.register_worker("w1", "host", 1, 30)
    database.start_response(make_turn("resp_running", status="in_progress", outputs=[]), "w1")
    assert retention.purge_older_than(CREATED_AT + 10**9).responses == 0


def test_old_conversations_go_once_nothing_in_them_is_recent(database):
    database.create_conversation("conv_old", {}, [])
    assert retention.purge_older_than(0).conversations == 0
    assert retention.purge_older_than(10**12).conversations == 1
    assert database.get_conversation("conv_old") is None


def test_one_caller_wins_each_pass(database):
    assert retention.claim_pass(3600) is True
    assert retention.claim_pass(3600) is False
    assert retention.claim_pass(0) is True


def test_a_ttl_of_zero_keeps_everything_and_claims_no_pass(database):
    save(database, "resp_ancient")
    Retention(ttl_days=0, interval_s=0).run_if_due()
    assert database.get_response("resp_ancient") is not None
    assert retention.claim_pass(3600) is True      # no pass was claimed before


def test_a_due_pass_purges_what_is_older_than_the_ttl(database):
    save(database, "resp_ancient")
    Retention(ttl_days=1, interval_s=0).run_if_due()
    assert database.get_response("resp_ancient") is None
