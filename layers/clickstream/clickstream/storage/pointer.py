"""The collecting pointer (`pk = pointer` in BatchesTable): the open batch, its shard count and its counter.

DynamoDB calls: GetItem, PutItem, UpdateItem, DeleteItem on BatchesTable.
"""

from __future__ import annotations

from clickstream.records import POINTER_KEY, NumberBlock, Pointer, PointerUnavailable
from clickstream.storage.plumbing import Dynamo, Item, n, optional_n, optional_s, s

_KEY = {"pk": s(POINTER_KEY)}


def _pointer(item: Item) -> Pointer:
    return Pointer(
        batch_id=item["batch_id"]["S"],
        counter=int(item["counter"]["N"]),
        opened_at=int(item["opened_at"]["N"]),
        shards=optional_n(item, "shards") or 1,
        release_id=optional_s(item, "release_id"),
        sealed_at=optional_n(item, "sealed_at"),
    )


class CollectingPointer:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def next_block(self, size: int) -> NumberBlock:
        """Hand out the next `size` numbers of the collecting batch: one atomic ADD on the pointer.

        Raises PointerUnavailable (with the pointer as it is now) when there is none or it is sealed.
        """
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key=_KEY,
            UpdateExpression="ADD #counter :size",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(release_id)",
            ExpressionAttributeNames={"#counter": "counter"},
            ExpressionAttributeValues={":size": n(size)},
            ReturnValues="ALL_NEW",
        )
        if response is None:
            raise PointerUnavailable(self.get())
        pointer = _pointer(response["Attributes"])
        return NumberBlock(pointer.batch_id, pointer.shards, pointer.counter - size + 1, pointer.counter)

    def get(self) -> Pointer | None:
        item = self._dynamo.get(self._table, _KEY)
        return None if item is None else _pointer(item)

    def open_batch(self, batch_id: str, now: int, shards: int) -> bool:
        """Create the pointer of a new collecting batch of `shards` shards; False when another caller opened
        one first. The shard count is the batch's for good: every record of it copies this one."""
        item = {**_KEY, "batch_id": s(batch_id), "counter": n(0), "opened_at": n(now), "shards": n(shards)}
        return self._dynamo.put_new(self._table, item, "pk")

    def seal(self, release_id: str, now: int) -> Pointer | None:
        """Seal the pointer for `release_id`, freezing its counter. None: no pointer, or sealed by another."""
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key=_KEY,
            UpdateExpression="SET release_id = :release, sealed_at = if_not_exists(sealed_at, :now)",
            ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(release_id) OR release_id = :release)",
            ExpressionAttributeValues={":release": s(release_id), ":now": n(now)},
            ReturnValues="ALL_NEW",
        )
        return None if response is None else _pointer(response["Attributes"])

    def delete_sealed(self, release_id: str, batch_id: str) -> None:
        """Remove the sealed pointer so the next registration opens a new batch; repeatable."""
        self._dynamo.conditional(
            "delete_item",
            TableName=self._table,
            Key=_KEY,
            ConditionExpression="release_id = :release AND batch_id = :batch",
            ExpressionAttributeValues={":release": s(release_id), ":batch": s(batch_id)},
        )

    def unseal(self, sealed: Pointer) -> bool:
        """Undo the seal seen in `sealed` (empty batch, or a release_id already bound elsewhere).

        Only that very seal: the counter cannot move while sealed, and a new seal has a new sealed_at,
        so a late unseal can never undo a later, legitimate seal of the same batch by the same release.
        True when this call removed it.
        """
        if sealed.release_id is None or sealed.sealed_at is None:
            return False
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key=_KEY,
            UpdateExpression="REMOVE release_id, sealed_at",
            ConditionExpression=(
                "release_id = :release AND batch_id = :batch AND #counter = :counter AND sealed_at = :sealed_at"
            ),
            ExpressionAttributeNames={"#counter": "counter"},
            ExpressionAttributeValues={
                ":release": s(sealed.release_id),
                ":batch": s(sealed.batch_id),
                ":counter": n(sealed.counter),
                ":sealed_at": n(sealed.sealed_at),
            },
        )
        return response is not None
