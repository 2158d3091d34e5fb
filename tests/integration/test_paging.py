"""Paging a batch (contract 2.2) on the domain: order, exactly once, the size cap, bounded reads."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from clickstream.concurrency import Fanout
from clickstream.domain.rules import MAX_RESPONSE_BYTES
from clickstream.errors import BatchNotFound
from clickstream.models import NewEvent
from clickstream.records import Place
from clickstream.service import Clickstream
from clickstream.settings import Settings
from clickstream.storage import Storage
from tests.support import now_ms
from tests.support.domain import all_sessions, click, new_session, page

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


def test_paging_visits_every_session_exactly_once_in_order(service: Clickstream) -> None:
    registrations = [service.register(new_session()) for _ in range(24)]
    ids = [registration.session_id for registration in registrations]
    batch_id = registrations[0].batch_id
    for limit in (1, 5, 10, 24, 1000):
        sessions = all_sessions(service, batch_id, limit)
        assert [s["session_id"] for s in sessions] == ids
        assert [s["session_number"] for s in sessions] == list(range(1, 25))


def test_last_number_and_has_more_are_exact(service: Clickstream) -> None:
    batch_id = ""
    for _ in range(4):
        batch_id = service.register(new_session()).batch_id
    assert {k: v for k, v in page(service, batch_id, 0, 2).items() if k != "sessions"} == {
        "batch_id": batch_id,
        "last_number": 2,
        "has_more": True,
    }
    last = page(service, batch_id, 2, 2)
    assert (last["last_number"], last["has_more"]) == (4, False)
    beyond = page(service, batch_id, 4, 2)
    assert (beyond["last_number"], beyond["has_more"], beyond["sessions"]) == (None, False, [])


def test_an_unknown_batch_is_not_found_but_an_empty_page_of_a_known_batch_is_fine(service: Clickstream) -> None:
    with pytest.raises(BatchNotFound):
        page(service, "b-unknown")
    batch_id = service.register(new_session()).batch_id
    assert page(service, batch_id, after=99)["sessions"] == []
    service.release("release-p")
    assert page(service, batch_id, after=99)["sessions"] == []


def test_a_page_never_exceeds_five_megabytes_and_paging_goes_on(service: Clickstream) -> None:
    # Eighteen sessions of ~300 KB each: about 5.4 MB, more than one response may carry.
    blob = "x" * 300_000
    batch_id = ""
    for _ in range(18):
        batch_id = service.register(new_session(search_meta={"blob": blob})).batch_id
    text = service.batch_page_json(batch_id, 0, 1000, 0)
    assert len(text.encode()) <= MAX_RESPONSE_BYTES
    first = json.loads(text)
    assert first["has_more"] is True
    assert first["last_number"] == len(first["sessions"]) < 18
    rest = page(service, batch_id, first["last_number"], 1000, 0)
    assert [s["session_number"] for s in first["sessions"] + rest["sessions"]] == list(range(1, 19))
    assert rest["has_more"] is False


def test_a_page_cut_by_the_size_cap_reads_little_beyond_what_it_returns(
    service: Clickstream, storage_client: DynamoDBClient
) -> None:
    """Six sessions of ~1.2 MB of events each: a page holds four; the rest are not read in full."""
    read_bytes: list[int] = []

    def count(http_response: Any, **_: Any) -> None:
        read_bytes.append(len(http_response.content))

    batch_id = ""
    meta = {"note": "x" * 3_900}
    for n in range(6):
        registration = service.register(new_session(f"sess-big-{n}"))
        batch_id = registration.batch_id
        service.add_events(
            registration.session_id,
            [NewEvent(event_id=f"m{k:03d}", object_id="o", meta=meta) for k in range(300)],
        )
    storage_client.meta.events.register("after-call.dynamodb.Query", count)
    try:
        text = service.batch_page_json(batch_id, 0, 6, 1000)
    finally:
        storage_client.meta.events.unregister("after-call.dynamodb.Query", count)
    page = json.loads(text)
    assert page["has_more"] is True
    assert 1 <= len(page["sessions"]) < 6
    assert len(text.encode()) <= MAX_RESPONSE_BYTES
    # The sessions returned plus at most one more are read, not all six (~7.2 MB).
    assert sum(read_bytes) < len(text.encode()) + 1.5e6


T = TypeVar("T")
R = TypeVar("R")


class RecordingFanout(Fanout):
    """The service's thread pool, noting how many calls each concurrent wave carried."""

    def __init__(self, max_concurrency: int) -> None:
        super().__init__(max_concurrency)
        self.waves: list[int] = []

    def map(self, function: Callable[[T], R], values: Iterable[T]) -> list[R]:
        items = list(values)
        self.waves.append(len(items))
        return super().map(function, items)


@pytest.mark.parametrize("shards", [1, 8])
def test_a_page_of_64_sessions_reads_their_events_in_one_wave(
    storage: Storage, settings: Settings, shards: int
) -> None:
    """Contract 8.8: a page's sessions come from every shard at once, then all their events at once."""
    settings = settings.model_copy(update={"batch_shards": shards})
    fanout = RecordingFanout(settings.dynamodb_max_concurrency)
    service = Clickstream(storage, settings, fanout=fanout)
    batch_id = ""
    for n in range(65):
        registration = service.register(new_session(f"sess-w{n}"))
        batch_id = registration.batch_id
        service.add_events(registration.session_id, [click(f"e{k}") for k in range(3)])
    fanout.waves.clear()
    result = page(service, batch_id, 0, 64, 100)
    assert len(result["sessions"]) == 64
    assert all(len(session["events"]) == 3 for session in result["sessions"])
    shard_reads, event_reads = fanout.waves[:-1], fanout.waves[-1]
    assert event_reads == 64, fanout.waves
    assert shard_reads == [shards], fanout.waves  # one read of every shard, together


@pytest.mark.parametrize("shards", [1, 2, 3, 8])
def test_paging_is_exact_over_any_mix_of_sessions_tombstones_and_gaps(
    storage: Storage, settings: Settings, shards: int
) -> None:
    """Every page size visits each session once, ascending, with has_more and last_number exact, however
    the numbers of a batch split into sessions, tombstones and numbers never written."""
    rng = random.Random(shards)
    service = Clickstream(storage, settings)
    reference = service.register(new_session())
    document = storage.sessions.get_session(Place(reference.batch_id, reference.session_number, settings.batch_shards))
    assert document is not None
    service.release("release-reference")
    batch_id = f"b-mixed-{shards}"
    storage.pointer.open_batch(batch_id, now_ms(), shards)
    storage.pointer.next_block(120)
    expected = []
    for number in range(1, 121):
        draw = rng.random()
        if draw < 0.5:
            session = replace(document, batch_id=batch_id, session_number=number, session_id=f"s{number}")
            assert storage.sessions.put_session(session, shards)
            expected.append(number)
        elif draw < 0.9:
            assert storage.sessions.put_tombstone(Place(batch_id, number, shards))
    for limit in (1, 2, 3, 7, 10, 64, 65, 200):
        seen: list[int] = []
        after = 0
        while True:
            result = page(service, batch_id, after, limit, 0)
            numbers = [session["session_number"] for session in result["sessions"]]
            assert len(numbers) <= limit
            assert numbers == sorted(numbers)
            assert all(number > after for number in numbers)
            assert result["last_number"] == (numbers[-1] if numbers else None)
            assert result["has_more"] == any(number > (numbers[-1] if numbers else after) for number in expected)
            seen += numbers
            if not result["has_more"]:
                break
            after = result["last_number"]
        assert seen == expected, limit
