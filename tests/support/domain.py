"""Helpers for tests that drive the domain directly (the layer must be on sys.path: conftest puts it there)."""

from __future__ import annotations

import json
from typing import Any

from clickstream.models import NewEvent, NewSession
from clickstream.service import Clickstream
from tests.support import new_session_body

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
