"""Reading a table's stream whole, and EventBridge-style filter patterns as Lambda applies them to it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from local.streams import StreamRelay
from local.template import load_template


def matches(pattern: Any, value: Any) -> bool:
    """EventBridge's content filtering, the part the template uses: exact values, prefix, exists, anything-but."""
    if isinstance(pattern, dict):  # a field the event lacks is absent, and so are the fields under it
        fields = value if isinstance(value, dict) else {}
        return all(matches(rule, fields.get(key)) for key, rule in pattern.items())
    return any(_matches_one(rule, value) for rule in pattern)


def _matches_one(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        return bool(value == rule)
    if "exists" in rule:
        return (value is not None) is rule["exists"]
    if "prefix" in rule:
        return isinstance(value, str) and value.startswith(rule["prefix"])
    if "anything-but" in rule:
        return value is not None and value not in rule["anything-but"]
    raise AssertionError(f"a rule this test does not know: {rule}")


def stream_filters(event_id: str) -> list[dict[str, Any]]:
    """The filter patterns of one of the outbox's stream event sources in template.yaml."""
    source = load_template()["Resources"]["OutboxFunction"]["Properties"]["Events"][event_id]["Properties"]
    return [json.loads(entry["Pattern"]) for entry in source["FilterCriteria"]["Filters"]]


Image = dict[str, Any] | None


def filters_agree(records: list[dict[str, Any]], event_id: str, acts_on: Callable[[Image, Image], bool]) -> int:
    """Assert that the template's filters of `event_id` pass exactly the records the outbox acts on (given
    their old and new images as the stream carries them); the number passed."""
    filters = stream_filters(event_id)
    passed = 0
    for record in records:
        change = record["dynamodb"]
        acts = acts_on(change.get("OldImage"), change.get("NewImage"))
        passes = any(matches(pattern, {"dynamodb": change, "eventName": record["eventName"]}) for pattern in filters)
        assert passes == acts, (record["eventName"], change.get("Keys"), passes, acts)
        passed += passes
    return passed


def all_records(relay: StreamRelay) -> list[dict[str, Any]]:
    """Every record the table's stream holds, from its start."""
    streams = relay._streams
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=relay.stream_arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=relay.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = streams.get_records(ShardIterator=iterator)
            if not response["Records"]:
                break
            records += [dict(record) for record in response["Records"]]
            iterator = response.get("NextShardIterator")
    return records
