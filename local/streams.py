"""A DynamoDB stream delivered to a function, as Lambda's event source mapping does it: records in
order, a batch at a time, the function's failed records (its partial batch response) read again."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.config import Config

from local.dynamodb import LOCAL_REGION

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams.client import DynamoDBStreamsClient

log = logging.getLogger("clickstream.local")


class Functions(Protocol):
    """Whatever runs the template's functions: in-process (local.harness) or as deployed (local.deployed)."""

    def invoke(self, function_id: str, event: Any) -> Any: ...


def stream_event(records: list[dict[str, Any]], stream_arn: str) -> dict[str, Any]:
    """The event Lambda's DynamoDB event source gives a function, from GetRecords' records."""
    delivered = []
    for record in records:
        change = dict(record["dynamodb"])
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            change["ApproximateCreationDateTime"] = created.timestamp()
        delivered.append({**record, "dynamodb": change, "eventSourceARN": stream_arn, "awsRegion": LOCAL_REGION})
    return {"Records": delivered}


class StreamRelay:
    """Delivers one table's stream to one function of the template."""

    def __init__(self, endpoint: str, table: str, function_id: str, functions: Functions, batch_size: int = 25) -> None:
        session = boto3.session.Session()
        # The endpoint is named, so botocore must not build an account-based one.
        self._streams: DynamoDBStreamsClient = session.client(
            "dynamodbstreams", endpoint_url=endpoint, config=Config(account_id_endpoint_mode="disabled")
        )
        dynamodb = session.client("dynamodb", endpoint_url=endpoint)
        self.stream_arn: str = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self._function_id = function_id
        self._functions = functions
        self._batch_size = batch_size
        self._iterators: dict[str, str | None] = {}  # shard -> where to read next (None: the shard ended)

    def pump(self) -> int:
        """Deliver what the stream holds now; how many records the function took."""
        self._find_shards()
        return sum(self._pump_shard(shard) for shard in list(self._iterators))

    def _pump_shard(self, shard: str) -> int:
        delivered = 0
        iterator = self._iterators[shard]
        while iterator is not None:
            response = self._streams.get_records(ShardIterator=iterator, Limit=self._batch_size)
            records: list[dict[str, Any]] = response.get("Records", [])  # type: ignore[assignment]
            if not records:
                iterator = response.get("NextShardIterator")
                break
            failed = self._deliver(records)
            if failed is not None:  # read again from the first failed record, next time
                iterator = self._streams.get_shard_iterator(
                    StreamArn=self.stream_arn,
                    ShardId=shard,
                    ShardIteratorType="AT_SEQUENCE_NUMBER",
                    SequenceNumber=failed,
                )["ShardIterator"]
                break
            delivered += len(records)
            iterator = response.get("NextShardIterator")
        self._iterators[shard] = iterator
        return delivered

    def _deliver(self, records: list[dict[str, Any]]) -> str | None:
        """Invoke the function; the sequence number of its first failed record, if any."""
        try:
            result = self._functions.invoke(self._function_id, stream_event(records, self.stream_arn))
        except Exception:  # the whole batch failed: read it all again
            log.exception("%s failed on a batch of its stream; it is read again", self._function_id)
            return str(records[0]["dynamodb"]["SequenceNumber"])
        failures = (result or {}).get("batchItemFailures") or []
        return str(failures[0]["itemIdentifier"]) if failures else None

    def _find_shards(self) -> None:
        description = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in description.get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
