"""Stored items rendered as the JSON text callers receive.

A session's search document is stored as JSON text and spliced into responses verbatim, so a page
of sessions is never parsed and re-serialized, and its size is known exactly before it is sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from clickstream.codec import encode_json
from clickstream.records import StoredEvent, StoredSession

_BOOL = {True: "true", False: "false"}


def _string(value: str | None) -> str:
    return "null" if value is None else encode_json(value)


def render_event(event: StoredEvent) -> str:
    return (
        f'{{"event_id":{_string(event.event_id)},"object_id":{_string(event.object_id)},'
        f'"event_type":{_string(event.event_type)},"created_at":{event.created_at},'
        f'"meta":{event.meta or "null"}}}'
    )


def render_session(session: StoredSession, events: Sequence[StoredEvent], *, with_batch_id: bool = False) -> str:
    # The document is a JSON object holding search_query, search_results, search_meta, payload_filter, sort_by.
    members = session.document[1:-1]
    batch = f'"batch_id":{_string(session.batch_id)},' if with_batch_id else ""
    return (
        f'{{{batch}"session_number":{session.session_number},"session_id":{_string(session.session_id)},'
        f'{members},"experiment":{session.experiment or "null"},"user_id":{_string(session.user_id)},'
        f'"created_at":{session.created_at},'
        f'"is_irrelevant":{_BOOL[session.is_irrelevant]},"is_payload_search":{_BOOL[session.is_payload_search]},'
        f'"events":[{",".join(render_event(event) for event in events)}]}}'
    )


def render_page(batch_id: str, last_number: int | None, has_more: bool, sessions: Sequence[str]) -> str:
    last = "null" if last_number is None else str(last_number)
    return (
        f'{{"batch_id":{_string(batch_id)},"last_number":{last},"has_more":{_BOOL[has_more]},'
        f'"sessions":[{",".join(sessions)}]}}'
    )
