"""Helpers for tests that drive the domain directly."""

from __future__ import annotations

import json
from typing import Any

from clickstream.models import NewEvent, NewSession
from clickstream.records import Place, StoredSession
from clickstream.service import Clickstream
from clickstream.storage import Storage
from tests.support import new_session_body, now_ms, unique

DOCUMENT_KEYS = ("search_query", "search_results", "search_meta", "payload_filter", "sort_by")


def new_session(session_id: str | None = None, **overrides: Any) -> NewSession:
    return NewSession.model_validate(new_session_body(session_id, **overrides))


def click(event_id: str, created_at: int | None = None, object_id: str = "shoe-3") -> NewEvent:
    return NewEvent(event_id=event_id, object_id=object_id, created_at=created_at)


def page(service: Clickstream, batch_id: str, after: int = 0, limit: int = 10, events: int = 100) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(service.batch_page_json(batch_id, after, limit, events))
    return result


def all_sessions(service: Clickstream, batch_id: str, limit: int) -> list[dict[str, Any]]:
    """Every session of a batch, paging `limit` at a time as a client would."""
    sessions: list[dict[str, Any]] = []
    after = 0
    while True:
        result = page(service, batch_id, after, limit)
        sessions.extend(result["sessions"])
        if not result["has_more"]:
            return sessions
        after = result["last_number"]


def hand_out_number(storage: Storage, shards: int = 8) -> Place:
    """A number of the collecting batch (opened with `shards` when none is) handed out, as to a registration
    that has not written it yet."""
    storage.pointer.open_batch(unique("b-test"), now_ms(), shards)  # no-op when a batch is open
    block = storage.pointer.next_block(1)
    return Place(block.batch_id, block.first, block.shards)


def unmarked_session(service: Clickstream, storage: Storage, session_id: str) -> Place:
    """A registration that claimed a number, wrote its session and stopped before marking its claim."""
    reference = json.loads(service.session_json(service.register(new_session()).session_id, 0))
    place = hand_out_number(storage)
    assert storage.claims.claim(session_id, "token", now_ms(), place)
    document = json.dumps({key: reference[key] for key in DOCUMENT_KEYS})
    stored = StoredSession(place.batch_id, place.session_number, session_id, now_ms(), None, False, False, document)
    assert storage.sessions.put_session(stored, place.shards)
    return place
