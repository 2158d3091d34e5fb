"""Erasure records in the batches table (storage/erasures.py, contract 17.3): one open erasure per user,
the users being erased now, and the record keeping only a hash of the user once closed."""

from __future__ import annotations

from clickstream.records import Erasure, ErasureCounts
from clickstream.storage import Storage
from clickstream.storage.erasures import LOCK_PREFIX
from clickstream.storage.plumbing import s


def _erasure(erasure_id: str, user_key: str = "k" * 64) -> Erasure:
    return Erasure(erasure_id, user_key, "pending", 1_000, stored_user_id="alice")


def test_a_second_request_for_the_same_user_returns_the_open_erasure(storage: Storage) -> None:
    first = storage.erasures.request(_erasure("e-1"))
    again = storage.erasures.request(_erasure("e-2"))
    other = storage.erasures.request(_erasure("e-3", user_key="o" * 64))

    assert first.erasure_id == again.erasure_id == "e-1"
    assert other.erasure_id == "e-3"
    assert storage.erasures.get("e-2") is None


def test_begin_marks_the_user_active_and_close_keeps_only_the_hash(storage: Storage) -> None:
    storage.erasures.request(_erasure("e-1"))
    running = storage.erasures.begin("e-1", now=2_000)
    again = storage.erasures.begin("e-1", now=3_000)
    assert running is not None
    assert again is not None
    assert (running.status, running.started_at, again.started_at) == ("running", 2_000, 2_000)
    assert storage.erasures.active_user_keys() == {"k" * 64}

    storage.erasures.record_counts("e-1", ErasureCounts(sessions=3, events=7))
    closed = storage.erasures.close("e-1", "done", now=4_000)

    assert closed is not None
    assert (closed.status, closed.completed_at, closed.sessions, closed.events) == ("done", 4_000, 3, 7)
    assert closed.stored_user_id is None
    assert closed.user_key == "k" * 64
    assert storage.erasures.active_user_keys() == frozenset()
    # Closed: counts no longer change, a repeated close changes nothing, and a new request is a new erasure.
    storage.erasures.record_counts("e-1", ErasureCounts(sessions=9))
    assert storage.erasures.close("e-1", "failed", now=5_000) == closed
    assert storage.erasures.request(_erasure("e-4")).erasure_id == "e-4"


def test_a_request_that_stopped_after_its_lock_is_completed_by_the_next(storage: Storage) -> None:
    lock = {"pk": s(f"{LOCK_PREFIX}{'k' * 64}"), "erasure_id": s("e-1"), "user_key": s("k" * 64)}
    lock |= {"status": s("pending"), "requested_at": {"N": "1000"}, "stored_user_id": s("alice")}
    storage.dynamo.call("put_item", TableName=storage.erasures._table, Item=lock)

    standing = storage.erasures.request(_erasure("e-2"))

    assert standing.erasure_id == "e-1"
    assert storage.erasures.get("e-1") == standing


def test_a_lock_left_by_a_crash_after_closing_does_not_block_a_new_request(storage: Storage) -> None:
    storage.erasures.request(_erasure("e-1"))
    storage.erasures.close("e-1", "done", now=2_000)
    lock = {"pk": s(f"{LOCK_PREFIX}{'k' * 64}"), "erasure_id": s("e-1"), "user_key": s("k" * 64)}
    lock |= {"status": s("pending"), "requested_at": {"N": "1000"}}
    storage.dynamo.call("put_item", TableName=storage.erasures._table, Item=lock)  # as if the delete was lost

    assert storage.erasures.request(_erasure("e-2")).erasure_id == "e-2"


def test_a_retried_close_of_an_old_erasure_leaves_the_newer_ones_guard(storage: Storage) -> None:
    storage.erasures.request(_erasure("e-1"))
    storage.erasures.begin("e-1", now=2_000)
    storage.erasures.close("e-1", "done", now=3_000)
    storage.erasures.request(_erasure("e-2"))  # the user asks again
    storage.erasures.begin("e-2", now=4_000)

    storage.erasures.close("e-1", "done", now=5_000)  # the old Finish, retried

    assert storage.erasures.active_user_keys() == {"k" * 64}
    storage.erasures.close("e-2", "done", now=6_000)
    assert storage.erasures.active_user_keys() == frozenset()
