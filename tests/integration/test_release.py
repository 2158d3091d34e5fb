"""Release (contract 2.3; guarantees 5.3, 5.4) on the domain: idempotent, exact, never reopened."""

from __future__ import annotations

from typing import Any

import pytest

from clickstream.errors import NoCollectingBatch
from clickstream.service import Clickstream
from clickstream.storage import Storage
from tests.support import now_ms, unique
from tests.support.domain import all_sessions, hand_out_number, new_session


def test_release_is_idempotent_per_release_id_even_after_newer_batches(service: Clickstream) -> None:
    batch_id = service.register(new_session()).batch_id
    service.register(new_session())
    first = service.release("release-a")
    assert (first.batch_id, first.session_count) == (batch_id, 2)
    service.register(new_session())
    service.release("release-b")
    service.register(new_session())
    assert service.release("release-a") == first


def test_release_with_nothing_collecting_raises(service: Clickstream) -> None:
    with pytest.raises(NoCollectingBatch):
        service.release("release-x")
    service.register(new_session())
    service.release("release-y")
    with pytest.raises(NoCollectingBatch):
        service.release("release-z")


def test_a_released_batch_never_changes(service: Clickstream) -> None:
    batch_id = service.register(new_session()).batch_id
    release = service.release("release-f")
    before = all_sessions(service, batch_id, 10)
    later = service.register(new_session())
    assert later.batch_id != batch_id
    assert all_sessions(service, batch_id, 10) == before
    assert release.session_count == len(before)


def test_a_number_handed_out_but_not_written_before_the_release_moves_to_the_next_batch(
    service: Clickstream, storage: Storage
) -> None:
    """The race the protocol exists for: a registration numbered just before the seal writes late."""
    batch_id = service.register(new_session()).batch_id
    late = hand_out_number(storage)  # numbered, not yet written
    assert (late.batch_id, late.session_number) == (batch_id, 2)
    release = service.release("release-r")
    assert release.session_count == 1  # slot 2 was tombstoned, not counted
    moved = service.register(new_session("sess-late"))
    assert moved.batch_id != batch_id
    assert [s["session_number"] for s in all_sessions(service, batch_id, 10)] == [1]


def test_a_release_id_never_names_two_batches(service: Clickstream) -> None:
    first_batch = service.register(new_session()).batch_id
    assert service.release("release-once").batch_id == first_batch
    service.register(new_session())
    again = service.release("release-once")
    assert again.batch_id == first_batch
    # The newer batch is still collecting and can be released under another id.
    assert service.release(unique("release")).batch_id != first_batch


def test_a_late_unseal_of_an_empty_seal_never_reopens_a_released_batch(service: Clickstream, storage: Storage) -> None:
    """A release sealed an empty batch and stalled; its undo arrives after the same release_id, retried,
    sealed the batch for real. The stale undo must not reopen the batch the retry acknowledges."""
    storage.pointer.open_batch("b-1", now_ms(), 1)
    empty_seal = storage.pointer.seal("release-a", now_ms())
    assert empty_seal is not None
    assert empty_seal.counter == 0
    storage.pointer.unseal(empty_seal)  # a waiting registration undoes the empty seal
    assert [service.register(new_session()).batch_id for _ in range(3)] == ["b-1"] * 3

    write_batch_record = storage.batches.put

    def stale_undo_first(record: Any) -> None:
        storage.pointer.unseal(empty_seal)  # the delayed request with the counter-0 snapshot lands now
        write_batch_record(record)

    storage.batches.put = stale_undo_first  # type: ignore[method-assign,assignment]
    try:
        release = service.release("release-a")
    finally:
        storage.batches.put = write_batch_record  # type: ignore[method-assign]
    assert (release.batch_id, release.session_count) == ("b-1", 3)
    assert service.register(new_session()).batch_id != "b-1"
    assert service.release("release-a") == release


def test_a_repeated_registration_after_a_release_opens_no_batch(service: Clickstream) -> None:
    """The repeat answers the first registration and numbers nothing: there is still nothing to release."""
    first = service.register(new_session("sess-repeat"))
    service.release("release-1")
    assert service.register(new_session("sess-repeat")) == first
    with pytest.raises(NoCollectingBatch):
        service.release("release-2")
