"""The input rules every route applies beyond the schema (contract 4): timestamps, sizes, storable JSON.

Sizes are wire sizes (`codec.wire_size`): what a text takes in Lambda's response, never less than its
UTF-8 size. A session must fit one DynamoDB item (400 KB) with room for its keys and flags; 1000 events
of the largest size plus the largest session fit one 5 MB response (contract 2.2), so paging always moves on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from clickstream.codec import encode_json, wire_size
from clickstream.errors import InvalidField, PayloadTooLarge, TimestampOutsideWindow
from clickstream.models import NewEvent, NewSession
from clickstream.records import StoredEvent
from clickstream.settings import Settings
from clickstream.views import render_event

MAX_SESSION_BYTES = 350_000
MAX_EVENT_BYTES = 4_500
MAX_RESPONSE_BYTES = 5_000_000

Clock = Callable[[], int]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Search:
    """A validated session body, ready to be stored."""

    session_id: str
    created_at: int
    user_id: str | None
    is_payload_search: bool
    document: str  # the JSON object text of query, results, meta, filter and sort
    experiment: str | None = None  # the JSON object text of {"id", "variant"}


def json_text(field: str, value: object) -> str:
    """`value` as the compact JSON text the service stores, or InvalidField naming `field`."""
    try:
        return encode_json(value)
    except UnicodeEncodeError:
        raise InvalidField(field, "contains text that is not valid Unicode (a lone surrogate)") from None
    except ValueError:  # 1e400 parses as infinity, which JSON cannot carry
        raise InvalidField(field, "contains a number out of the range of a double (e.g. 1e400)") from None


class InputRules:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def timestamp(self, field: str, value: int | None, now: int) -> int:
        """A client timestamp, or `now` when absent; TimestampOutsideWindow outside the window."""
        if value is None:
            return now
        earliest = now - self._settings.timestamp_past_ms
        latest = now + self._settings.timestamp_future_ms
        if not earliest <= value <= latest:
            raise TimestampOutsideWindow(
                field,
                f"must lie between {earliest} and {latest} (now - {self._settings.timestamp_past_ms} ms, "
                f"now + {self._settings.timestamp_future_ms} ms); got {value}",
            )
        return value

    def search(self, new: NewSession, now: int) -> Search:
        members = {
            "search_query": new.search_query,
            "search_results": [result.model_dump() for result in new.search_results],
            "search_meta": new.search_meta,
            "payload_filter": new.payload_filter,
            "sort_by": None if new.sort_by is None else new.sort_by.model_dump(),
        }
        try:
            document = encode_json(members)
        except ValueError:
            for name, member in members.items():  # name the member at fault
                json_text(name, member)
            raise
        experiment = None if new.experiment is None else encode_json(new.experiment.model_dump())
        size = (
            wire_size(document) + wire_size(new.session_id) + wire_size(new.user_id or "") + wire_size(experiment or "")
        )
        if size > MAX_SESSION_BYTES:
            raise PayloadTooLarge("session", size, MAX_SESSION_BYTES)
        return Search(
            session_id=new.session_id,
            created_at=self.timestamp("created_at", new.created_at, now),
            user_id=new.user_id,
            is_payload_search=new.is_payload_search,
            document=document,
            experiment=experiment,
        )

    def events(self, events: list[NewEvent], now: int) -> list[StoredEvent]:
        """The events of one call, validated; within the call the first occurrence of an event_id wins."""
        stored: list[StoredEvent] = []
        seen: set[str] = set()
        for index, event in enumerate(events):
            field = f"events[{index}]"
            item = StoredEvent(
                event_id=event.event_id,
                object_id=event.object_id,
                event_type=event.event_type,
                created_at=self.timestamp(f"{field}.created_at", event.created_at, now),
                meta=None if event.meta is None else json_text(f"{field}.meta", event.meta),
            )
            size = wire_size(render_event(item))
            if size > MAX_EVENT_BYTES:
                raise PayloadTooLarge(field, size, MAX_EVENT_BYTES)
            if item.event_id not in seen:
                seen.add(item.event_id)
                stored.append(item)
        return stored
