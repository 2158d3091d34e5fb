"""DynamoDB's per-partition-key write limit, simulated in front of any DynamoDB endpoint.

DynamoDB serves at most 1,000 write units a second for one partition key (an item of up to 1 KB written
is one unit); beyond that it answers ProvisionedThroughputExceededException, which botocore retries with
backoff. This simulator keeps a token bucket per (table, partition-key value), refilled at `rate` units
a second and holding at most one second's worth, and answers a write that finds its bucket short with
that error, at botocore's `before-send`, so the service's retry policy sees it exactly as it would see
DynamoDB's. Scale the rate down (e.g. 6 units a second) so this machine outruns the simulator.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.client import BaseClient
from botocore.compat import HTTPHeaders

from local.template import load_template, table_definitions
from tests.support.faults import RawBody

WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})


def _hash_attributes(names: dict[str, str]) -> dict[str, str]:
    """Physical table name -> its partition-key attribute, from template.yaml."""
    definitions = table_definitions(load_template())
    attributes = {}
    for logical_id, physical in names.items():
        [hash_key] = [key["AttributeName"] for key in definitions[logical_id]["KeySchema"] if key["KeyType"] == "HASH"]
        attributes[physical] = hash_key
    return attributes


class PartitionThrottle:
    """Write units per second per partition key, enforced for every client attached; thread-safe."""

    def __init__(self, table_names: dict[str, str], rate: float) -> None:
        self._hash_attribute = _hash_attributes(table_names)
        self.rate = rate
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()
        self.throttled = 0
        self.written_units: dict[tuple[str, str], float] = {}

    def attach(self, client: BaseClient) -> None:
        client.meta.events.register("before-send.dynamodb", cast(Callable[..., None], self._answer))

    def _answer(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        target = request.headers.get("X-Amz-Target", "")
        operation = (target.decode() if isinstance(target, bytes) else str(target)).rsplit(".", 1)[-1]
        if operation not in WRITES or not request.body:
            return None
        raw = request.body
        body = json.loads(raw if isinstance(raw, bytes | str) else bytes(cast(bytearray, raw)))
        table = body["TableName"]
        item = body.get("Item") or body.get("Key") or {}
        value = next(iter(item.get(self._hash_attribute[table], {}).values()), "")
        units = min(self.rate, max(1, math.ceil(len(json.dumps(body.get("Item", {}))) / 1024)))
        if self._take((table, str(value)), units):
            return None
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "simulated-throttle"}
        error = {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "The level of configured provisioned throughput for the table was exceeded",
        }
        return AWSResponse(request.url, 400, HTTPHeaders.from_dict(headers), RawBody(json.dumps(error).encode()))

    def _take(self, key: tuple[str, str], units: float) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.rate, now))
            tokens = min(self.rate, tokens + (now - at) * self.rate)
            if tokens < units:
                self._buckets[key] = (tokens, now)
                self.throttled += 1
                return False
            self._buckets[key] = (tokens - units, now)
            self.written_units[key] = self.written_units.get(key, 0.0) + units
            return True
