"""Release records (`release#<id>` in BatchesTable): the batch each release_id names, bound once.

DynamoDB calls: GetItem, PutItem, UpdateItem on BatchesTable.
"""

from __future__ import annotations

from clickstream.records import Pointer, ReleaseRecord
from clickstream.storage.plumbing import Dynamo, Item, n, optional_n, s

RELEASE_PREFIX = "release#"


def release_key(release_id: str) -> str:
    return f"{RELEASE_PREFIX}{release_id}"


def release_record(item: Item) -> ReleaseRecord:
    return ReleaseRecord(
        release_id=item["release_id"]["S"],
        batch_id=item["batch_id"]["S"],
        released_at=int(item["released_at"]["N"]),
        last_number=int(item["last_number"]["N"]),
        shards=optional_n(item, "shards") or 1,
        session_count=optional_n(item, "session_count"),
        opened_at=optional_n(item, "opened_at"),
    )


class Releases:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def bind(self, release_id: str, sealed: Pointer) -> ReleaseRecord:
        """Attach `release_id` to the batch `sealed` holds, frozen at its seal, once; returns the binding that
        holds (maybe an older one, of another batch)."""
        item = {
            "pk": s(release_key(release_id)),
            "release_id": s(release_id),
            "batch_id": s(sealed.batch_id),
            "released_at": n(sealed.sealed_at or 0),
            "last_number": n(sealed.counter),
            "shards": n(sealed.shards),
            "opened_at": n(sealed.opened_at),
        }
        self._dynamo.put_new(self._table, item, "pk")
        record = self.get_release(release_id)
        if record is None:  # written above or earlier, and never deleted
            raise RuntimeError(f"release {release_id} vanished after it was bound")
        return record

    def get_release(self, release_id: str) -> ReleaseRecord | None:
        item = self._dynamo.get(self._table, {"pk": s(release_key(release_id))})
        return None if item is None else release_record(item)

    def record_session_count(self, release: ReleaseRecord, session_count: int) -> None:
        """Mark the release settled; repeatable. Its stream record announces the release (BatchReleased)."""
        self._dynamo.call(
            "update_item",
            TableName=self._table,
            Key={"pk": s(release_key(release.release_id))},
            UpdateExpression="SET session_count = :count",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":count": n(session_count)},
        )
