"""Erasure requests in BatchesTable (contract 17.3): `erasure#<id>`, the open lock of each user being
erased (`erasure-user#<user_key>`), and the set of users being erased now (`erasures-active`).

The lock makes a request idempotent per user: it is put first (conditionally), then the record, so a
request that stopped between the two is completed by the next one. Closing goes the other way: the record
first (done or failed, the stored user id removed), then the lock, then the active key, so a crash leaves at
most a lock whose erasure is closed, which the next request clears. The record's INSERT on the table's
stream starts the erasure (the outbox).

DynamoDB calls: GetItem, PutItem, UpdateItem, DeleteItem on BatchesTable.
"""

from __future__ import annotations

from clickstream.records import Erasure, ErasureCounts
from clickstream.storage.plumbing import Dynamo, Item, n, optional_n, optional_s, s

ERASURE_PREFIX = "erasure#"
LOCK_PREFIX = "erasure-user#"
ACTIVE_KEY = "erasures-active"
_COUNTS = ("sessions", "events", "tasks", "datasets_rewritten")


def erasure_key(erasure_id: str) -> Item:
    return {"pk": s(f"{ERASURE_PREFIX}{erasure_id}")}


def _lock_key(user_key: str) -> Item:
    return {"pk": s(f"{LOCK_PREFIX}{user_key}")}


def erasure_of(item: Item) -> Erasure:
    return Erasure(
        erasure_id=item["erasure_id"]["S"],
        user_key=item["user_key"]["S"],
        status=item["status"]["S"],
        requested_at=int(item["requested_at"]["N"]),
        stored_user_id=optional_s(item, "stored_user_id"),
        started_at=optional_n(item, "started_at"),
        completed_at=optional_n(item, "completed_at"),
        error=optional_s(item, "error"),
        requested_by=optional_s(item, "requested_by"),
        **{name: optional_n(item, name) or 0 for name in _COUNTS},
    )


def _record(erasure: Erasure) -> Item:
    item: Item = {
        **erasure_key(erasure.erasure_id),
        "erasure_id": s(erasure.erasure_id),
        "user_key": s(erasure.user_key),
        "status": s(erasure.status),
        "requested_at": n(erasure.requested_at),
    }
    if erasure.stored_user_id is not None:
        item["stored_user_id"] = s(erasure.stored_user_id)
    if erasure.requested_by is not None:
        item["requested_by"] = s(erasure.requested_by)
    return item


class Erasures:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def request(self, erasure: Erasure) -> Erasure:
        while True:
            lock = {**_lock_key(erasure.user_key), **{k: v for k, v in _record(erasure).items() if k != "pk"}}
            if self._dynamo.put_new(self._table, lock, "pk"):
                standing = erasure
            else:
                held = self._dynamo.get(self._table, _lock_key(erasure.user_key))
                if held is None:
                    continue  # closed meanwhile: ours is a new request
                standing = erasure_of(held)
            # The record from the lock's copy: a no-op when it is there already.
            self._dynamo.put_new(self._table, _record(standing), "pk")
            current = self.get(standing.erasure_id)
            if current is not None and current.is_open:
                return current
            self._clear_lock(erasure.user_key, standing.erasure_id)  # a crash after closing it left the lock

    def get(self, erasure_id: str) -> Erasure | None:
        item = self._dynamo.get(self._table, erasure_key(erasure_id))
        return None if item is None else erasure_of(item)

    def begin(self, erasure_id: str, now: int) -> Erasure | None:
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key=erasure_key(erasure_id),
            UpdateExpression="SET #status = :running, started_at = if_not_exists(started_at, :now)",
            ConditionExpression="#status IN (:pending, :running)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":pending": s("pending"), ":running": s("running"), ":now": n(now)},
            ReturnValues="ALL_NEW",
        )
        if response is None:
            return self.get(erasure_id)  # closed, or unknown
        erasure = erasure_of(response["Attributes"])
        self._active("ADD", erasure.user_key)
        return erasure

    def record_counts(self, erasure_id: str, counts: ErasureCounts) -> None:
        given = {name: value for name in _COUNTS if (value := getattr(counts, name)) is not None}
        if not given:
            return
        self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key=erasure_key(erasure_id),
            UpdateExpression="SET " + ", ".join(f"{name} = :{name}" for name in given),
            ConditionExpression="#status IN (:pending, :running)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":pending": s("pending"),
                ":running": s("running"),
                **{f":{name}": n(value) for name, value in given.items()},
            },
        )

    def close(self, erasure_id: str, status: str, now: int, error: str | None = None) -> Erasure | None:
        if status not in ("done", "failed"):
            raise ValueError(f"an erasure closes as done or failed, not {status!r}")
        values: Item = {":status": s(status), ":now": n(now), ":pending": s("pending"), ":running": s("running")}
        update = "SET #status = :status, completed_at = :now REMOVE stored_user_id"
        if error is not None:
            update = "SET #status = :status, completed_at = :now, #error = :error REMOVE stored_user_id"
            values[":error"] = s(error)
        self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key=erasure_key(erasure_id),
            UpdateExpression=update,
            ConditionExpression="#status IN (:pending, :running)",
            ExpressionAttributeNames={"#status": "status", **({"#error": "error"} if error is not None else {})},
            ExpressionAttributeValues=values,
        )
        erasure = self.get(erasure_id)
        if erasure is None:
            return None
        self._clear_lock(erasure.user_key, erasure_id)
        lock = self._dynamo.get(self._table, _lock_key(erasure.user_key))
        if lock is not None and lock["erasure_id"]["S"] != erasure_id:
            return erasure  # a retried close of an old erasure: the user's newer one keeps its guard
        self._active("DELETE", erasure.user_key)
        return erasure

    def active_user_keys(self) -> frozenset[str]:
        item = self._dynamo.get(self._table, {"pk": s(ACTIVE_KEY)})
        return frozenset(item["user_keys"]["SS"]) if item is not None and "user_keys" in item else frozenset()

    def _active(self, action: str, user_key: str) -> None:
        """ADD the user's key to, or DELETE it from, the set of users being erased now."""
        self._dynamo.call(
            "update_item",
            TableName=self._table,
            Key={"pk": s(ACTIVE_KEY)},
            UpdateExpression=f"{action} user_keys :key",
            ExpressionAttributeValues={":key": {"SS": [user_key]}},
        )

    def _clear_lock(self, user_key: str, erasure_id: str) -> None:
        """The user's lock, if it still names this erasure (a newer request's lock stays)."""
        self._dynamo.conditional(
            "delete_item",
            TableName=self._table,
            Key=_lock_key(user_key),
            ConditionExpression="erasure_id = :id",
            ExpressionAttributeValues={":id": s(erasure_id)},
        )
