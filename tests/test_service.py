"""The rules of SPEC sections 2, 3 and 5, on the domain service over the template's tables."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clickstream.errors import BatchNotFound, InvalidField, NoCollectingBatch, PayloadTooLarge, SessionNotFound
from clickstream.models import NewEvent, NewSession
from clickstream.service import MAX_RESPONSE_BYTES, Clickstream
from clickstream.storage import Storage, StoredSession
from tests.conftest import new_session_body, now_ms, unique

DOCUMENT_KEYS = ("search_query", "search_results", "search_meta", "payload_filter", "sort_by")


def new_session(session_id: str | None = None, **overrides: Any) -> NewSession:
    return NewSession.model_validate(new_session_body(session_id, **overrides))


def click(event_id: str, created_at: int | None = None, object_id: str = "shoe-3") -> NewEvent:
    return NewEvent(event_id=event_id, object_id=object_id, created_at=created_at)


def page(service: Clickstream, batch_id: str, after: int = 0, limit: int = 10, events: int = 100) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(service.batch_page_json(batch_id, after, limit, events))
    return result


def all_sessions(service: Clickstream, batch_id: str, limit: int) -> list[dict[str, Any]]:
    sessions: list[dict[str, Any]] = []
    after = 0
    while True:
        result = page(service, batch_id, after, limit)
        sessions.extend(result["sessions"])
        if not result["has_more"]:
            return sessions
        after = result["last_number"]


# --- registration -------------------------------------------------------------------------------


def test_sessions_are_numbered_one_two_three_in_the_collecting_batch(service: Clickstream) -> None:
    registrations = [service.register(new_session()) for _ in range(3)]
    assert [r.session_number for r in registrations] == [1, 2, 3]
    assert len({r.batch_id for r in registrations}) == 1


def test_registering_the_same_session_id_again_returns_the_first_registration(service: Clickstream) -> None:
    first = service.register(new_session("sess-1", search_query="first"))
    again = service.register(new_session("sess-1", search_query="second"))
    assert again == first
    stored = json.loads(service.session_json("sess-1", 10))
    assert stored["search_query"] == "first"
    assert service.register(new_session()).session_number == 2


def test_a_session_registered_after_a_release_opens_a_new_batch(service: Clickstream) -> None:
    first = service.register(new_session())
    service.release("release-1")
    second = service.register(new_session())
    assert second.batch_id != first.batch_id
    assert second.session_number == 1


def test_a_session_too_large_for_one_item_is_refused(service: Clickstream) -> None:
    huge = new_session(search_meta={"blob": "x" * 360_000})
    with pytest.raises(PayloadTooLarge, match="session"):
        service.register(huge)


def test_search_query_may_be_a_json_object_and_is_returned_as_sent(service: Clickstream) -> None:
    query = {"text": "shoes", "filters": {"size": [42, 43]}, "boost": 1.5}
    service.register(new_session("sess-q", search_query=query, payload_filter={"must": []}))
    stored = json.loads(service.session_json("sess-q", 0))
    assert stored["search_query"] == query
    assert stored["payload_filter"] == {"must": []}
    assert stored["events"] == []


# --- events -------------------------------------------------------------------------------------


def test_events_are_stored_once_per_event_id(service: Clickstream) -> None:
    service.register(new_session("sess-e"))
    first = service.add_events("sess-e", [click("e1"), click("e2"), click("e1")])
    assert (first.accepted, first.duplicates) == (2, 1)
    retry = service.add_events("sess-e", [click("e1"), click("e2"), click("e3")])
    assert (retry.accepted, retry.duplicates) == (1, 2)
    stored = json.loads(service.session_json("sess-e", 100))
    assert sorted(event["event_id"] for event in stored["events"]) == ["e1", "e2", "e3"]


def test_events_come_back_chronological_then_by_event_id_and_cut_at_the_limit(service: Clickstream) -> None:
    service.register(new_session("sess-t"))
    now = now_ms()
    service.add_events("sess-t", [click("b", now - 10), click("a", now - 10), click("c", now - 30), click("d", now)])
    stored = json.loads(service.session_json("sess-t", 100))
    assert [event["event_id"] for event in stored["events"]] == ["c", "a", "b", "d"]
    first_two = json.loads(service.session_json("sess-t", 2))
    assert [event["event_id"] for event in first_two["events"]] == ["c", "a"]


def test_events_of_an_unknown_session_are_refused(service: Clickstream) -> None:
    with pytest.raises(SessionNotFound):
        service.add_events("sess-none", [click("e1")])


def test_reading_events_never_asks_for_more_than_the_limit(service: Clickstream, storage: Storage) -> None:
    service.register(new_session("sess-l"))
    service.add_events("sess-l", [click(f"e{n:02d}") for n in range(30)])
    limits: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if params.get("IndexName") == "by_created_at":
            limits.append(params["Limit"])

    storage.client.meta.events.register("provide-client-params.dynamodb.Query", record)
    try:
        events = storage.first_events("sess-l", 7)
    finally:
        storage.client.meta.events.unregister("provide-client-params.dynamodb.Query", record)
    assert len(events) == 7
    assert limits
    assert max(limits) <= 7


# --- use for improvement ------------------------------------------------------------------------


def test_payload_searches_are_skipped(service: Clickstream) -> None:
    service.register(new_session("sess-p", is_payload_search=True))
    service.add_events("sess-p", [click("e1")])
    decision = service.use_for_improvement("sess-p")
    assert (decision.status, decision.reason, decision.task) == ("skipped", "payload_search", None)


def test_sessions_without_events_are_skipped_unless_irrelevant(service: Clickstream) -> None:
    service.register(new_session("sess-n"))
    decision = service.use_for_improvement("sess-n")
    assert (decision.status, decision.reason) == ("skipped", "no_events")
    service.mark_irrelevant("sess-n")
    decision = service.use_for_improvement("sess-n")
    assert decision.status == "scheduled"
    assert decision.task is not None
    assert decision.task.status == "pending"


def test_scheduling_twice_returns_the_same_pending_task(service: Clickstream) -> None:
    registration = service.register(new_session("sess-s"))
    service.add_events("sess-s", [click("e1")])
    first = service.use_for_improvement("sess-s")
    second = service.use_for_improvement("sess-s")
    assert first.task == second.task
    assert first.task is not None
    assert (first.task.batch_id, first.task.session_number) == (registration.batch_id, registration.session_number)


def test_scheduling_an_unknown_session_is_not_found(service: Clickstream) -> None:
    with pytest.raises(SessionNotFound, match="Session with id=nobody not found"):
        service.use_for_improvement("nobody")


# --- paging -------------------------------------------------------------------------------------


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


# --- release ------------------------------------------------------------------------------------


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
    late_batch, late_number = storage.next_number()  # numbered, not yet written
    assert (late_batch, late_number) == (batch_id, 2)
    release = service.release("release-r")
    assert release.session_count == 1  # slot 2 was tombstoned, not counted
    late = service.register(new_session("sess-late"))
    assert late.batch_id != batch_id
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
    storage.open_batch("b-1", now_ms())
    empty_seal = storage.seal_pointer("release-a", now_ms())
    assert empty_seal is not None
    assert empty_seal.counter == 0
    storage.unseal_pointer(empty_seal)  # a waiting registration undoes the empty seal
    assert [service.register(new_session()).batch_id for _ in range(3)] == ["b-1"] * 3

    write_batch_record = storage.put_batch_record

    def stale_undo_first(record: Any) -> None:
        storage.unseal_pointer(empty_seal)  # the delayed request with the counter-0 snapshot lands now
        write_batch_record(record)

    storage.put_batch_record = stale_undo_first  # type: ignore[method-assign,assignment]
    try:
        release = service.release("release-a")
    finally:
        storage.put_batch_record = write_batch_record  # type: ignore[method-assign]
    assert (release.batch_id, release.session_count) == ("b-1", 3)
    assert service.register(new_session()).batch_id != "b-1"
    assert service.release("release-a") == release


def test_a_page_cut_by_the_size_cap_reads_little_beyond_what_it_returns(service: Clickstream, storage: Storage) -> None:
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
    storage.client.meta.events.register("after-call.dynamodb.Query", count)
    try:
        text = service.batch_page_json(batch_id, 0, 6, 1000)
    finally:
        storage.client.meta.events.unregister("after-call.dynamodb.Query", count)
    page = json.loads(text)
    assert page["has_more"] is True
    assert 1 <= len(page["sessions"]) < 6
    assert len(text.encode()) <= MAX_RESPONSE_BYTES
    # The sessions returned plus at most one more are read, not all six (~7.2 MB).
    assert sum(read_bytes) < len(text.encode()) + 1.5e6


def test_sizes_are_counted_as_lambda_carries_them(service: Clickstream) -> None:
    """Quotes and non-ASCII text grow when the body travels as a JSON string; the caps count that."""
    service.register(new_session("sess-w"))
    quoted_meta = {"raw": '{"a":"b"}' * 300}  # 3.9 KB stored (under 4.5 KB), 6.3 KB as Lambda carries it
    with pytest.raises(PayloadTooLarge, match=r"events\[0\]"):
        service.add_events("sess-w", [NewEvent(event_id="e1", object_id="o", meta=quoted_meta)])
    with pytest.raises(PayloadTooLarge, match="session"):
        service.register(new_session(search_meta={"text": "検索" * 33_000}))  # 198 KB UTF-8, 396 KB escaped


def test_a_retry_after_the_timestamp_window_returns_the_first_registration(storage: Storage, settings: Any) -> None:
    """The same POST /session sent again a day later: its created_at is stale now, the answer is the same."""
    registered_at = now_ms()
    first_day = Clickstream(storage, settings, clock=lambda: registered_at)
    body = new_session("sess-retry", created_at=registered_at - 1_000)
    first = first_day.register(body)
    next_day = Clickstream(storage, settings, clock=lambda: registered_at + 24 * 3_600_000)
    assert next_day.register(body) == first
    with pytest.raises(InvalidField, match="created_at"):
        next_day.register(new_session("sess-new", created_at=registered_at - 1_000))


def test_a_session_written_by_a_registration_that_stopped_there_is_usable(
    service: Clickstream, storage: Storage
) -> None:
    """The registration wrote the session, then died before marking its claim: the session is in the batch
    (paging shows it), so reading it, adding events and scheduling it work without a client retry."""
    registration = service.register(new_session("sess-first"))
    storage.claim_session_id("sess-stopped", "token-1", now_ms())
    batch_id, number = storage.next_number()
    assert storage.assign_slot("sess-stopped", "token-1", batch_id, number)
    first = json.loads(service.session_json("sess-first", 0))
    assert first["session_number"] == registration.session_number
    assert storage.put_session(
        StoredSession(
            batch_id=batch_id,
            session_number=number,
            session_id="sess-stopped",
            created_at=now_ms(),
            user_id=None,
            is_irrelevant=False,
            is_payload_search=False,
            document=json.dumps({key: first[key] for key in DOCUMENT_KEYS}),
        )
    )
    assert [s["session_id"] for s in all_sessions(service, batch_id, 10)] == ["sess-first", "sess-stopped"]
    assert json.loads(service.session_json("sess-stopped", 10))["session_number"] == number
    assert service.add_events("sess-stopped", [click("e1")]).accepted == 1
    assert service.use_for_improvement("sess-stopped").status == "scheduled"
    assert service.register(new_session("sess-stopped")).session_number == number
