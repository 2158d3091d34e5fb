"""UserDatasetsTable: which exported batches hold a user's sessions once the batch's items expired.

Retention deletes a batch's claims, and with them the user index (`by_user_key`); the dataset keeps the
sessions. So before a claim with a user_key expires, retention records (user_key, batch_id) here, once per
user and batch; an erasure reads it to find the datasets to rewrite, and deletes the user's items when done.
No time to live: an item lives as long as the dataset that holds the user's sessions.

DynamoDB calls: PutItem, Query, DeleteItem on UserDatasetsTable.
"""

from __future__ import annotations

from clickstream.storage.plumbing import Dynamo, Item, s


class UserDatasets:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def add(self, user_key: str, batch_id: str) -> None:
        self._dynamo.call("put_item", TableName=self._table, Item={"user_key": s(user_key), "batch_id": s(batch_id)})

    def batches_of(self, user_key: str) -> list[str]:
        request: Item = {
            "TableName": self._table,
            "KeyConditionExpression": "user_key = :key",
            "ExpressionAttributeValues": {":key": s(user_key)},
            "ConsistentRead": True,
        }
        return [item["batch_id"]["S"] for item in self._dynamo.query(request)]

    def remove(self, user_key: str, batch_id: str) -> None:
        self._dynamo.call("delete_item", TableName=self._table, Key={"user_key": s(user_key), "batch_id": s(batch_id)})
