"""Events, irrelevant marks and scheduling (contract 2.1, 3.2-3.4; guarantee 5.5) on the domain."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from clickstream.errors import SessionNotFound
from clickstream.service import Clickstream
from clickstream.storage import Storage
from tests.support import now_ms
from tests.support.domain import click, new_session

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


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


def test_reading_events_never_asks_for_more_than_the_limit(
    service: Clickstream, storage: Storage, storage_client: DynamoDBClient
) -> None:
    service.register(new_session("sess-l"))
    service.add_events("sess-l", [click(f"e{n:02d}") for n in range(30)])
    limits: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if params.get("IndexName") == "by_created_at":
            limits.append(params["Limit"])

    storage_client.meta.events.register("provide-client-params.dynamodb.Query", record)
    try:
        events = storage.events.first("sess-l", 7)
    finally:
        storage_client.meta.events.unregister("provide-client-params.dynamodb.Query", record)
    assert len(events) == 7
    assert limits
    assert max(limits) <= 7


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
