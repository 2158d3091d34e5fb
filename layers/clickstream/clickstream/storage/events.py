"""EventsTable: events keyed by (session_id, event_id), with the local index `by_created_at` for time order.

DynamoDB calls: PutItem, Query and BatchWriteItem (deletes) on EventsTable; Query on its index by_created_at.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from clickstream.errors import StorageUnavailable
from clickstream.records import EventsRead, StoredEvent
from clickstream.storage.plumbing import Dynamo, Item, n, optional_s, s

EVENTS_BY_TIME_INDEX = "by_created_at"
BATCH_WRITE_ITEMS = 25  # DynamoDB's most per BatchWriteItem
UNPROCESSED_ROUNDS = 8  # rounds of retrying what BatchWriteItem left unprocessed (throttled), backing off


def chronological_key(created_at: int, event_id: str) -> str:
    """Sort key of the events-by-time index: orders by created_at, then event_id (UTF-8 byte order)."""
    return f"{created_at:013d}#{event_id}"


def _event(item: Item) -> StoredEvent:
    return StoredEvent(
        event_id=item["event_id"]["S"],
        object_id=item["object_id"]["S"],
        event_type=item["event_type"]["S"],
        created_at=int(item["created_at"]["N"]),
        meta=optional_s(item, "meta"),
    )


class Events:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def put(self, session_id: str, event: StoredEvent) -> bool:
        """Store an event once; False when its event_id is already stored for the session. An expired event
        (of an earlier session with this id, whose retention ran out) is replaced."""
        item: Item = {
            "session_id": s(session_id),
            "event_id": s(event.event_id),
            "chrono": s(chronological_key(event.created_at, event.event_id)),
            "object_id": s(event.object_id),
            "event_type": s(event.event_type),
            "created_at": n(event.created_at),
        }
        if event.meta is not None:
            item["meta"] = s(event.meta)
        return self._dynamo.put_new(self._table, item, "event_id", over_expired=True)

    def first(self, session_id: str, limit: int) -> list[StoredEvent]:
        """The first `limit` events of a session in time order; reads no further than that."""
        return self.read(session_id, limit).events

    def all(self, session_id: str) -> list[StoredEvent]:
        """Every event of a session in time order (an export reads them all).

        Read from the table and put in the index's order here: the same items and read units as the index,
        and one index fewer for the export to be granted.
        """
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "session_id = :session",
            "ExpressionAttributeValues": {":session": s(session_id)},
            "ConsistentRead": True,
        }
        events = [_event(item) for item in self._dynamo.query(self._dynamo.live_only(request))]
        return sorted(events, key=lambda event: chronological_key(event.created_at, event.event_id))

    def read(self, session_id: str, limit: int, after: str | None = None) -> EventsRead:
        """Up to `limit` events of a session in time order, after the event whose index key is `after`;
        reads no further than that. `EventsRead.last_key` continues a read cut at `limit`."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": EVENTS_BY_TIME_INDEX,
            "KeyConditionExpression": "session_id = :session",
            "ExpressionAttributeValues": {":session": s(session_id)},
            "ConsistentRead": True,
        }
        if after is not None:
            request["KeyConditionExpression"] += " AND chrono > :after"
            request["ExpressionAttributeValues"][":after"] = s(after)
        events = [_event(item) for item in self._dynamo.query(self._dynamo.live_only(request), total=max(limit, 0))]
        last_key = chronological_key(events[-1].created_at, events[-1].event_id) if events else None
        return EventsRead(events, last_key if len(events) == limit else None)

    def exist_for(self, session_id: str) -> bool:
        """Whether the session has a live event (one Query, unless expired events of an earlier session with
        this id come first)."""
        return any(True for _ in self._live_ids(session_id, total=1))

    def ids(self, session_id: str) -> list[str]:
        """The ids of a session's live events: an expired one is not given a new time to live."""
        return list(self._live_ids(session_id))

    def _live_ids(self, session_id: str, total: int | None = None) -> Iterator[str]:
        for item in self._dynamo.query(self._dynamo.live_only(self._keys_of(session_id)), total=total):
            yield item["event_id"]["S"]

    def _keys_of(self, session_id: str) -> dict[str, Any]:
        """A Query for a session's event keys only, on the table itself, strongly consistent."""
        return {
            "TableName": self._table,
            "KeyConditionExpression": "session_id = :session",
            "ExpressionAttributeValues": {":session": s(session_id)},
            "ProjectionExpression": "event_id",
            "ConsistentRead": True,
        }

    def expire(self, session_id: str, event_id: str, at_seconds: int) -> None:
        key = {"session_id": s(session_id), "event_id": s(event_id)}
        self._dynamo.expire(self._table, key, "event_id", at_seconds)

    def delete_all(self, session_id: str) -> int:
        """Delete every event of a session, expired ones included (an erasure); how many were there. Keys
        only, strongly consistent; deleted 25 at a time, what DynamoDB leaves unprocessed retried. Repeatable:
        run again, it finds none."""
        found = self._dynamo.query(self._keys_of(session_id))
        keys = [{"session_id": s(session_id), "event_id": item["event_id"]} for item in found]
        for start in range(0, len(keys), BATCH_WRITE_ITEMS):
            self._delete_batch(keys[start : start + BATCH_WRITE_ITEMS])
        return len(keys)

    def _delete_batch(self, keys: list[Item]) -> None:
        pending: list[Item] = [{"DeleteRequest": {"Key": key}} for key in keys]
        for round_number in range(UNPROCESSED_ROUNDS):
            response = self._dynamo.call("batch_write_item", RequestItems={self._table: pending})
            pending = response.get("UnprocessedItems", {}).get(self._table, [])
            if not pending:
                return
            time.sleep(min(2.0, 0.05 * 2**round_number))
        raise StorageUnavailable()
