"""Export throughput and memory (contract 7.2): released batches of growing size exported locally.

For each size a batch is loaded into a fresh dynalite (DynamoDB on LevelDB, from npm: its queries are
indexed, where moto scans the table) and released through the service; then a child process runs the
export's steps as the export machine does, with its ranges one after another (one worker), into a
folder, and reports its phases' durations, its CPU time and its peak resident memory. Equal peaks across
sizes show memory flat in the batch size. The loader writes the items the service's own gateways build,
25 to a BatchWriteItem, so loading 50,000 sessions takes seconds.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.child import run_child
from local.dynamodb import dynamodb_client, ensure_tables, local_table_names
from local.environment import lambda_environment
from tests.support.processes import dynalite_server

if TYPE_CHECKING:
    from clickstream.service import Clickstream

CLICKS_PER_SESSION = 2
RESULTS_SHOWN = 10
LOADERS = 8


def session_document(n: int) -> str:
    search = {
        "search_query": f"query {n % 500}",
        "search_results": [{"object_id": f"item-{(n + rank) % 997}", "rank": float(rank)} for rank in range(10)],
        "search_meta": {"engine": "v2", "latency_ms": n % 90},
        "payload_filter": None,
        "sort_by": None,
    }
    return json.dumps(search, separators=(",", ":"))


def child_environment(endpoint: str, lake_dir: Path) -> dict[str, str]:
    return {
        **lambda_environment(endpoint, endpoint),
        "LAKE_DIR": str(lake_dir),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "WRITE_SETTLE_MS": "0",  # no writer races the bench's export: read right after the fence
        "BATCH_STATE_CACHE_MS": "0",
    }


class BufferedWrites:
    """Stands in for the storage's Dynamo under the gateways: keeps the items they put, then writes them
    25 to a BatchWriteItem."""

    def __init__(self) -> None:
        self.items: dict[str, list[dict[str, Any]]] = {}

    def put_new(self, table: str, item: dict[str, Any], key_attribute: str, *, over_expired: bool = False) -> bool:
        self.items.setdefault(table, []).append(item)
        return True

    def flush(self, client: Any) -> int:
        requests = [
            (table, items[start : start + 25])
            for table, items in self.items.items()
            for start in range(0, len(items), 25)
        ]

        def write(request: tuple[str, list[dict[str, Any]]]) -> None:
            table, items = request
            pending: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in items]}
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

        with ThreadPoolExecutor(LOADERS) as pool:
            list(pool.map(write, requests))
        return len(requests)


def load_batch(service: Clickstream, sessions: int) -> str:
    """A collecting batch of `sessions` sessions with CLICKS_PER_SESSION clicks each, then released."""
    from clickstream.records import StoredEvent, StoredSession
    from clickstream.storage.events import Events
    from clickstream.storage.sessions import SessionSlots

    storage, settings = service.storage, service.settings
    now = int(time.time() * 1000)
    storage.pointer.open_batch(f"b-bench-{uuid.uuid4().hex[:12]}", now, settings.batch_shards)
    block = storage.pointer.next_block(sessions)
    buffered = BufferedWrites()
    slots = SessionSlots(buffered, settings.sessions_table)  # type: ignore[arg-type]
    events = Events(buffered, settings.events_table)  # type: ignore[arg-type]
    for number in range(block.first, block.last + 1):
        session_id = f"bench-{number}"
        stored = StoredSession(
            block.batch_id, number, session_id, now - 60_000, None, False, False, session_document(number)
        )
        slots.put_session(stored, block.shards)
        for click in range(CLICKS_PER_SESSION):
            clicked = f"item-{(number + click * 3) % 997}"
            events.put(session_id, StoredEvent(f"c{click}", clicked, "click", now - 30_000 + click, None))
    buffered.flush(dynamodb_client(os.environ["AWS_ENDPOINT_URL_DYNAMODB"]))
    release_id = f"release-bench-{sessions}"
    released = service.release(release_id)
    assert released.session_count == sessions, released
    return release_id


def worker(release_id: str) -> dict[str, Any]:
    """In the child: the export's steps, ranges one after another; durations and peak memory."""
    import resource

    from clickstream import runtime
    from clickstream.domain.datasets.layout import NumberRange

    def cpu_s() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    service = runtime.get_service()
    lake_dir = Path(service.settings.lake_dir)
    baseline_mb = _resident_mb()
    started = time.perf_counter()
    plan = service.exporter.plan(release_id, "bench-export")
    job = plan.job
    assert job is not None
    assert plan.ranges_key is not None
    planned = time.perf_counter()
    cpu_before = cpu_s()
    for item in json.loads((lake_dir / plan.ranges_key).read_text(encoding="utf-8")):
        service.exporter.write_range(job, NumberRange(item["index"], item["first"], item["last"]))
    written = time.perf_counter()
    cpu_ranges = cpu_s() - cpu_before
    judged = service.exporter.judge(job, plan.ranges)
    judged_at = time.perf_counter()
    finished = service.exporter.finish(job, plan.ranges, judged)
    done = time.perf_counter()
    manifest = json.loads((lake_dir / "sessions" / f"batch_id={job.batch_id}" / "manifest.json").read_text())
    return {
        "ranges": plan.ranges,
        "parts": finished["parts"],
        "sessions": manifest["session_count"],
        "events": manifest["event_count"],
        "compressed_bytes": sum(part["bytes"] for part in manifest["parts"]),
        "plan_s": round(planned - started, 2),
        "ranges_s": round(written - planned, 2),
        "judge_s": round(judged_at - written, 2),
        "finish_s": round(done - judged_at, 2),
        "cpu_ms_per_1000_sessions": round(cpu_ranges * 1000 / manifest["session_count"] * 1000),
        "baseline_rss_mb": round(baseline_mb, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _resident_mb() -> float:
    """The process's resident memory now (Linux), in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1_048_576


def measure(sizes: list[int], range_sessions: int) -> dict[str, Any]:
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as work:
        for size in sizes:
            with dynalite_server(Path(work) / f"dynalite-{size}.log") as endpoint:
                environment = {
                    **os.environ,
                    **child_environment(endpoint, Path(work) / f"lake-{size}"),
                    "EXPORT_RANGE_SESSIONS": str(range_sessions),
                }
                loaded = time.perf_counter()
                release_id = _child(environment, "load", str(size))
                load_s = time.perf_counter() - loaded
                figures = _child(environment, "export", release_id)
            assert figures["sessions"] == size, figures
            figures["load_s"] = round(load_s, 1)
            figures["sessions_per_s"] = round(size / figures["ranges_s"])
            runs[str(size)] = figures
    return {"range_sessions": range_sessions, "clicks_per_session": CLICKS_PER_SESSION, "runs": runs}


def _child(environment: dict[str, str], *arguments: str) -> Any:
    """`python -m bench.export ...` in a fresh process (its memory is the export's alone); its last line."""
    return run_child("bench.export", *arguments, environment=environment)


def _main(command: str, argument: str) -> Any:
    from clickstream import runtime  # after the environment: Powertools reads its settings at import

    if command == "load":
        ensure_tables(dynamodb_client(os.environ["AWS_ENDPOINT_URL_DYNAMODB"]), local_table_names())
        return load_batch(runtime.get_service(), int(argument))
    return worker(argument)


if __name__ == "__main__":  # python -m bench.export load <sessions> | export <release_id>
    print(json.dumps(_main(sys.argv[1], sys.argv[2])), flush=True)
