"""SessionsTable: sessions and tombstones in their slots, keyed by (partition, session_number).

The partition of a slot is its batch id, or `<batch id>#<shard>` in a batch of several shards
(`records.partition_of`); the key attribute keeps its first name, `batch_id`.

DynamoDB calls: GetItem, PutItem, UpdateItem, Query on SessionsTable.
An erased tombstone (contract 17.4) is a tombstone with `erased_by`, the erasure that replaced the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from clickstream.records import Place, ShardPage, Slot, StoredSession, partition_of
from clickstream.storage.plumbing import Dynamo, Item, n, optional_s, s


def _key(place: Place) -> Item:
    return {"batch_id": s(place.partition), "session_number": n(place.session_number)}


def _session(item: Item, batch_id: str) -> StoredSession:
    return StoredSession(
        batch_id=batch_id,
        session_number=int(item["session_number"]["N"]),
        session_id=item["session_id"]["S"],
        created_at=int(item["created_at"]["N"]),
        user_id=optional_s(item, "user_id"),
        is_irrelevant=item["is_irrelevant"]["BOOL"],
        is_payload_search=item["is_payload_search"]["BOOL"],
        document=item["document"]["S"],
        experiment=optional_s(item, "experiment"),
    )


def _slot(item: Item) -> Slot:
    return Slot(int(item["session_number"]["N"]), optional_s(item, "session_id"), optional_s(item, "erased_by"))


class SessionSlots:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def put_session(self, session: StoredSession, shards: int) -> bool:
        """Write a session into its slot; False when the slot is taken (by a session or a tombstone)."""
        item: Item = {
            "batch_id": s(partition_of(session.batch_id, session.session_number, shards)),
            "session_number": n(session.session_number),
            "session_id": s(session.session_id),
            "created_at": n(session.created_at),
            "is_irrelevant": {"BOOL": session.is_irrelevant},
            "is_payload_search": {"BOOL": session.is_payload_search},
            "document": s(session.document),
        }
        if session.user_id is not None:
            item["user_id"] = s(session.user_id)
        if session.experiment is not None:
            item["experiment"] = s(session.experiment)
        return self._dynamo.put_new(self._table, item, "session_number")

    def put_tombstone(self, place: Place) -> bool:
        """Close a slot whose registration never wrote it; False when a session got there first."""
        item = {**_key(place), "tombstone": {"BOOL": True}}
        if self._dynamo.put_new(self._table, item, "session_number"):
            return True
        # Taken: by a session, or by a tombstone (a concurrent settle of the same release, or this very
        # write when botocore retried an attempt whose answer was lost). Only a session counts as one.
        slot = self.get_slot(place)
        return slot is not None and slot.is_tombstone

    def erase(self, place: Place, erasure_id: str) -> None:
        """An erased tombstone over the slot, keeping the slot's expiry (retention) if it has one; a slot
        erased already keeps its first erasure, so a repeated step changes nothing."""
        item: Item = {**_key(place), "tombstone": {"BOOL": True}, "erased_by": s(erasure_id)}
        current = self._dynamo.get(self._table, _key(place))
        if current is not None and "erased_by" in current:
            return
        if current is not None and "expires_at" in current:
            item["expires_at"] = current["expires_at"]
        self._dynamo.call("put_item", TableName=self._table, Item=item)

    def get_slot(self, place: Place) -> Slot | None:
        item = self._dynamo.get(self._table, _key(place))
        if item is None:
            return None
        return _slot(item)

    def get_session(self, place: Place) -> StoredSession | None:
        item = self._dynamo.get(self._table, _key(place))
        if item is None or "tombstone" in item:
            return None
        return _session(item, place.batch_id)

    def set_irrelevant(self, place: Place) -> bool:
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key=_key(place),
            UpdateExpression="SET is_irrelevant = :true",
            ConditionExpression="attribute_exists(session_id)",
            ExpressionAttributeValues={":true": {"BOOL": True}},
        )
        return response is not None

    def shard_page(
        self, batch_id: str, partition: str, after_number: int, limit: int, start: Item | None = None
    ) -> ShardPage:
        """One Query of a shard: its sessions with number > `after_number`, ascending, at most `limit`
        slots read (a tombstone read counts), continuing from `start`."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "batch_id = :partition AND session_number > :after",
            "ExpressionAttributeValues": {":partition": s(partition), ":after": n(after_number)},
            "Limit": limit,
            "ConsistentRead": True,
        }
        if start is not None:
            request["ExclusiveStartKey"] = start
        response = self._dynamo.call("query", **request)
        items = response.get("Items", [])
        sessions = [_session(item, batch_id) for item in items if "tombstone" not in item]
        erased = tuple(int(item["session_number"]["N"]) for item in items if "erased_by" in item)
        return ShardPage(sessions, response.get("LastEvaluatedKey"), erased)

    def slots_between(self, partition: str, first: int, last: int) -> Iterator[Slot]:
        """The written slots of one shard numbered first..last (sessions and tombstones), keys only."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "batch_id = :partition AND session_number BETWEEN :first AND :last",
            "ExpressionAttributeValues": {":partition": s(partition), ":first": n(first), ":last": n(last)},
            "ProjectionExpression": "session_number, session_id, erased_by",
        }
        for item in self._dynamo.query(request):
            yield _slot(item)

    def expire(self, place: Place, at_seconds: int) -> None:
        self._dynamo.expire(self._table, _key(place), "session_number", at_seconds)

    def slots(self, partition: str) -> Iterator[Slot]:
        """Every written slot of one shard (sessions and tombstones), ascending, keys only."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "batch_id = :partition",
            "ExpressionAttributeValues": {":partition": s(partition)},
            "ProjectionExpression": "session_number, session_id, erased_by",
            "ConsistentRead": True,
        }
        for item in self._dynamo.query(request):
            yield _slot(item)
