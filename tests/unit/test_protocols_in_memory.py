"""Numbering and release (contract 2.3, 5.1-5.4, 8.2) over in-memory ports (tests/support/memory.py), no
moto: the domain needs nothing of storage but its ports. The same protocols run over DynamoDB in
tests/integration (test_registration.py, test_release.py, test_faults.py)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from clickstream.errors import NoCollectingBatch
from clickstream.records import Place, PointerUnavailable
from clickstream.service import Clickstream
from clickstream.settings import Settings
from tests.support import now_ms
from tests.support.domain import new_session
from tests.support.memory import MemoryLake, MemoryStores

TABLES = {name: f"memory-{name}" for name in ("sessions", "session_ids", "events", "batches", "tasks", "user_datasets")}


def container(stores: MemoryStores, shards: int = 8, **overrides: Any) -> Clickstream:
    """One function container's service over the shared in-memory tables."""
    settings = Settings.model_validate(
        {**{f"{name}_table": table for name, table in TABLES.items()}, "batch_shards": shards, **overrides}
    )
    return Clickstream(stores, settings, lake=MemoryLake(), sleep=lambda _seconds: None)


def numbers_in(service: Clickstream, batch_id: str) -> list[int]:
    numbers: list[int] = []
    after = 0
    while True:
        page = json.loads(service.batch_page_json(batch_id, after, 7, 0))
        numbers += [session["session_number"] for session in page["sessions"]]
        if not page["has_more"]:
            return numbers
        after = page["last_number"]


@pytest.mark.parametrize("shards", [1, 8])
def test_one_container_numbers_its_sessions_in_order_a_block_of_numbers_at_a_time(shards: int) -> None:
    stores = MemoryStores()
    service = container(stores, shards)
    registered = [service.register(new_session()) for _ in range(50)]
    assert {registration.batch_id for registration in registered} == {registered[0].batch_id}
    assert [registration.session_number for registration in registered] == list(range(1, 51))
    assert stores.pointer.blocks < 25  # blocks grow with the container's rate: fewer pointer writes than sessions
    assert numbers_in(service, registered[0].batch_id) == list(range(1, 51))


def test_a_session_id_registers_once_and_a_repeat_answers_the_first_registration() -> None:
    stores = MemoryStores()
    first, second = container(stores), container(stores)
    registration = first.register(new_session("sess-once"))
    assert second.register(new_session("sess-once")) == registration
    assert first.register(new_session("sess-once")) == registration
    assert stores.claims.get("sess-once") is not None
    assert stores.claims.items["sess-once"].is_registered


def test_containers_registering_at_once_never_share_a_number_or_lose_a_session() -> None:
    stores = MemoryStores()
    containers = [container(stores) for _ in range(3)]
    session_ids = [f"sess-{index % 60}" for index in range(120)]  # every id sent twice

    def register(index: int) -> tuple[str, str, int]:
        registration = containers[index % 3].register(new_session(session_ids[index]))
        return registration.session_id, registration.batch_id, registration.session_number

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(register, range(120)))
    places = {session_id: (batch_id, number) for session_id, batch_id, number in answers}
    assert len(places) == 60
    assert all(places[session_id] == (batch_id, number) for session_id, batch_id, number in answers)
    assert len(set(places.values())) == 60  # no two sessions in one place
    [batch_id] = {batch_id for batch_id, _ in places.values()}
    assert sorted(numbers_in(containers[0], batch_id)) == sorted(number for _, number in places.values())


def test_a_release_counts_its_sessions_and_is_idempotent_per_release_id() -> None:
    stores = MemoryStores()
    service = container(stores)
    batch_id = service.register(new_session()).batch_id
    service.register(new_session())
    release = service.release("release-a")
    assert (release.batch_id, release.session_count) == (batch_id, 2)
    later = service.register(new_session())
    assert later.batch_id != batch_id  # the next session opens a new batch
    assert service.release("release-a") == release  # the same body again, even with a newer batch open
    assert numbers_in(service, batch_id) == [1, 2]
    assert stores.batches.items[batch_id].session_count == 2
    assert stores.releases.items["release-a"].session_count == 2


def test_a_release_with_nothing_collecting_is_refused_and_a_sealed_pointer_hands_out_nothing() -> None:
    stores = MemoryStores()
    service = container(stores)
    with pytest.raises(NoCollectingBatch):
        service.release("release-x")
    service.register(new_session())
    service.release("release-y")
    with pytest.raises(NoCollectingBatch):
        service.release("release-z")
    stores.pointer.open_batch("b-sealed", now_ms(), 1)
    assert stores.pointer.seal("release-s", now_ms()) is not None
    with pytest.raises(PointerUnavailable):  # as storage raises it on a sealed pointer
        stores.pointer.next_block(1)


def test_a_number_handed_out_but_not_written_before_the_release_is_tombstoned_and_moves_on() -> None:
    """The race the protocol exists for: a registration numbered just before the seal writes late."""
    stores = MemoryStores()
    service = container(stores, shards=4)
    batch_id = service.register(new_session()).batch_id
    block = stores.pointer.next_block(1)  # numbered by another container, not written yet
    late = Place(block.batch_id, block.first, block.shards)
    assert (late.batch_id, late.session_number) == (batch_id, 2)
    release = service.release("release-r")
    assert release.session_count == 1  # slot 2 was tombstoned, not counted
    slot = stores.sessions.get_slot(late)
    assert slot is not None
    assert slot.is_tombstone
    moved = service.register(new_session("sess-late"))
    assert moved.batch_id != batch_id
    assert numbers_in(service, batch_id) == [1]


def test_a_release_id_never_names_two_batches() -> None:
    stores = MemoryStores()
    service = container(stores)
    first_batch = service.register(new_session()).batch_id
    assert service.release("release-once").batch_id == first_batch
    service.register(new_session())
    assert service.release("release-once").batch_id == first_batch
    assert service.release("release-other").batch_id != first_batch
