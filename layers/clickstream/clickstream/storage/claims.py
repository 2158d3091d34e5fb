"""SessionIdsTable: the claim that makes a session_id register once, and the slot it registered in.

DynamoDB calls: GetItem, PutItem, UpdateItem on SessionIdsTable.
"""

from __future__ import annotations

from clickstream.records import Claim
from clickstream.storage.plumbing import Dynamo, Item, n, optional_n, optional_s, s

_REGISTERED = "registered"


def _claim(item: Item) -> Claim:
    return Claim(
        session_id=item["session_id"]["S"],
        state=item["state"]["S"],
        claim_token=item["claim_token"]["S"],
        claimed_at=int(item["claimed_at"]["N"]),
        batch_id=optional_s(item, "batch_id"),
        session_number=optional_n(item, "session_number"),
    )


class Claims:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def claim(self, session_id: str, token: str, now: int) -> bool:
        """Claim a session_id for one registration; False when it is claimed already."""
        item = {"session_id": s(session_id), "state": s("claimed"), "claim_token": s(token), "claimed_at": n(now)}
        return self._dynamo.put_new(self._table, item, "session_id")

    def get(self, session_id: str) -> Claim | None:
        item = self._dynamo.get(self._table, {"session_id": s(session_id)})
        return None if item is None else _claim(item)

    def take_over(self, session_id: str, old_token: str, new_token: str, now: int) -> Claim | None:
        """Replace a stale claim (its registration crashed or stalled) with ours.

        Returns the claim as it stands after the take-over: the slot in it is the one to use, since
        the old owner can no longer assign one.
        """
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key={"session_id": s(session_id)},
            UpdateExpression="SET claim_token = :new, claimed_at = :now",
            ConditionExpression="claim_token = :old AND #state <> :registered",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":new": s(new_token),
                ":old": s(old_token),
                ":now": n(now),
                ":registered": s(_REGISTERED),
            },
            ReturnValues="ALL_NEW",
        )
        return None if response is None else _claim(response["Attributes"])

    def assign_slot(self, session_id: str, token: str, batch_id: str, session_number: int) -> bool:
        """Record the slot before writing the session, so a retry finds it instead of numbering again."""
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key={"session_id": s(session_id)},
            UpdateExpression="SET #state = :assigned, batch_id = :batch, session_number = :number",
            ConditionExpression="claim_token = :token AND #state <> :registered",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":assigned": s("assigned"),
                ":batch": s(batch_id),
                ":number": n(session_number),
                ":token": s(token),
                ":registered": s(_REGISTERED),
            },
        )
        return response is not None

    def mark_registered(self, session_id: str, batch_id: str, session_number: int) -> bool:
        """Final step of a registration; repeatable, and only ever for the slot the claim records."""
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key={"session_id": s(session_id)},
            UpdateExpression="SET #state = :registered",
            ConditionExpression="batch_id = :batch AND session_number = :number",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":registered": s(_REGISTERED),
                ":batch": s(batch_id),
                ":number": n(session_number),
            },
        )
        return response is not None
