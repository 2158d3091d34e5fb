"""Seams for the late-write tests (contract 13.5, 13.6): a clock the test moves, a gate that holds a write
between its fence check and its store, and DynamoDB's TTL applied by hand."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

GATE_TIMEOUT_S = 10


class FakeClock:
    """Milliseconds that move only when the test moves them, or when the domain sleeps."""

    def __init__(self, start_ms: int) -> None:
        self.now = start_ms

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms

    def sleep(self, seconds: float) -> None:
        self.now += max(1, int(seconds * 1000))


class Gate:
    """Wraps a storage call: while armed, each call announces itself (`reached`) and waits for `release()`
    before it runs. A write held here has passed its fence check and not stored anything yet."""

    def __init__(self, call: Callable[..., Any]) -> None:
        self._call = call
        self.reached = threading.Event()
        self._go = threading.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.reached.set()
        if not self._go.wait(GATE_TIMEOUT_S):
            raise TimeoutError("the gate was never released")
        return self._call(*args, **kwargs)

    def wait_reached(self) -> None:
        assert self.reached.wait(GATE_TIMEOUT_S), "the write never reached its store"

    def release(self) -> None:
        self._go.set()


def apply_ttl(client: DynamoDBClient, tables: dict[str, str], now_s: int, table_ids: tuple[str, ...]) -> int:
    """What DynamoDB's TTL does, at `now_s`: delete the items of these tables whose `expires_at` has passed.
    (moto never expires items.) Returns how many it deleted."""
    deleted = 0
    for table_id in table_ids:
        table = tables[table_id]
        keys = [key["AttributeName"] for key in client.describe_table(TableName=table)["Table"]["KeySchema"]]
        for page in client.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                if "expires_at" in item and int(item["expires_at"]["N"]) < now_s:
                    client.delete_item(TableName=table, Key={name: item[name] for name in keys})
                    deleted += 1
    return deleted
