"""SessionsTable: sessions and tombstones in their slots, keyed by (batch_id, session_number).

DynamoDB calls: GetItem, PutItem, UpdateItem, Query on SessionsTable.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from clickstream.records import Slot, StoredSession
from clickstream.storage.plumbing import Dynamo, Item, n, optional_s, s


def _session(item: Item) -> StoredSession:
    return StoredSession(
        batch_id=item["batch_id"]["S"],
        session_number=int(item["session_number"]["N"]),
        session_id=item["session_id"]["S"],
        created_at=int(item["created_at"]["N"]),
        user_id=optional_s(item, "user_id"),
        is_irrelevant=item["is_irrelevant"]["BOOL"],
        is_payload_search=item["is_payload_search"]["BOOL"],
        document=item["document"]["S"],
    )


class SessionSlots:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def put_session(self, session: StoredSession) -> bool:
        """Write a session into its slot; False when the slot is taken (by a session or a tombstone)."""
        item: Item = {
            "batch_id": s(session.batch_id),
            "session_number": n(session.session_number),
            "session_id": s(session.session_id),
            "created_at": n(session.created_at),
            "is_irrelevant": {"BOOL": session.is_irrelevant},
            "is_payload_search": {"BOOL": session.is_payload_search},
            "document": s(session.document),
        }
        if session.user_id is not None:
            item["user_id"] = s(session.user_id)
        return self._dynamo.put_new(self._table, item, "session_number")

    def put_tombstone(self, batch_id: str, session_number: int) -> bool:
        """Close a slot whose registration never wrote it; False when a session got there first."""
        item = {"batch_id": s(batch_id), "session_number": n(session_number), "tombstone": {"BOOL": True}}
        if self._dynamo.put_new(self._table, item, "session_number"):
            return True
        # Taken: by a session, or by a tombstone (a concurrent settle of the same release, or this very
        # write when botocore retried an attempt whose answer was lost). Only a session counts as one.
        slot = self.get_slot(batch_id, session_number)
        return slot is not None and slot.is_tombstone

    def get_slot(self, batch_id: str, session_number: int) -> Slot | None:
        item = self._dynamo.get(self._table, {"batch_id": s(batch_id), "session_number": n(session_number)})
        if item is None:
            return None
        return Slot(session_number, optional_s(item, "session_id"))

    def get_session(self, batch_id: str, session_number: int) -> StoredSession | None:
        item = self._dynamo.get(self._table, {"batch_id": s(batch_id), "session_number": n(session_number)})
        if item is None or "tombstone" in item:
            return None
        return _session(item)

    def set_irrelevant(self, batch_id: str, session_number: int) -> bool:
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key={"batch_id": s(batch_id), "session_number": n(session_number)},
            UpdateExpression="SET is_irrelevant = :true",
            ConditionExpression="attribute_exists(session_id)",
            ExpressionAttributeValues={":true": {"BOOL": True}},
        )
        return response is not None

    def sessions_after(self, batch_id: str, after_number: int, page_size: int) -> Iterator[StoredSession]:
        """Sessions of a batch with number > `after_number`, ascending; tombstones skipped.

        Reads lazily, `page_size` items per Query, so a caller that stops early reads no further.
        """
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "batch_id = :batch AND session_number > :after",
            "ExpressionAttributeValues": {":batch": s(batch_id), ":after": n(after_number)},
            "Limit": page_size,
            "ConsistentRead": True,
        }
        for item in self._dynamo.query(request):
            if "tombstone" not in item:
                yield _session(item)

    def slots(self, batch_id: str) -> Iterator[Slot]:
        """Every written slot of a batch (sessions and tombstones), keys only."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "batch_id = :batch",
            "ExpressionAttributeValues": {":batch": s(batch_id)},
            "ProjectionExpression": "session_number, session_id",
            "ConsistentRead": True,
        }
        for item in self._dynamo.query(request):
            yield Slot(int(item["session_number"]["N"]), optional_s(item, "session_id"))
