"""Registration (contract 3.1; guarantees 5.1, 5.2) on the domain over the template's tables."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clickstream.errors import ConflictError, InvalidField, PayloadTooLarge
from clickstream.models import NewEvent
from clickstream.service import Clickstream
from clickstream.settings import Settings
from clickstream.storage import Storage
from local.lambda_runtime import running_as
from tests.support import now_ms
from tests.support.domain import all_sessions, click, hand_out_number, new_session, unmarked_session


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
    place = unmarked_session(service, storage, "sess-stopped")
    assert "sess-stopped" in [s["session_id"] for s in all_sessions(service, place.batch_id, 10)]
    assert json.loads(service.session_json("sess-stopped", 10))["session_number"] == place.session_number
    assert service.add_events("sess-stopped", [click("e1")]).accepted == 1
    assert service.use_for_improvement("sess-stopped").status == "scheduled"
    assert service.register(new_session("sess-stopped")).session_number == place.session_number


def test_a_retry_that_breaks_another_rule_returns_the_first_registration(service: Clickstream) -> None:
    """The first registration stands whatever body a repeat carries (contract 3.1); the same body for a new
    session_id is refused, naming the field."""
    first = service.register(new_session("sess-kept"))
    assert service.register(new_session("sess-kept", search_meta={"score": float("inf")})) == first
    with pytest.raises(InvalidField, match="search_meta"):
        service.register(new_session("sess-new", search_meta={"score": float("inf")}))


def test_a_slot_found_empty_after_a_refused_write_is_a_conflict_not_a_loop(
    service: Clickstream, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slots are never emptied, so this means the table changed under the registration: 409, retry-safe."""
    monkeypatch.setattr(storage.sessions, "put_session", lambda session, shards: False)
    with pytest.raises(ConflictError, match="inconsistent"):
        service.register(new_session("sess-odd"))


def test_a_retry_that_moves_out_of_a_batch_being_settled_closes_the_slot_it_leaves(
    storage: Storage, settings: Settings
) -> None:
    """A registration took number n of batch A and stalled. A release of A is settling (its batch record
    is written, slot n is still empty) when the client's retry takes the claim over: the retry must close
    slot n before it moves to the next batch, or the stalled registration could still write it and the
    session would be in A (counted) and in B (acknowledged)."""
    stalled = Clickstream(storage, settings)
    retrying = Clickstream(storage, settings)
    batch_a = stalled.register(new_session()).batch_id
    place = hand_out_number(storage, settings.batch_shards)
    assert storage.claims.claim("sess-x", "stalled", now_ms() - settings.registration_lease_ms - 1, place)
    search = stalled.registrar._rules.search(new_session("sess-x"), now_ms())
    outcome: dict[str, Any] = {}

    def during_settle_grace(_seconds: float) -> None:
        outcome["acknowledged"] = retrying.register(new_session("sess-x"))
        # The stalled registration wakes: its slot is closed, its claim is the retry's: it answers that.
        with running_as("CollectionFunction"):  # its own invocation, inside the release's wait
            outcome["stalled"] = stalled.registrar._place(search, "stalled", place)

    long_grace = settings.model_copy(update={"release_settle_grace_ms": 60_000})
    release = Clickstream(storage, long_grace, sleep=during_settle_grace).release("release-settling")
    acknowledged = outcome["acknowledged"]
    assert acknowledged.batch_id != batch_a
    assert outcome["stalled"] == acknowledged
    assert "sess-x" not in [s["session_id"] for s in all_sessions(retrying, batch_a, 100)]
    assert release.session_count == 1
    assert json.loads(retrying.session_json("sess-x", 0))["batch_id"] == acknowledged.batch_id
