"""The repository contract, one behaviour per test, run against SQLite and PostgreSQL."""
from __future__ import annotations

import copy
import json
import threading

import pytest
from peewee import IntegrityError

from storage.db import connect_database, db
from storage.migrations import SCHEMA_VERSION, current_version, migrate
from storage.models import ALL_MODELS, ItemRecord, ResponseRecord, SchemaVersion
from storage.repository import ParentContext, Repository
from tests.storage.builders import make_turn, message, save_chain
from tests.storage.conftest import drop_all_tables

BOOKKEEPING_KEYS = {"seq", "kind", "tenant", "position", "response_id", "conversation_id", "item_id", "depth"}


def count_rows(model, *conditions) -> int:
    with db.connection_context():
        query = model.select()
        if conditions:
            query = query.where(*conditions)
        return query.count()


def item_rows(response_id: str) -> list[ItemRecord]:
    with db.connection_context():
        return list(ItemRecord.select().where(ItemRecord.response_id == response_id).order_by(ItemRecord.seq))


def ids_of(page) -> list[str]:
    return [item["id"] for item in page.data]


def rich_output() -> list[dict]:
    return [
        {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Denke nach… 🤔"}],
         "status": "completed"},
        {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "lookup", "status": "completed",
         "arguments": json.dumps({"city": "Zürich", "nested": {"list": [1, 2.5, None, True, "☃"]}})},
        {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "annotations": [], "logprobs": [],
                      "text": "日本語 · العربية · עברית · e\u0301 · 👩‍👩‍👧 · \"quoted\" \\ back\\slash\n\ttab"}]},
    ]


# -- responses: save / get --------------------------------------------------------------------------
def test_saved_response_round_trips_exactly(database):
    turn = make_turn("resp_rich", outputs=rich_output(), metadata={"clé": "välue", "emoji": "🚀"},
                     temperature=0.7, top_p=1, parallel_tool_calls=True, error=None,
                     text={"format": {"type": "text"}}, big=2 ** 53 + 1, small=-0.000123)
    expected = copy.deepcopy(turn.response)
    database.save_response(turn)
    got = database.get_response("resp_rich")
    assert got == expected
    assert type(got["big"]) is int and type(got["top_p"]) is int and type(got["temperature"]) is float
    assert got["output"][2]["content"][0]["text"] == expected["output"][2]["content"][0]["text"]


def test_saved_response_keeps_key_order(database):
    turn = make_turn("resp_order", outputs=[{"type": "message", "id": "msg_z", "status": "completed",
                                             "role": "assistant", "content": []}])
    expected = json.dumps(turn.response)
    database.save_response(turn)
    assert json.dumps(database.get_response("resp_order")) == expected


def test_text_with_nul_character_is_stored(database):
    item = {"id": "fco_1", "type": "function_call_output", "call_id": "call_1", "output": "bin\u0000ary"}
    database.save_response(make_turn("resp_nul", inputs=[item]))
    assert database.list_input_items("resp_nul", after=None, limit=10, order="asc").data == [item]


def test_get_unknown_response_returns_none(database):
    assert database.get_response("resp_missing") is None


def test_responses_are_scoped_to_their_tenant(database):
    Repository("acme").save_response(make_turn("resp_acme"))
    assert Repository("acme").get_response("resp_acme")["id"] == "resp_acme"
    assert database.get_response("resp_acme") is None
    assert database.load_parent("resp_acme") is None
    assert Repository("other").list_input_items("resp_acme", after=None, limit=10, order="asc") is None


def test_bookkeeping_lives_in_columns(database):
    Repository("acme").save_response(make_turn("resp_a", depth=0, conversation_id="conv_1"))
    Repository("acme").save_response(make_turn("resp_b", previous="resp_a", depth=1, conversation_id="conv_1"))
    with db.connection_context():
        row = ResponseRecord.get_by_id("resp_b")
        items = list(ItemRecord.select().where(ItemRecord.response_id == "resp_b").order_by(ItemRecord.seq))
    assert (row.tenant, row.depth, row.previous_response_id, row.conversation_id) == ("acme", 1, "resp_a", "conv_1")
    assert [(i.kind, i.tenant, i.conversation_id, i.position, i.item_id) for i in items] == [
        ("input", "acme", "conv_1", 0, "msg_in_resp_b"), ("output", "acme", "conv_1", 0, "msg_out_resp_b")]


# -- load_parent ---------------------------------------------------------------------------------------
def test_load_parent_returns_the_parents_context(database):
    tools = [{"type": "function", "name": "late_tool", "parameters": {"type": "object"}}]
    request = {"model": "fake-model", "tools": [{"type": "function", "name": "f"}], "tool_choice": "auto",
               "text": {"format": {"type": "text"}}, "instructions": "Sé breve"}
    root = make_turn("resp_root")
    leaf = make_turn("resp_leaf", previous="resp_root", depth=1, request=request, loaded_tools=tools,
                     conversation_id=None)
    database.save_response(root)
    database.save_response(leaf)
    parent = database.load_parent("resp_leaf")
    assert isinstance(parent, ParentContext)
    assert parent.response == leaf.response
    assert parent.request == request
    assert parent.loaded_tools == tools
    assert parent.depth == 1
    assert parent.conversation_id is None


def test_load_parent_returns_fragments_of_the_whole_chain_root_to_leaf(database):
    ids = [f"resp_{n}" for n in range(5)]
    turns = save_chain(database, ids)
    parent = database.load_parent("resp_4")
    assert [f[:3] for f in parent.fragments] == [(t.response["id"], t.chat_fragment, t.fragment_version) for t in turns]


def test_load_parent_of_a_branch_follows_only_its_own_ancestors(database):
    save_chain(database, ["resp_a", "resp_b"])
    database.save_response(make_turn("resp_c", previous="resp_a", depth=1))
    assert [f.response_id for f in database.load_parent("resp_c").fragments] == ["resp_a", "resp_c"]
    assert [f.response_id for f in database.load_parent("resp_b").fragments] == ["resp_a", "resp_b"]


def test_load_parent_returns_the_conversation_id(database):
    database.save_response(make_turn("resp_c", conversation_id="conv_1"))
    assert database.load_parent("resp_c").conversation_id == "conv_1"


def test_load_parent_of_unknown_response_returns_none(database):
    assert database.load_parent("resp_missing") is None


def test_load_parent_keeps_empty_fragments(database):
    database.save_response(make_turn("resp_empty", chat_fragment=""))
    assert [f[:3] for f in database.load_parent("resp_empty").fragments] == [("resp_empty", "", 2)]


# -- items ---------------------------------------------------------------------------------------------
def test_items_are_stored_once_each_with_kind_and_stable_ids(database):
    inputs = [message("msg_u1", "user", "one"), message("msg_u2", "user", "two")]
    outputs = rich_output()
    database.save_response(make_turn("resp_items", inputs=inputs, outputs=outputs))
    rows = item_rows("resp_items")
    assert [(r.kind, r.item_id, r.position) for r in rows] == [
        ("input", "msg_u1", 0), ("input", "msg_u2", 1),
        ("output", "rs_1", 0), ("output", "fc_1", 1), ("output", "msg_1", 2)]
    assert count_rows(ItemRecord) == 5
    assert [r.seq for r in rows] == [r.seq for r in item_rows("resp_items")]


def test_item_json_holds_no_bookkeeping(database):
    inputs = [message("msg_u1", "user", "one"), {"type": "function_call_output", "call_id": "c", "output": "ok",
                                                 "id": "fco_1"}]
    outputs = rich_output()
    given = copy.deepcopy(inputs + outputs)
    database.save_response(make_turn("resp_items", inputs=inputs, outputs=outputs))
    stored = [r.data for r in item_rows("resp_items")]
    assert stored == given
    for data in stored:
        assert not set(data) & BOOKKEEPING_KEYS


def test_saving_does_not_mutate_the_given_objects(database):
    turn = make_turn("resp_same", outputs=rich_output())
    before = copy.deepcopy((turn.response, turn.request, turn.input_items))
    database.save_response(turn)
    assert (turn.response, turn.request, turn.input_items) == before


def test_duplicate_public_item_ids_across_responses_are_accepted(database):
    replayed = message("msg_replayed", "user", "same id twice")
    first, _ = save_chain(database, ["resp_1", "resp_2"], inputs=[replayed])
    assert database.list_input_items("resp_1", after=None, limit=10, order="asc").data == [replayed]
    listed = database.list_input_items("resp_2", after=None, limit=10, order="asc").data
    assert listed == [replayed, *first.response["output"], replayed]     # the chain's, then its own
    assert count_rows(ItemRecord, ItemRecord.item_id == "msg_replayed") == 2


def test_long_client_item_ids_are_stored(database):
    item = {"id": "fc_" + "a" * 197, "type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}
    database.save_response(make_turn("resp_long", inputs=[item]))
    assert database.list_input_items("resp_long", after=None, limit=5, order="asc").data == [item]


def test_many_items_keep_their_order_across_insert_batches(database):
    inputs = [message(f"msg_{n:04d}", "user", str(n)) for n in range(700)]
    outputs = [message(f"out_{n:04d}", "assistant", str(n)) for n in range(300)]
    database.save_response(make_turn("resp_big", inputs=inputs, outputs=outputs))
    assert database.chain_items("resp_big")["resp_big"] == inputs + outputs
    page = database.list_input_items("resp_big", after="msg_0597", limit=100, order="asc")
    assert (ids_of(page), page.has_more) == ([f"msg_{n:04d}" for n in range(598, 698)], True)
    assert database.count_items() == 1000


def test_concurrent_saves_all_succeed(database):
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        try:
            previous = None
            for n in range(15):
                rid = f"resp_{w}_{n}"
                database.save_response(make_turn(rid, previous=previous, depth=n))
                assert database.load_parent(rid).depth == n
                previous = rid
        except BaseException as error:  # noqa: BLE001 — reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert count_rows(ResponseRecord) == 90
    assert len(database.load_parent("resp_5_14").fragments) == 15


# -- list_input_items ----------------------------------------------------------------------------------
@pytest.fixture
def five_inputs(database):
    inputs = [message(f"msg_{n}", "user", f"input {n}") for n in range(5)]
    database.save_response(make_turn("resp_list", inputs=inputs))
    return [i["id"] for i in inputs]


def test_list_input_items_ascending_returns_only_inputs_in_order(database, five_inputs):
    page = database.list_input_items("resp_list", after=None, limit=20, order="asc")
    assert ids_of(page) == five_inputs
    assert page.has_more is False


def test_list_input_items_descending(database, five_inputs):
    page = database.list_input_items("resp_list", after=None, limit=20, order="desc")
    assert ids_of(page) == five_inputs[::-1]


def test_list_input_items_limit_sets_has_more_and_cursor_ids(database, five_inputs):
    page = database.list_input_items("resp_list", after=None, limit=2, order="asc").to_dict()
    assert page == {"object": "list", "data": page["data"], "first_id": "msg_0", "last_id": "msg_1", "has_more": True}
    assert [i["id"] for i in page["data"]] == ["msg_0", "msg_1"]


def test_list_input_items_pages_through_with_after(database, five_inputs):
    for order, expected in (("asc", five_inputs), ("desc", five_inputs[::-1])):
        seen, after, has_more = [], None, True
        while has_more:
            page = database.list_input_items("resp_list", after=after, limit=2, order=order).to_dict()
            seen += [i["id"] for i in page["data"]]
            after, has_more = page["last_id"], page["has_more"]
        assert seen == expected, order


def test_list_input_items_exact_limit_has_no_more(database, five_inputs):
    page = database.list_input_items("resp_list", after="msg_2", limit=2, order="asc")
    assert (ids_of(page), page.has_more) == (["msg_3", "msg_4"], False)


def test_list_input_items_empty_page_to_dict(database, five_inputs):
    page = database.list_input_items("resp_list", after="msg_4", limit=2, order="asc").to_dict()
    assert page == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_list_input_items_lists_the_chain_first_then_the_own_input(database):
    turns = save_chain(database, ["resp_a", "resp_b", "resp_c"], inputs=[message("msg_x", "user", "x")])
    page = database.list_input_items("resp_c", after=None, limit=20, order="asc")
    expected = [item for turn in turns[:2] for item in turn.input_items + turn.response["output"]]
    assert page.data == expected + turns[2].input_items


def test_list_input_items_pages_between_after_and_before(database, five_inputs):
    page = database.list_input_items("resp_list", after="msg_0", before="msg_4", limit=2, order="asc")
    assert (ids_of(page), page.has_more) == (["msg_1", "msg_2"], True)
    page = database.list_input_items("resp_list", after=None, before="msg_1", limit=10, order="desc")
    assert (ids_of(page), page.has_more) == (["msg_4", "msg_3", "msg_2"], False)
    assert database.list_input_items("resp_list", after=None, before="msg_nope", limit=2, order="asc").data == []


def test_list_input_items_after_unknown_id_is_empty(database, five_inputs):
    page = database.list_input_items("resp_list", after="msg_nope", limit=2, order="asc")
    assert (page.data, page.has_more) == ([], False)


def test_list_input_items_of_unknown_response_returns_none(database):
    assert database.list_input_items("resp_missing", after=None, limit=20, order="desc") is None


# -- delete --------------------------------------------------------------------------------------------
def test_delete_response_hides_it(database):
    database.save_response(make_turn("resp_del"))
    assert database.delete_response("resp_del") is True
    assert database.get_response("resp_del") is None
    assert database.load_parent("resp_del") is None
    assert database.list_input_items("resp_del", after=None, limit=20, order="asc") is None


def test_delete_unknown_response_returns_false(database):
    assert database.delete_response("resp_missing") is False


def test_delete_twice_returns_false_the_second_time(database):
    save_chain(database, ["resp_a", "resp_b"])
    assert database.delete_response("resp_a") is True
    assert database.delete_response("resp_a") is False


def test_child_saved_before_delete_still_loads_its_full_chain(database):
    turns = save_chain(database, ["resp_a", "resp_b", "resp_c"])
    assert database.delete_response("resp_a") is True
    assert database.delete_response("resp_b") is True
    parent = database.load_parent("resp_c")
    assert parent.response == turns[2].response
    assert [f[:3] for f in parent.fragments] == [(t.response["id"], t.chat_fragment, t.fragment_version) for t in turns]
    assert list(database.chain_items("resp_c")) == ["resp_a", "resp_b", "resp_c"]


def test_deleting_a_leaf_purges_its_deleted_ancestors(database):
    save_chain(database, ["resp_a", "resp_b", "resp_c"])
    database.save_response(make_turn("resp_other"))
    database.delete_response("resp_a")
    database.delete_response("resp_b")
    assert count_rows(ResponseRecord) == 4
    assert database.delete_response("resp_c") is True
    assert count_rows(ResponseRecord) == 1
    assert count_rows(ItemRecord, ItemRecord.response_id.in_(["resp_a", "resp_b", "resp_c"])) == 0
    assert count_rows(ItemRecord) == 2          # resp_other's input and output
    assert database.get_response("resp_other") is not None


def test_deleting_a_leaf_keeps_live_ancestors(database):
    save_chain(database, ["resp_a", "resp_b", "resp_c"])
    database.delete_response("resp_c")
    assert count_rows(ResponseRecord) == 2
    assert len(database.load_parent("resp_b").fragments) == 2
    assert count_rows(ItemRecord) == 4


def test_deleted_ancestor_with_another_live_child_is_kept(database):
    save_chain(database, ["resp_a", "resp_b"])
    database.save_response(make_turn("resp_b2", previous="resp_a", depth=1))
    database.delete_response("resp_a")
    database.delete_response("resp_b")
    assert [f.response_id for f in database.load_parent("resp_b2").fragments] == ["resp_a", "resp_b2"]
    assert count_rows(ResponseRecord) == 2


def test_deleting_a_conversation_response_keeps_the_conversations_items(database):
    database.create_conversation("conv_1", {}, [message("msg_seed", "user", "seed")])
    database.save_response(make_turn("resp_conv", conversation_id="conv_1"))
    database.delete_response("resp_conv")
    assert count_rows(ResponseRecord) == 0
    assert [i["id"] for i in database.conversation_items("conv_1")] == ["msg_seed", "msg_in_resp_conv",
                                                                         "msg_out_resp_conv"]


# -- chain_items ---------------------------------------------------------------------------------------
def test_chain_items_groups_items_by_response_in_chain_order(database):
    ids = ["resp_a", "resp_b", "resp_c"]
    turns = save_chain(database, ids, outputs=None)
    database.save_response(make_turn("resp_d", previous="resp_c", depth=3,
                                     inputs=[message("i1", "user", "x"), message("i2", "user", "y")],
                                     outputs=rich_output()))
    grouped = database.chain_items("resp_d")
    assert list(grouped) == ids + ["resp_d"]
    for turn in turns:
        assert grouped[turn.response["id"]] == turn.input_items + turn.response["output"]
    assert [i["id"] for i in grouped["resp_d"]] == ["i1", "i2", "rs_1", "fc_1", "msg_1"]
    assert grouped["resp_d"][4] == rich_output()[2]


def test_chain_items_of_unknown_response_is_empty(database):
    assert database.chain_items("resp_missing") == {}


# -- conversations -------------------------------------------------------------------------------------
def test_create_and_get_conversation(database):
    created = database.create_conversation("conv_1", {"topic": "Grüße"}, [message("msg_1", "user", "hi")])
    assert created == {"id": "conv_1", "object": "conversation", "created_at": created["created_at"],
                       "metadata": {"topic": "Grüße"}}
    assert isinstance(created["created_at"], int)
    assert database.get_conversation("conv_1") == created


def test_get_unknown_conversation_returns_none(database):
    assert database.get_conversation("conv_missing") is None
    assert database.conversation_items("conv_missing") is None
    assert database.list_conversation_items("conv_missing", after=None, limit=20, order="asc") is None


def test_conversations_are_scoped_to_their_tenant(database):
    Repository("acme").create_conversation("conv_acme", {}, [])
    assert database.get_conversation("conv_acme") is None
    assert Repository("acme").get_conversation("conv_acme")["id"] == "conv_acme"


def test_update_conversation_metadata(database):
    created = database.create_conversation("conv_1", {"a": "1"}, [])
    updated = database.update_conversation("conv_1", {"b": "2"})
    assert updated == {**created, "metadata": {"b": "2"}}
    assert database.get_conversation("conv_1") == updated


def test_update_unknown_conversation_returns_none(database):
    assert database.update_conversation("conv_missing", {"a": "b"}) is None


@pytest.fixture
def conversation(database):
    items = [message(f"msg_{n}", "user", f"item {n}") for n in range(5)]
    database.create_conversation("conv_1", {}, items)
    return items


def test_list_conversation_items_ascending_and_descending(database, conversation):
    ids = [i["id"] for i in conversation]
    assert ids_of(database.list_conversation_items("conv_1", after=None, limit=20, order="asc")) == ids
    assert ids_of(database.list_conversation_items("conv_1", after=None, limit=20, order="desc")) == ids[::-1]


def test_list_conversation_items_pages_with_after(database, conversation):
    first = database.list_conversation_items("conv_1", after=None, limit=2, order="desc").to_dict()
    assert (first["first_id"], first["last_id"], first["has_more"]) == ("msg_4", "msg_3", True)
    second = database.list_conversation_items("conv_1", after="msg_3", limit=2, order="desc")
    assert (ids_of(second), second.has_more) == (["msg_2", "msg_1"], True)
    last = database.list_conversation_items("conv_1", after="msg_1", limit=2, order="desc")
    assert (ids_of(last), last.has_more) == (["msg_0"], False)


def test_list_conversation_items_after_unknown_id_is_empty(database, conversation):
    page = database.list_conversation_items("conv_1", after="msg_nope", limit=2, order="asc")
    assert (page.data, page.has_more) == ([], False)


def test_conversation_items_round_trip_exactly(database, conversation):
    assert database.conversation_items("conv_1") == conversation


def test_add_conversation_items_appends(database, conversation):
    extra = [message("msg_new", "assistant", "réponse")]
    assert database.add_conversation_items("conv_1", extra) is True
    assert database.conversation_items("conv_1") == conversation + extra


def test_add_items_to_unknown_conversation_returns_false(database):
    assert database.add_conversation_items("conv_missing", [message("m", "user", "x")]) is False
    assert count_rows(ItemRecord) == 0


def test_responses_in_a_conversation_add_their_items_to_it(database, conversation):
    database.save_response(make_turn("resp_c", conversation_id="conv_1"))
    assert [i["id"] for i in database.conversation_items("conv_1")][-2:] == ["msg_in_resp_c", "msg_out_resp_c"]


def test_get_conversation_item(database, conversation):
    assert database.get_conversation_item("conv_1", "msg_2") == conversation[2]
    assert database.get_conversation_item("conv_1", "msg_nope") is None
    assert database.get_conversation_item("conv_missing", "msg_2") is None


def test_delete_conversation_item(database, conversation):
    assert database.delete_conversation_item("conv_1", "msg_2") is True
    assert database.get_conversation_item("conv_1", "msg_2") is None
    assert [i["id"] for i in database.conversation_items("conv_1")] == ["msg_0", "msg_1", "msg_3", "msg_4"]
    assert count_rows(ItemRecord) == 4


def test_delete_unknown_conversation_item_returns_false(database, conversation):
    assert database.delete_conversation_item("conv_1", "msg_nope") is False
    assert database.delete_conversation_item("conv_missing", "msg_0") is False


def test_deleting_a_conversation_item_owned_by_a_response_only_detaches_it(database, conversation):
    database.save_response(make_turn("resp_c", conversation_id="conv_1"))
    assert database.delete_conversation_item("conv_1", "msg_in_resp_c") is True
    assert database.get_conversation_item("conv_1", "msg_in_resp_c") is None
    page = database.list_input_items("resp_c", after=None, limit=10, order="asc")
    assert ids_of(page) == ["msg_0", "msg_1", "msg_2", "msg_3", "msg_4", "msg_in_resp_c"]  # the conversation's first
    assert list(database.chain_items("resp_c")) == ["resp_c"]


def test_delete_conversation(database, conversation):
    assert database.delete_conversation("conv_1") is True
    assert database.get_conversation("conv_1") is None
    assert database.update_conversation("conv_1", {"a": "b"}) is None
    assert database.delete_conversation("conv_1") is False
    assert count_rows(ItemRecord) == 0


def test_delete_conversation_keeps_its_responses_items(database, conversation):
    database.save_response(make_turn("resp_c", conversation_id="conv_1"))
    database.delete_conversation("conv_1")
    assert ids_of(database.list_input_items("resp_c", after=None, limit=10, order="asc")) == ["msg_in_resp_c"]
    assert count_rows(ItemRecord) == 2
    assert count_rows(ItemRecord, ItemRecord.conversation_id == "conv_1") == 0


def test_delete_unknown_conversation_returns_false(database):
    assert database.delete_conversation("conv_missing") is False


# -- schema --------------------------------------------------------------------------------------------
def recorded_versions() -> list[int]:
    with db.connection_context():
        return [row.version for row in SchemaVersion.select().order_by(SchemaVersion.version)]


def test_migrate_records_the_schema_version(database):
    assert recorded_versions() == list(range(1, SCHEMA_VERSION + 1))
    with db.connection_context():
        assert current_version() == SCHEMA_VERSION
        assert {m._meta.table_name for m in ALL_MODELS} <= set(db.get_tables())


def test_migrate_is_idempotent_and_keeps_data(database):
    database.save_response(make_turn("resp_keep"))
    assert migrate() == SCHEMA_VERSION
    assert migrate() == SCHEMA_VERSION
    assert recorded_versions() == list(range(1, SCHEMA_VERSION + 1))
    assert database.get_response("resp_keep")["id"] == "resp_keep"


def test_concurrent_migrate_applies_each_step_once(database):
    drop_all_tables()
    db.close_all()
    workers = 4
    barrier = threading.Barrier(workers)
    results: list[int] = []
    errors: list[BaseException] = []
    connections: set[int] = set()

    def run() -> None:
        try:
            with db.connection_context():           # all four hold a connection at once …
                connections.add(id(db.connection()))
                barrier.wait(10)                    # … then start migrating together
                results.append(migrate())
        except BaseException as error:  # noqa: BLE001 — reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert results == [SCHEMA_VERSION] * workers
    assert len(connections) == workers        # each worker had a connection of its own
    assert recorded_versions() == list(range(1, SCHEMA_VERSION + 1))
    database.save_response(make_turn("resp_after"))
    assert database.get_response("resp_after") is not None


def test_concurrent_migrate_on_a_brand_new_sqlite_file(tmp_path):
    """SQLite only: a fresh file (not yet WAL, no tables) with four workers starting together."""
    fresh = connect_database(f"sqlite:///{tmp_path / 'fresh' / 'new.db'}")
    bound = db.obj
    db.initialize(fresh)
    try:
        barrier = threading.Barrier(4)
        results, errors = [], []

        def run() -> None:
            try:
                barrier.wait(10)
                results.append(migrate())
            except BaseException as error:  # noqa: BLE001
                errors.append(error)

        threads = [threading.Thread(target=run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert results == [SCHEMA_VERSION] * 4
        assert recorded_versions() == list(range(1, SCHEMA_VERSION + 1))
    finally:
        fresh.close_all()
        db.initialize(bound)


# -- atomicity -----------------------------------------------------------------------------------------
def test_duplicate_response_id_fails_and_stores_nothing_more(database):
    first = make_turn("resp_dup")
    database.save_response(first)
    items_before = count_rows(ItemRecord)
    second = make_turn("resp_dup", inputs=[message("msg_x", "user", "x")], outputs=[message("msg_y", "assistant", "y")])
    with pytest.raises(IntegrityError):
        database.save_response(second)
    assert count_rows(ItemRecord) == items_before
    assert count_rows(ItemRecord, ItemRecord.item_id.in_(["msg_x", "msg_y"])) == 0
    assert database.get_response("resp_dup") == first.response
    database.save_response(make_turn("resp_next"))         # the pooled connection is usable again
    assert database.get_response("resp_next") is not None


def test_failure_after_the_response_row_rolls_everything_back(database):
    bad = make_turn("resp_bad", inputs=[message("msg_ok", "user", "fine"), {"id": "msg_bad", "payload": object()}])
    with pytest.raises(TypeError):
        database.save_response(bad)        # the response row is inserted, then the items fail to encode
    assert database.get_response("resp_bad") is None
    assert count_rows(ResponseRecord) == 0
    assert count_rows(ItemRecord) == 0
    database.save_response(make_turn("resp_good"))
    assert count_rows(ResponseRecord) == 1


def test_tables_are_dropped_by_the_fixture_helper(database):
    drop_all_tables()
    with db.connection_context():
        assert not {m._meta.table_name for m in ALL_MODELS} & set(db.get_tables())
    migrate()   # leave the schema as the fixture expects it


def test_chain_walk_takes_checkpoint_segments_and_skips_their_levels(database):
    turns = [make_turn("resp_0"), make_turn("resp_1", previous="resp_0", depth=1),
             make_turn("resp_2", previous="resp_1", depth=2), make_turn("resp_3", previous="resp_2", depth=3)]
    # resp_2 is a checkpoint covering levels 1..2 whose level below is resp_0.
    turns[2].segment = f"{turns[1].chat_fragment},{turns[2].chat_fragment}"
    turns[2].skip_parent = "resp_0"
    for turn in turns:
        database.save_response(turn)
    parent = database.load_parent("resp_3")
    assert [(f.response_id, f.segment) for f in parent.fragments] == [
        ("resp_0", False), ("resp_2", True), ("resp_3", False)]
    assert ",".join(f.text for f in parent.fragments) == ",".join(t.chat_fragment for t in turns)


def test_migrating_a_version_2_database_adds_the_checkpoint_columns(database):
    from playhouse.migrate import SchemaMigrator, migrate as schema_migrate
    with db.connection_context():
        schema_migrate(*(SchemaMigrator.from_database(db.obj).drop_column("responses", name)
                         for name in ("segment", "skip_parent")))
        SchemaVersion.delete().where(SchemaVersion.version > 2).execute()
        assert current_version() == 2
    assert migrate() == SCHEMA_VERSION
    with db.connection_context():
        assert {"segment", "skip_parent"} <= {c.name for c in db.get_columns("responses")}
        assert current_version() == SCHEMA_VERSION
    database.save_response(make_turn("resp_after_migration"))
    assert database.get_response("resp_after_migration")["id"] == "resp_after_migration"


def index_names(table: str) -> set[str]:
    with db.connection_context():
        return {index.name for index in db.get_indexes(table)}


def test_only_indexes_that_queries_use_are_kept(database):
    assert {"responses_children"} <= index_names("responses")
    assert not {"responserecord_tenant", "responserecord_conversation_id",
                "responserecord_previous_response_id"} & index_names("responses")
    assert {"items_conversation", "itemrecord_response_id"} <= index_names("items")
    assert not {"itemrecord_item_id", "itemrecord_conversation_id"} & index_names("items")


def test_migrating_a_version_3_database_replaces_its_indexes(database):
    with db.connection_context():
        for statement in ("DROP INDEX IF EXISTS responses_children", "DROP INDEX IF EXISTS items_conversation",
                          "CREATE INDEX responserecord_tenant ON responses (tenant)",
                          "CREATE INDEX responserecord_previous_response_id ON responses (previous_response_id)",
                          "CREATE INDEX itemrecord_item_id ON items (item_id)",
                          "CREATE INDEX itemrecord_conversation_id ON items (conversation_id)"):
            db.execute_sql(statement)
        SchemaVersion.delete().where(SchemaVersion.version > 3).execute()
        assert current_version() == 3
    database.save_response(make_turn("resp_before"))
    assert migrate() == SCHEMA_VERSION
    assert "responses_children" in index_names("responses") and "responserecord_tenant" not in index_names("responses")
    assert "items_conversation" in index_names("items") and "itemrecord_item_id" not in index_names("items")
    database.save_response(make_turn("resp_after", previous="resp_before", depth=1))
    assert database.delete_response("resp_before")          # has a child: tombstoned, child keeps working
    assert [f.response_id for f in database.load_parent("resp_after").fragments] == ["resp_before", "resp_after"]


# -- a fragment per upstream kind (schema v5) ----------------------------------------------------------
def test_load_parent_returns_each_upstream_kinds_fragment(database):
    turns = [make_turn("resp_a"), make_turn("resp_b", previous="resp_a", depth=1)]
    for turn in turns:
        turn.responses_fragment = f'{{"type":"message","role":"user","content":"{turn.response["id"]}"}}'
        database.save_response(turn)
    fragments = database.load_parent("resp_b").fragments
    assert [f.for_kind("chat") for f in fragments] == [t.chat_fragment for t in turns]
    assert [f.for_kind("responses") for f in fragments] == [t.responses_fragment for t in turns]


def test_a_checkpoint_carries_a_segment_for_each_kind(database):
    turns = [make_turn("resp_0"), make_turn("resp_1", previous="resp_0", depth=1),
             make_turn("resp_2", previous="resp_1", depth=2)]
    for turn in turns:
        turn.responses_fragment = f'"{turn.response["id"]}"'
    turns[2].segment = f"{turns[1].chat_fragment},{turns[2].chat_fragment}"
    turns[2].responses_segment = f"{turns[1].responses_fragment},{turns[2].responses_fragment}"
    turns[2].skip_parent = "resp_0"
    for turn in turns:
        database.save_response(turn)
    fragments = database.load_parent("resp_2").fragments
    assert [f.response_id for f in fragments] == ["resp_0", "resp_2"]
    assert ",".join(f.for_kind("responses") for f in fragments) == '"resp_0","resp_1","resp_2"'


def test_migrating_a_version_4_database_adds_the_responses_fragment_columns(database):
    from playhouse.migrate import SchemaMigrator, migrate as schema_migrate
    with db.connection_context():
        schema_migrate(*(SchemaMigrator.from_database(db.obj).drop_column("responses", name)
                         for name in ("responses_fragment", "responses_segment")))
        SchemaVersion.delete().where(SchemaVersion.version > 4).execute()
        ResponseRecord.insert(id="resp_v4", created_at=1, status="completed", model="m", fragment_version=2,
                              response={"id": "resp_v4", "output": []}, request={},
                              chat_fragment='{"role":"user","content":"old"}').execute()  # the columns v4 had
    assert migrate() == SCHEMA_VERSION
    [old] = database.load_parent("resp_v4").fragments
    assert old.for_kind("chat") == '{"role":"user","content":"old"}'
    assert old.for_kind("responses") is None  # written before: the engine re-translates its items
