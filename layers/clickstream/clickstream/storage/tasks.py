"""ImprovementTasksTable: one improvement task per session, and the index workers poll it by.

The index `tasks_by_status` is keyed by `queue_bucket` = `<status>#<k>` (k: the session_id's CRC-32 modulo
TASK_BUCKETS) and sorted by `queue_order` = `<requested_at, 13 digits>#<32 hex digits of the session_id's
SHA-256>`: the tasks of one status spread over TASK_BUCKETS partition keys (no single hot key), each bucket
in time order, merged here. The hash keeps the sort key short (a session_id may take 1,024 bytes in UTF-8,
a sort key no more) and unique per session.

DynamoDB calls: GetItem, UpdateItem, DeleteItem on ImprovementTasksTable; Query on its index tasks_by_status.
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Iterator
from itertools import islice
from typing import Any

from clickstream.records import StoredTask, task_cursor
from clickstream.storage.plumbing import LIVE, Dynamo, Item, is_live, n, optional_n, optional_s, s

TASKS_BY_STATUS_INDEX = "tasks_by_status"
TASK_BUCKETS = 16  # fixed: a task's bucket is part of its stored key


def queue_bucket(status: str, session_id: str) -> str:
    return f"{status}#{zlib.crc32(session_id.encode('utf-8')) % TASK_BUCKETS}"


def queue_order(requested_at: int, session_id: str) -> str:
    """The position of a task among those of its status: the polling cursor (records.task_cursor)."""
    return task_cursor(requested_at, session_id)


def stored_task(item: Item) -> StoredTask:
    return StoredTask(
        session_id=item["session_id"]["S"],
        batch_id=item["batch_id"]["S"],
        session_number=int(item["session_number"]["N"]),
        status=item["status"]["S"],
        requested_at=int(item["requested_at"]["N"]),
        completed_at=optional_n(item, "completed_at"),
        error=optional_s(item, "error"),
    )


class Tasks:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def put_pending(self, task: StoredTask, expires_at: int | None) -> bool:
        """Make the session's task pending unless it already is, with its time to live (None: none). A
        completed task is replaced by the new one, and so is the task of an earlier session with this id
        (another batch and number: expired with its batch, whether or not TTL has deleted it yet)."""
        values: dict[str, Any] = {
            ":batch": s(task.batch_id),
            ":number": n(task.session_number),
            ":pending": s("pending"),
            ":requested": n(task.requested_at),
            ":bucket": s(queue_bucket("pending", task.session_id)),
            ":order": s(queue_order(task.requested_at, task.session_id)),
        }
        update = (
            "SET batch_id = :batch, session_number = :number, #status = :pending, requested_at = :requested,"
            " queue_bucket = :bucket, queue_order = :order"
        )
        if expires_at is None:
            update += " REMOVE completed_at, #error, expires_at"
        else:
            update += ", expires_at = :expires REMOVE completed_at, #error"
            values[":expires"] = n(expires_at)
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key={"session_id": s(task.session_id)},
            UpdateExpression=update,
            ConditionExpression=(
                "attribute_not_exists(session_id) OR #status <> :pending"
                " OR batch_id <> :batch OR session_number <> :number"
            ),
            ExpressionAttributeNames={"#status": "status", "#error": "error"},
            ExpressionAttributeValues=values,
        )
        return response is not None

    def complete(
        self, session_id: str, status: str, completed_at: int, error: str | None, requested_at: int | None
    ) -> StoredTask | None:
        """Mark the session's pending task (the one requested at `requested_at`, if given) done or failed;
        None when there is no such pending task."""
        values: dict[str, Any] = {
            ":pending": s("pending"),
            ":status": s(status),
            ":completed_at": n(completed_at),
            ":bucket": s(queue_bucket(status, session_id)),
        }
        update = "SET #status = :status, completed_at = :completed_at, queue_bucket = :bucket"
        if error is not None:
            update += ", #error = :error"
            values[":error"] = s(error)
        condition = f"#status = :pending AND {LIVE}"
        values[":now_s"] = n(self._dynamo.now_s())
        if requested_at is not None:
            condition += " AND requested_at = :requested_at"
            values[":requested_at"] = n(requested_at)
        names = {"#status": "status", **({"#error": "error"} if error is not None else {})}
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key={"session_id": s(session_id)},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        return None if response is None else stored_task(response["Attributes"])

    def get(self, session_id: str) -> StoredTask | None:
        """The session's live task (an expired one is gone, whether or not TTL has deleted it yet)."""
        item = self._dynamo.get(self._table, {"session_id": s(session_id)})
        return stored_task(item) if item is not None and is_live(item, self._dynamo.now_s()) else None

    def oldest(self, status: str, limit: int, after: str | None) -> tuple[list[StoredTask], bool]:
        """Tasks of `status`, oldest first, after the cursor `after` (a queue_order); and whether more follow."""
        page = max(16, 2 * limit // TASK_BUCKETS)  # each bucket's share of a page, twice over: a few Queries
        buckets = [self._bucket(f"{status}#{bucket}", after, page) for bucket in range(TASK_BUCKETS)]
        merged = heapq.merge(*buckets, key=lambda item: item["queue_order"]["S"])
        items = list(islice(merged, limit + 1))
        return [stored_task(item) for item in items[:limit]], len(items) > limit

    def _bucket(self, bucket: str, after: str | None, page: int) -> Iterator[Item]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": TASKS_BY_STATUS_INDEX,
            "KeyConditionExpression": "queue_bucket = :bucket",
            "ExpressionAttributeValues": {":bucket": s(bucket)},
            "Limit": page,
        }
        if after is not None:
            request["KeyConditionExpression"] += " AND queue_order > :after"
            request["ExpressionAttributeValues"][":after"] = s(after)
        return self._dynamo.query(self._dynamo.live_only(request))

    def expire(self, session_id: str, batch_id: str, at_seconds: int) -> None:
        """The task's time to live, if it is one of `batch_id` (not of a later session with this id)."""
        self._dynamo.expire(self._table, {"session_id": s(session_id)}, "session_id", at_seconds, batch_id)

    def delete(self, session_id: str, batch_id: str, session_number: int) -> bool:
        """An erasure deletes the session's task, if it is that session's (batch and number); False when none."""
        response = self._dynamo.conditional(
            "delete_item",
            TableName=self._table,
            Key={"session_id": s(session_id)},
            ConditionExpression="batch_id = :batch AND session_number = :number",
            ExpressionAttributeValues={":batch": s(batch_id), ":number": n(session_number)},
        )
        return response is not None
