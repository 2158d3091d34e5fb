"""SessionIdsTable: the claim that makes a session_id register once, and the place it registered in.

DynamoDB calls: GetItem, PutItem, UpdateItem, DeleteItem on SessionIdsTable; Query on its sparse index
by_user_key.
"""

from __future__ import annotations

from clickstream.records import Claim, Place
from clickstream.storage.plumbing import Dynamo, Item, is_live, n, optional_n, optional_s, s

_REGISTERED = "registered"
# Sparse and KEYS_ONLY: only claims with a user_key are in it, each costing one index write unit, once.
USER_INDEX = "by_user_key"


def _claim(item: Item) -> Claim:
    batch_id = optional_s(item, "batch_id")
    number = optional_n(item, "session_number")
    place = None if batch_id is None or number is None else Place(batch_id, number, optional_n(item, "shards") or 1)
    return Claim(
        session_id=item["session_id"]["S"],
        state=item["state"]["S"],
        claim_token=item["claim_token"]["S"],
        claimed_at=int(item["claimed_at"]["N"]),
        place=place,
        user_key=optional_s(item, "user_key"),
    )


def _place_values(place: Place) -> Item:
    return {":batch": s(place.batch_id), ":number": n(place.session_number), ":shards": n(place.shards)}


class Claims:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def claim(self, session_id: str, token: str, now: int, place: Place, user_key: str | None = None) -> bool:
        """Claim a session_id for one registration, with the place it is numbered for; False when it is
        claimed already. The place is in the claim before the session is written, so a retry that takes
        the claim over finishes there and a session_id never lands in two places. An expired claim (its
        batch's retention ran out) is no claim: the session_id registers again, as a new session. The
        user's key rides on the same put (no other request); later updates leave it, so the index is written
        once."""
        item: Item = {
            "session_id": s(session_id),
            "state": s("assigned"),
            "claim_token": s(token),
            "claimed_at": n(now),
            "batch_id": s(place.batch_id),
            "session_number": n(place.session_number),
            "shards": n(place.shards),
        }
        if user_key is not None:
            item["user_key"] = s(user_key)
        return self._dynamo.put_new(self._table, item, "session_id", over_expired=True)

    def user_sessions(self, user_key: str, limit: int, after: str | None = None) -> tuple[list[str], str | None]:
        request: Item = {
            "TableName": self._table,
            "IndexName": USER_INDEX,
            "KeyConditionExpression": "user_key = :key",
            "ExpressionAttributeValues": {":key": s(user_key)},
        }
        if after is not None:
            request["ExclusiveStartKey"] = {"user_key": s(user_key), "session_id": s(after)}
        # One more than asked tells whether there is a next page without another request.
        found = [item["session_id"]["S"] for item in self._dynamo.query(request, limit + 1)]
        page = found[:limit]
        return page, (page[-1] if len(found) > limit else None)

    def get(self, session_id: str) -> Claim | None:
        """The live claim (an expired one is gone, whether or not TTL has deleted it yet)."""
        item = self._dynamo.get(self._table, {"session_id": s(session_id)})
        return _claim(item) if item is not None and is_live(item, self._dynamo.now_s()) else None

    def stored(self, session_id: str) -> Claim | None:
        """The claim as stored, even past its expiry: TTL deletes an expired item up to days later, and an
        erasure deletes what is still there (every route already treats it as gone)."""
        item = self._dynamo.get(self._table, {"session_id": s(session_id)})
        return None if item is None else _claim(item)

    def take_over(self, session_id: str, old_token: str, new_token: str, now: int) -> Claim | None:
        """Replace a stale claim (its registration crashed or stalled) with ours.

        Returns the claim as it stands after the take-over: its place is the one to use, since the old
        owner can no longer record another.
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

    def assign(self, session_id: str, token: str, place: Place) -> bool:
        """Record a new place for the session (its old one was closed by a release); only while the claim
        is ours and not registered."""
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key={"session_id": s(session_id)},
            UpdateExpression="SET #state = :assigned, batch_id = :batch, session_number = :number, shards = :shards",
            ConditionExpression="claim_token = :token AND #state <> :registered",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":assigned": s("assigned"),
                ":token": s(token),
                ":registered": s(_REGISTERED),
                **_place_values(place),
            },
        )
        return response is not None

    def mark_registered(self, session_id: str, place: Place) -> bool:
        """Final step of a registration; repeatable, and only ever for the place the claim records."""
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key={"session_id": s(session_id)},
            UpdateExpression="SET #state = :registered",
            ConditionExpression="batch_id = :batch AND session_number = :number",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":registered": s(_REGISTERED),
                ":batch": s(place.batch_id),
                ":number": n(place.session_number),
            },
        )
        return response is not None

    def expire(self, session_id: str, batch_id: str, at_seconds: int) -> None:
        """The claim's time to live, if it still places the session in `batch_id` (not a later session)."""
        self._dynamo.expire(self._table, {"session_id": s(session_id)}, "session_id", at_seconds, batch_id)

    def delete(self, session_id: str, place: Place | None) -> bool:
        """An erasure deletes the claim it found (contract 17): only while it still places the session where
        it did (a session_id registered again since, by someone else, keeps its new claim). False when gone."""
        if place is None:
            condition, values = "attribute_exists(session_id) AND attribute_not_exists(batch_id)", None
        else:
            condition = "batch_id = :batch AND session_number = :number"
            values = {":batch": s(place.batch_id), ":number": n(place.session_number)}
        request: Item = {
            "TableName": self._table,
            "Key": {"session_id": s(session_id)},
            "ConditionExpression": condition,
        }
        if values is not None:
            request["ExpressionAttributeValues"] = values
        return self._dynamo.conditional("delete_item", **request) is not None
