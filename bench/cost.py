"""What one million sessions cost on AWS, from the capacity DynamoDB reports and the handlers' durations.

Each session is registered, gets 3 click events (one call), is paged once (pages of 100 sessions, up to
100 events each) and half of them are scheduled for improvement; then the batch is released and exported
(the export function's steps, into a folder standing in for S3). The run is on dynalite, which reports
capacity units by item size as DynamoDB does (moto's are flat): every request asks
`ReturnConsumedCapacity=TOTAL`. Index writes, which DynamoDB bills and dynalite does not
report, are added per index the written item lands in: an ALL index as many units as the table write, a
KEYS_ONLY one (the claims' sparse by_user_key) 1 unit for each put whose item carries its key (an entry of
keys alone is under 1 KB; the claim's later updates leave its keys, so DynamoDB writes no entry for them);
a failed conditional write is billed 1 write unit.
The figures scale linearly from the measured batch to one million sessions, except the pipeline's
per-release parts (Step Functions transitions, EventBridge events, S3 requests per range), counted for one
release of a million-session batch in ranges of EXPORT_RANGE_SESSIONS.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clickstream.storage.erasures import ACTIVE_KEY
from local.dynamodb import dynamodb_client, ensure_tables, local_table_names
from local.environment import lambda_environment
from local.template import load_template, table_definitions
from tests.support.processes import dynalite_server

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
    "s3_per_thousand_puts": 0.005,
    "s3_per_thousand_gets": 0.0004,
    "s3_per_gb_month": 0.023,  # S3 Standard, first 50 TB
    "step_functions_per_thousand_transitions": 0.025,  # standard workflows, Distributed Map children too
    "eventbridge_per_million_events": 1.00,  # custom events
}
RANGE_SESSIONS = 20_000  # EXPORT_RANGE_SESSIONS, the template's default
# State transitions of one release and its export (statemachines/*.asl.json): the release machine's
# path, the export's main path, and per range a child execution's (start, the task, end).
RELEASE_TRANSITIONS = 4
EXPORT_TRANSITIONS = 10
TRANSITIONS_PER_RANGE = 3
EVENTS_PER_RELEASE = 2  # BatchReleased, BatchExported
LAMBDA_REPORT_BYTES = 300  # START, END and REPORT lines Lambda logs per invocation
READ_OPERATIONS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem"})
METERED_OPERATIONS = READ_OPERATIONS | {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}


@dataclass
class RouteCost:
    memory_gb: float = 1.0
    api: bool = True  # served through API Gateway (the export's steps are not)
    calls: int = 0
    seconds: float = 0.0
    read_units: float = 0.0
    write_units: float = 0.0
    index_write_units: float = 0.0  # of write_units: what its secondary indexes add
    requests: int = 0


@dataclass
class CapacityMeter:
    """Capacity units of every DynamoDB call a client makes, booked to the route being measured."""

    indexes: dict[str, int]  # table name -> indexes every item written there lands in
    sparse: dict[str, list[str]] = field(default_factory=dict)  # table name -> KEYS_ONLY indexes' hash keys
    routes: dict[str, RouteCost] = field(default_factory=lambda: defaultdict(RouteCost))
    route: str = "setup"
    guard_reads: int = 0  # reads of the users being erased (registration's erasure guard, contract 17.3)
    _current: threading.local = field(default_factory=threading.local)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("provide-client-params.dynamodb", self._ask_for_capacity, unique_id="cost-params")
        events.register("after-call.dynamodb", self._book, unique_id="cost-after")

    def _ask_for_capacity(self, params: dict[str, Any], model: OperationModel, **_: Any) -> None:
        if model.name in METERED_OPERATIONS:
            params["ReturnConsumedCapacity"] = "TOTAL"
        # A BatchWriteItem names its table in RequestItems (the erasure's purge writes to one table at a time).
        table = self._current.table = params.get("TableName") or next(iter(params.get("RequestItems", {})), "")
        if model.name == "GetItem" and params.get("Key", {}).get("pk", {}).get("S") == ACTIVE_KEY:
            with self._lock:
                self.guard_reads += 1
        item = params.get("Item", {}) if model.name == "PutItem" else {}
        self._current.sparse_entries = sum(1 for key in self.sparse.get(table, []) if key in item)

    def _book(self, parsed: dict[str, Any], model: OperationModel, **_: Any) -> None:
        reading = model.name in READ_OPERATIONS
        consumed = parsed.get("ConsumedCapacity", {})
        consumed = consumed if isinstance(consumed, list) else [consumed]  # a list for the Batch* operations
        units = sum(float(entry.get("CapacityUnits", 0.0)) for entry in consumed)
        index_units = 0.0
        if parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            units = 1.0  # DynamoDB bills a failed conditional write; dynalite reports nothing
        elif not reading:
            index_units = units * self.indexes.get(getattr(self._current, "table", ""), 0)
            index_units += getattr(self._current, "sparse_entries", 0)  # 1 unit per KEYS_ONLY entry
            units += index_units
        with self._lock:
            cost = self.routes[self.route]
            cost.requests += 1
            if reading:
                cost.read_units += units
            else:
                cost.write_units += units
                cost.index_write_units += index_units


def index_counts(names: dict[str, str]) -> dict[str, int]:
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


def sparse_index_keys(names: dict[str, str]) -> dict[str, list[str]]:
    """Per physical table: the hash key of each KEYS_ONLY global index, which holds only the items with it."""
    definitions = table_definitions(load_template())
    return {
        physical: [
            next(key["AttributeName"] for key in index["KeySchema"] if key["KeyType"] == "HASH")
            for index in definitions[logical_id].get("GlobalSecondaryIndexes", [])
            if index["Projection"]["ProjectionType"] == "KEYS_ONLY"
        ]
        for logical_id, physical in names.items()
    }


class Workload:
    """The sessions of the cost model, driven through the real handlers."""

    def __init__(self, functions: LocalFunctions, meter: CapacityMeter, sessions: int, lake_dir: Path) -> None:
        self._functions = functions
        self._meter = meter
        self._sessions = sessions
        self._lake_dir = lake_dir

    def call(self, name: str, route: str, *, body: Any = None, query: dict[str, str] | None = None) -> Any:
        result = self._timed(
            name, self._functions.routes[route], lambda: self._functions.call(route, body=body, query=query)
        )
        if result.status != 200:
            raise RuntimeError(f"{name}: {route} answered {result.status}: {result.body}")
        return result.body

    def invoke(self, name: str, function_id: str, event: dict[str, Any]) -> Any:
        cost = self._meter.routes[name]
        cost.api = False
        return self._timed(name, function_id, lambda: self._functions.invoke(function_id, event))

    def _timed(self, name: str, function_id: str, call: Callable[[], Any]) -> Any:
        self._meter.route = name
        started = time.perf_counter()
        result = call()
        elapsed = time.perf_counter() - started
        cost = self._meter.routes[name]
        cost.memory_gb = MEMORY_GB[function_id]
        cost.calls += 1
        cost.seconds += math.ceil(elapsed * 1000) / 1000  # Lambda bills whole milliseconds
        return result

    def export(self, release_id: str, lake_dir: Path) -> None:
        """The export machine's steps for the released batch: plan, each range, judge, finish."""
        name = "export (the batch: plan, ranges, judge, finish)"
        plan = self.invoke(name, "ExportFunction", {"step": "plan", "release_id": release_id, "export_id": "cost"})
        time.sleep(max(0.0, plan["job"]["read_after"] / 1000 - time.time()))  # the machine's Wait state
        for number_range in json.loads((lake_dir / plan["ranges_key"]).read_text(encoding="utf-8")):
            self.invoke(name, "ExportFunction", {"step": "range", "job": plan["job"], "range": number_range})
        judged = self.invoke(name, "ExportFunction", {"step": "judge", "job": plan["job"], "ranges": plan["ranges"]})
        finish = {"step": "finish", "job": plan["job"], "ranges": plan["ranges"], "judged": judged}
        self.invoke(name, "ExportFunction", finish)

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
        self.export("cost-release", self._lake_dir)


def _function_memory_gb() -> dict[str, float]:
    resources = load_template()
    default = resources["Globals"]["Function"]["MemorySize"]
    return {
        logical_id: resource["Properties"].get("MemorySize", default) / 1024
        for logical_id, resource in resources["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


MEMORY_GB = _function_memory_gb()


@dataclass(frozen=True)
class LakeFootprint:
    """What the export left in the lake: objects written and read, and the dataset's bytes."""

    ranges: int
    objects_per_range: float
    gets_per_range: float
    dataset_bytes: int

    @classmethod
    def of(cls, lake_dir: Path) -> LakeFootprint:
        manifests = list(lake_dir.glob("sessions/*/manifest.json"))
        [manifest] = [json.loads(path.read_text(encoding="utf-8")) for path in manifests]
        work_files = [path for path in lake_dir.glob("exports/**/*") if path.is_file()]
        ranges = len({part["key"].split("-")[1].split(".")[0] for part in manifest["parts"]})
        per_range_files = (len(work_files) - 1 + len(manifest["parts"])) / ranges  # less ranges.json
        return cls(ranges, per_range_files, (len(work_files) - 1) / ranges, sum(p["bytes"] for p in manifest["parts"]))


def _pipeline(lake: LakeFootprint, sessions: int) -> dict[str, float]:
    """The release's and export's parts other than Lambda and DynamoDB, for a million-session batch."""
    ranges = math.ceil(MILLION / RANGE_SESSIONS)
    puts = ranges * lake.objects_per_range + 2  # + ranges.json and the manifest
    gets = ranges * lake.gets_per_range + 1  # + the map's ItemReader
    transitions = RELEASE_TRANSITIONS + EXPORT_TRANSITIONS + ranges * TRANSITIONS_PER_RANGE
    dataset_gb = lake.dataset_bytes * MILLION / sessions / 1e9
    return {
        "S3 (export requests)": puts / 1000 * PRICES["s3_per_thousand_puts"]
        + gets / 1000 * PRICES["s3_per_thousand_gets"],
        "S3 (the dataset, per month kept)": dataset_gb * PRICES["s3_per_gb_month"],
        "Step Functions (release and export)": transitions / 1000 * PRICES["step_functions_per_thousand_transitions"],
        "EventBridge (announcements)": EVENTS_PER_RELEASE / MILLION * PRICES["eventbridge_per_million_events"],
    }


def _per_million(routes: dict[str, RouteCost], sessions: int, log_bytes: int, lake: LakeFootprint) -> dict[str, Any]:
    """Each route's figures scaled from `sessions` to a million sessions, and the bill by part."""
    scale = MILLION / sessions
    api_requests = sum(cost.calls for cost in routes.values() if cost.api) * scale
    invocations = sum(cost.calls for cost in routes.values()) * scale
    logged_gb = (log_bytes * scale + invocations * LAMBDA_REPORT_BYTES) / 1e9
    gb_seconds = sum(cost.seconds * cost.memory_gb for cost in routes.values()) * scale
    write_units = sum(cost.write_units for cost in routes.values()) * scale
    read_units = sum(cost.read_units for cost in routes.values()) * scale
    parts = {
        "API Gateway (HTTP API requests)": api_requests / MILLION * PRICES["api_gateway_per_million_requests"],
        "Lambda (duration, arm64)": gb_seconds * PRICES["lambda_per_gb_second"],
        "Lambda (requests)": invocations / MILLION * PRICES["lambda_per_million_requests"],
        "DynamoDB writes": write_units / MILLION * PRICES["dynamodb_per_million_write_units"],
        "DynamoDB reads": read_units / MILLION * PRICES["dynamodb_per_million_read_units"],
        "CloudWatch Logs (logs and metrics)": logged_gb * PRICES["cloudwatch_logs_per_gb_ingested"],
        **_pipeline(lake, sessions),
    }
    return {
        "requests": round(api_requests),
        "gb_seconds": round(gb_seconds, 1),
        "write_units": round(write_units),
        "read_units": round(read_units),
        "dataset_mb": round(lake.dataset_bytes * scale / 1e6, 1),
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

    warnings.filterwarnings("ignore", "No application metrics to publish")  # calls that count nothing
    with tempfile.TemporaryDirectory() as logs, dynalite_server(Path(logs) / "dynalite.log") as endpoint:
        saved = dict(os.environ)
        os.environ.update(lambda_environment(endpoint, endpoint))
        lake_dir = Path(logs) / "lake"
        os.environ["LAKE_DIR"] = str(lake_dir)
        os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
        from bench.request_counts import service_dynamodb_client
        from clickstream import runtime  # after the environment: Powertools reads its settings at import
        from clickstream.settings import Settings

        # Containers keep a batch's state as deployed (so events cost what they cost in AWS); the export waits
        # only that long after its fence, not the deployed minute: no writer races it here.
        os.environ["WRITE_SETTLE_MS"] = str(Settings.model_fields["batch_state_cache_ms"].default)

        try:
            names = local_table_names()
            ensure_tables(dynamodb_client(endpoint), names)
            meter = CapacityMeter(index_counts(names), sparse_index_keys(names))
            meter.attach(service_dynamodb_client())
            with stdout_bytes() as logged:
                Workload(LocalFunctions(instances_per_function=1), meter, sessions, lake_dir).run()
            lake = LakeFootprint.of(lake_dir)
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
            "index_write_units_per_call": round(cost.index_write_units / cost.calls, 2),
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
        "erasure_guard_reads": meter.guard_reads,
        "per_million": _per_million(routes, sessions, logged[0], lake),
    }
