"""What every table gateway shares: the DynamoDB client, its error mapping and the Query loop.

Only single-item conditional writes are used, so the service runs on DynamoDB-compatible stores
without transactions. A failed condition is a return value; throttling or a fault that outlived
botocore's retries is `StorageUnavailable`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

from clickstream.errors import StorageUnavailable
from clickstream.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

Item = dict[str, Any]

_UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)
_CONDITION_FAILED = "ConditionalCheckFailedException"
# Retention (contract 13.6): an item past its time to live counts as gone, though DynamoDB's TTL may delete it
# days later. Reads leave it out; a conditional put for a new item may replace it.
LIVE = "(attribute_not_exists(expires_at) OR expires_at > :now_s)"


def client_config(settings: Settings) -> Config:
    """The configuration of the service's DynamoDB client (benchmarks build their baseline with it too)."""
    # total_max_attempts counts the first attempt too (botocore's max_attempts counts only retries).
    return Config(
        retries={"mode": "standard", "total_max_attempts": settings.dynamodb_max_attempts},
        max_pool_connections=settings.dynamodb_max_concurrency + 4,
        connect_timeout=3,
        read_timeout=10,
        # Requests are built here, not from input; DynamoDB validates them anyway. Skipping botocore's
        # client-side check saves ~10% of the client CPU per request (bench/RESULTS.md, paging).
        parameter_validation=False,
    )


def service_config(settings: Settings) -> Config:
    """The configuration of the other AWS clients (EventBridge, SQS, S3): the same retries, and timeouts
    short enough that one stalled call fails alone, well inside its function's time."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": settings.dynamodb_max_attempts},
        connect_timeout=3,
        read_timeout=30,
    )


def new_client(settings: Settings) -> DynamoDBClient:
    # AWS_ENDPOINT_URL_DYNAMODB, when set, is honoured by botocore itself.
    return boto3.session.Session().client("dynamodb", config=client_config(settings))


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def optional_s(item: Item, name: str) -> str | None:
    attribute = item.get(name)
    return attribute["S"] if attribute else None


def optional_n(item: Item, name: str) -> int | None:
    attribute = item.get(name)
    return int(attribute["N"]) if attribute else None


def wall_clock_s() -> int:
    return int(time.time())


def is_live(item: Item | None, now_s: int) -> bool:
    """The item exists and has not expired (LIVE, for an item already read)."""
    if item is None:
        return False
    expires_at = optional_n(item, "expires_at")
    return expires_at is None or expires_at > now_s


class Dynamo:
    """One DynamoDB client per container, safe to share between threads. `now_s` is the time TTL compares
    `expires_at` with (epoch seconds): the wall clock, or a test's."""

    def __init__(self, client: DynamoDBClient, now_s: Callable[[], int] = wall_clock_s) -> None:
        self._client = client
        self.now_s = now_s

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self._client, operation)(**kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _UNAVAILABLE_CODES:
                raise StorageUnavailable() from error
            raise
        except (ConnectionError, ReadTimeoutError) as error:
            raise StorageUnavailable() from error
        return response

    def conditional(self, operation: str, **kwargs: Any) -> dict[str, Any] | None:
        """Run a conditional write; None when its condition did not hold."""
        try:
            return self.call(operation, **kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return None
            raise

    def put_new(self, table: str, item: Item, key_attribute: str, *, over_expired: bool = False) -> bool:
        """Put `item` unless an item with its key exists (`over_expired`: a live one); False when one does."""
        condition = f"attribute_not_exists({key_attribute})"
        if not over_expired:
            return self.conditional("put_item", TableName=table, Item=item, ConditionExpression=condition) is not None
        response = self.conditional(
            "put_item",
            TableName=table,
            Item=item,
            ConditionExpression=f"{condition} OR expires_at <= :now_s",
            ExpressionAttributeValues={":now_s": n(self.now_s())},
        )
        return response is not None

    def live_only(self, request: dict[str, Any]) -> dict[str, Any]:
        """A Query request that leaves out expired items (LIVE)."""
        values = {**request.get("ExpressionAttributeValues", {}), ":now_s": n(self.now_s())}
        return {**request, "FilterExpression": LIVE, "ExpressionAttributeValues": values}

    def expire(self, table: str, key: Item, key_attribute: str, at_seconds: int, batch_id: str | None = None) -> None:
        """Set the item's time to live (DynamoDB TTL deletes it after `at_seconds`); no item (or, with
        `batch_id`, none of that batch), no write."""
        condition = f"attribute_exists({key_attribute})"
        values = {":at": n(at_seconds)}
        if batch_id is not None:
            condition += " AND batch_id = :batch"
            values[":batch"] = s(batch_id)
        self.conditional(
            "update_item",
            TableName=table,
            Key=key,
            UpdateExpression="SET expires_at = :at",
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )

    def get(self, table: str, key: Item) -> Item | None:
        item: Item | None = self.call("get_item", TableName=table, Key=key, ConsistentRead=True).get("Item")
        return item

    def query(self, request: dict[str, Any], total: int | None = None) -> Iterator[Item]:
        """The items a Query matches, one page at a time as the caller consumes them.

        With `total`, at most that many: each page asks only for what is still wanted, so a page cut short
        at 1 MB never makes the next one read past `total`.
        """
        request = dict(request)
        taken = 0
        while total is None or taken < total:
            if total is not None:
                request["Limit"] = total - taken
            response = self.call("query", **request)
            items: list[Item] = response.get("Items", [])
            taken += len(items)
            yield from items
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return
            request["ExclusiveStartKey"] = last_key
