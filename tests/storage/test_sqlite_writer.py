"""SQLite: responses are written through one connection per process (storage/db.py), whatever the
thread, while reads keep using the pool; a forked worker opens a writer of its own."""
from __future__ import annotations

import multiprocessing
import threading

import pytest
from peewee import IntegrityError

from storage.db import GatewaySqliteDatabase, connect_database, db
from storage.migrations import migrate
from storage.repository import Repository
from tests.storage.builders import make_turn


@pytest.fixture
def sqlite_repository(tmp_path):
    previous = db.obj
    db.initialize(connect_database(f"sqlite:///{tmp_path / 'writer.db'}"))
    try:
        migrate()
        yield Repository()
    finally:
        db.close_all()
        db.initialize(previous)


def writer_connections(repository: Repository, threads: int, saves: int) -> set[int]:
    """Save from several threads at once; the ids of the sqlite3 connections the writes used."""
    used: set[int] = set()
    writer = db.obj.writer()
    execute = writer.execute_sql

    def spy(sql, params=None):
        used.add(id(writer.connection()))
        return execute(sql, params)

    writer.execute_sql = spy
    barrier = threading.Barrier(threads)

    def run(n: int) -> None:
        barrier.wait(10)
        for i in range(saves):
            repository.save_response(make_turn(f"resp_{n}_{i}"))

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    del writer.execute_sql
    return used


def test_sqlite_urls_get_a_database_with_a_writer(sqlite_repository):
    assert isinstance(db.obj, GatewaySqliteDatabase)
    assert db.obj.writer() is db.obj.writer()


def test_writes_from_many_threads_share_one_connection_and_are_read_through_the_pool(sqlite_repository):
    used = writer_connections(sqlite_repository, threads=6, saves=5)
    assert len(used) == 1
    assert all(sqlite_repository.get_response(f"resp_{n}_{i}") is not None for n in range(6) for i in range(5))
    assert sqlite_repository.list_input_items("resp_5_4", limit=10, order="asc", after=None).data


def test_a_failed_write_rolls_back_and_the_writer_goes_on(sqlite_repository):
    sqlite_repository.save_response(make_turn("resp_once"))
    with pytest.raises(IntegrityError):
        sqlite_repository.save_response(make_turn("resp_once"))
    assert not db.obj.writer().in_transaction()
    sqlite_repository.save_response(make_turn("resp_next"))
    assert sqlite_repository.get_response("resp_next") is not None


def test_close_all_closes_the_writer_and_the_next_write_reopens_it(sqlite_repository):
    sqlite_repository.save_response(make_turn("resp_before"))
    db.close_all()
    assert db.obj.writer().is_closed()
    sqlite_repository.save_response(make_turn("resp_after"))
    assert sqlite_repository.get_response("resp_after") is not None


def _save_in_child(parent_writer_id: int, results) -> None:
    repository = Repository()
    repository.save_response(make_turn("resp_from_child"))
    results.put(id(db.obj.writer()) != parent_writer_id)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_forked_worker_writes_through_a_writer_of_its_own(sqlite_repository):
    sqlite_repository.save_response(make_turn("resp_from_parent"))  # the parent's writer is open
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_save_in_child, args=(id(db.obj.writer()), results))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert results.get(timeout=5) is True
    assert sqlite_repository.get_response("resp_from_child") is not None
    sqlite_repository.save_response(make_turn("resp_parent_again"))  # the parent's writer still works
