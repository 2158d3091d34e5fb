"""What one million sessions cost on AWS, from the capacity DynamoDB reports and the handlers' durations.

Each session is registered, gets 3 click events (one call), is paged once (pages of 100 sessions, up to
100 events each) and half of them are scheduled for improvement; then the batch is released. The run
is on dynalite, which reports capacity units by item size as DynamoDB does (moto's are flat): every
request asks `ReturnConsumedCapacity=TOTAL`. Index writes, which DynamoDB bills and dynalite does not
report, are added per index the written item lands in; a failed conditional write is billed 1 write unit.
The figures scale linearly from the measured batch to one million sessions.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.dynamodb import dynamodb_client, ensure_tables, local_table_names
from local.environment import lambda_environment
from local.processes import dynalite_server
from local.template import load_template, table_definitions

if TYPE_CHECKING:
    from botocore.model import OperationModel

    from local.harness import LocalFunctions

MILLION = 1_000_000
# us-east-1 on-demand list prices (USD), as published on the AWS pricing pages; recorded on PRICES_DATE.
PRICES_DATE = "2026-11-22"
PRICES = {
    "api_gateway_per_million_requests": 1.00,  # HTTP API, first 300 million a month
    "lambda_per_gb_second": 0.0000133334,  # arm64
    "lambda_per_million_requests": 0.20,
    "dynamodb_per_million_write_units": 0.625,  # on-demand, after the November 2024 price cut
    "dynamodb_per_million_read_units": 0.125,
    "cloudwatch_logs_per_gb_ingested": 0.50,  # the functions' logs and EMF metrics
}
LAMBDA_MEMORY_GB = 1.0  # template.yaml Globals: MemorySize 1024
LAMBDA_REPORT_BYTES = 300  # START, END and REPORT lines Lambda logs per invocation
READ_OPERATIONS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem"})
METERED_OPERATIONS = READ_OPERATIONS | {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}


@dataclass
class RouteCost:
    calls: int = 0
    seconds: float = 0.0
    read_units: float = 0.0
    write_units: float = 0.0
    requests: int = 0


@dataclass
class CapacityMeter:
    """Capacity units of every DynamoDB call a client makes, booked to the route being measured."""

    indexes: dict[str, int]  # table name -> indexes every item written there lands in
    routes: dict[str, RouteCost] = field(default_factory=lambda: defaultdict(RouteCost))
    route: str = "setup"
    _current: threading.local = field(default_factory=threading.local)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("provide-client-params.dynamodb", self._ask_for_capacity, unique_id="cost-params")
        events.register("after-call.dynamodb", self._book, unique_id="cost-after")

    def _ask_for_capacity(self, params: dict[str, Any], model: OperationModel, **_: Any) -> None:
        if model.name in METERED_OPERATIONS:
            params["ReturnConsumedCapacity"] = "TOTAL"
        self._current.table = params.get("TableName", "")

    def _book(self, parsed: dict[str, Any], model: OperationModel, **_: Any) -> None:
        reading = model.name in READ_OPERATIONS
        units = float(parsed.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))
        if parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            units = 1.0  # DynamoDB bills a failed conditional write; dynalite reports nothing
        elif not reading:
            units *= 1 + self.indexes.get(getattr(self._current, "table", ""), 0)
        with self._lock:
            cost = self.routes[self.route]
            cost.requests += 1
            if reading:
                cost.read_units += units
            else:
                cost.write_units += units


def _index_counts(names: dict[str, str]) -> dict[str, int]:
    """Per physical table: how many secondary indexes project every item (ALL) written to it."""
    definitions = table_definitions(load_template())
    counts = {}
    for logical_id, physical in names.items():
        indexes = [
            *definitions[logical_id].get("LocalSecondaryIndexes", []),
            *definitions[logical_id].get("GlobalSecondaryIndexes", []),
        ]
        counts[physical] = sum(1 for index in indexes if index["Projection"]["ProjectionType"] == "ALL")
    return counts


class Workload:
    """The sessions of the cost model, driven through the real handlers."""

    def __init__(self, functions: LocalFunctions, meter: CapacityMeter, sessions: int) -> None:
        self._functions = functions
        self._meter = meter
        self._sessions = sessions

    def call(self, name: str, route: str, *, body: Any = None, query: dict[str, str] | None = None) -> Any:
        self._meter.route = name
        started = time.perf_counter()
        result = self._functions.call(route, body=body, query=query)
        elapsed = time.perf_counter() - started
        if result.status != 200:
            raise RuntimeError(f"{name}: {route} answered {result.status}: {result.body}")
        cost = self._meter.routes[name]
        cost.calls += 1
        cost.seconds += math.ceil(elapsed * 1000) / 1000  # Lambda bills whole milliseconds
        return result.body

    def run(self) -> None:
        batch_id = ""
        for n in range(self._sessions):
            session_id = f"cost-{n}"
            body = {
                "session_id": session_id,
                "search_query": "red running shoes",
                "search_results": [{"object_id": f"shoe-{rank}", "rank": float(rank)} for rank in range(10)],
                "search_meta": {"latency_ms": 38, "engine": "v2"},
                "user_id": f"user-{n % 97}",
            }
            batch_id = self.call("register", "POST /session", body=body)["batch_id"]
            clicks = [{"event_id": f"{session_id}-c{k}", "object_id": f"shoe-{k}"} for k in range(3)]
            self.call(
                "add_events (3 clicks)", "POST /session/events", body={"session_id": session_id, "events": clicks}
            )
        after = 0
        while True:
            query = {"batch_id": batch_id, "after_number": str(after), "limit": "100", "events_limit": "100"}
            page = self.call("page (100 sessions)", "GET /batch/sessions", query=query)
            if not page["has_more"]:
                break
            after = page["last_number"]
        for n in range(0, self._sessions, 2):
            self.call("use_for_improvement", "POST /session/use-for-improvement", body={"session_id": f"cost-{n}"})
        self.call("release (the batch)", "POST /batch/release", body={"release_id": "cost-release"})


def _per_million(routes: dict[str, RouteCost], sessions: int, log_bytes: int) -> dict[str, Any]:
    """Each route's figures scaled from `sessions` to a million sessions, and the bill by part."""
    scale = MILLION / sessions
    requests = sum(cost.calls for cost in routes.values()) * scale
    logged_gb = (log_bytes * scale + requests * LAMBDA_REPORT_BYTES) / 1e9
    gb_seconds = sum(cost.seconds for cost in routes.values()) * scale * LAMBDA_MEMORY_GB
    write_units = sum(cost.write_units for cost in routes.values()) * scale
    read_units = sum(cost.read_units for cost in routes.values()) * scale
    parts = {
        "API Gateway (HTTP API requests)": requests / MILLION * PRICES["api_gateway_per_million_requests"],
        "Lambda (duration, 1024 MB arm64)": gb_seconds * PRICES["lambda_per_gb_second"],
        "Lambda (requests)": requests / MILLION * PRICES["lambda_per_million_requests"],
        "DynamoDB writes": write_units / MILLION * PRICES["dynamodb_per_million_write_units"],
        "DynamoDB reads": read_units / MILLION * PRICES["dynamodb_per_million_read_units"],
        "CloudWatch Logs (logs and metrics)": logged_gb * PRICES["cloudwatch_logs_per_gb_ingested"],
    }
    return {
        "requests": round(requests),
        "gb_seconds": round(gb_seconds, 1),
        "write_units": round(write_units),
        "read_units": round(read_units),
        "parts": {name: round(value, 4) for name, value in parts.items()},
        "total": round(sum(parts.values()), 4),
    }


@contextmanager
def stdout_bytes() -> Iterator[list[int]]:
    """Send fd 1 to a file while the block runs (the handlers' logs and EMF metrics); yields [bytes written]."""
    sys.stdout.flush()
    saved = os.dup(1)
    written = [0]
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield written
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            written[0] = sink.seek(0, os.SEEK_END)


def measure(sessions: int) -> dict[str, Any]:
    """Run the workload on a fresh dynalite and price it per million sessions."""
    from local.harness import LocalFunctions
    from local.lambda_runtime import put_layers_on_path

    warnings.filterwarnings("ignore", "No application metrics to publish")  # calls that count nothing
    with tempfile.TemporaryDirectory() as logs, dynalite_server(Path(logs) / "dynalite.log") as endpoint:
        saved = dict(os.environ)
        os.environ.update(lambda_environment(endpoint))
        os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
        put_layers_on_path()  # Powertools reads its settings when the layer is first imported
        from clickstream import runtime

        try:
            names = local_table_names()
            ensure_tables(dynamodb_client(endpoint), names)
            runtime.reset()
            meter = CapacityMeter(_index_counts(names))
            meter.attach(runtime.get_service().storage.client)
            with stdout_bytes() as logged:
                Workload(LocalFunctions(instances_per_function=1), meter, sessions).run()
        finally:
            os.environ.clear()
            os.environ.update(saved)
            runtime.reset()
    routes = {name: cost for name, cost in meter.routes.items() if name != "setup"}
    per_call = {
        name: {
            "calls": cost.calls,
            "ms_per_call": round(cost.seconds * 1000 / cost.calls, 2),
            "dynamodb_requests_per_call": round(cost.requests / cost.calls, 2),
            "write_units_per_call": round(cost.write_units / cost.calls, 2),
            "read_units_per_call": round(cost.read_units / cost.calls, 2),
        }
        for name, cost in routes.items()
    }
    return {
        "sessions_measured": sessions,
        "prices": PRICES,
        "prices_date": PRICES_DATE,
        "routes": per_call,
        "log_bytes_per_call": round(logged[0] / sum(cost.calls for cost in routes.values())),
        "per_million": _per_million(routes, sessions, logged[0]),
    }
