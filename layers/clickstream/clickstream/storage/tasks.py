"""ImprovementTasksTable: one improvement task per session.

DynamoDB calls: GetItem, PutItem on ImprovementTasksTable.
"""

from __future__ import annotations

from clickstream.records import StoredTask
from clickstream.storage.plumbing import Dynamo, n, s


class Tasks:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def put_pending(self, task: StoredTask) -> bool:
        """Store a pending task unless one is already pending for the session."""
        item = {
            "session_id": s(task.session_id),
            "batch_id": s(task.batch_id),
            "session_number": n(task.session_number),
            "status": s(task.status),
            "requested_at": n(task.requested_at),
        }
        response = self._dynamo.conditional(
            "put_item",
            TableName=self._table,
            Item=item,
            ConditionExpression="attribute_not_exists(session_id) OR #status <> :pending",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":pending": s("pending")},
        )
        return response is not None

    def get(self, session_id: str) -> StoredTask | None:
        item = self._dynamo.get(self._table, {"session_id": s(session_id)})
        if item is None:
            return None
        return StoredTask(
            session_id=session_id,
            batch_id=item["batch_id"]["S"],
            session_number=int(item["session_number"]["N"]),
            status=item["status"]["S"],
            requested_at=int(item["requested_at"]["N"]),
        )

    def expire(self, session_id: str, at_seconds: int) -> None:
        self._dynamo.expire(self._table, {"session_id": s(session_id)}, "session_id", at_seconds)
