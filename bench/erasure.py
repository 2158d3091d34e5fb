"""An erasure's dataset rewrite at scale (contract 17): an exported dataset of N sessions rewritten without
one user, in a fresh process, and the same rewrite run again (a retried step: nothing left to drop).

The dataset is built by the export's own code in a child process, over a fresh dynalite and a lake folder:
the batch record released, settled and taken by an export (the storage's own calls), every range written by
the export's `RangeWriter` and the dataset judged and finished by the export's own steps. Only the source of
the ranges' sessions differs: made in memory (`stored_session` renders each as the export renders it read
from DynamoDB), not read from loaded tables, so 100,000 sessions take seconds to build rather than minutes.
The rewrite reads only the lake and the batch record, so what it is given is what an export leaves.

Each rewrite runs in a child of its own (its CPU time and peak memory are its own), through a lake that
counts what it reads and writes (the S3 requests these calls are, `S3Lake`'s: a get or fetch is one
GetObject, a put one PutObject, a listing of keys one ListObjectsV2, a remove one ListObjectVersions and one
DeleteObject per version) and a DynamoDB client whose requests and capacity units are counted as
bench/cost.py counts them.

    python -m bench.erasure build <sessions> <user sessions> | rewrite <batch_id> <erasure_id>
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.child import run_child
from bench.export import CLICKS_PER_SESSION, child_environment, session_document
from bench.judgments import peak_resident_mb
from local.dynamodb import dynamodb_client, ensure_tables, local_table_names
from tests.support.processes import dynalite_server

if TYPE_CHECKING:
    from clickstream.domain.datasets.parts import RangeSession
    from clickstream.domain.ports import Lake
    from clickstream.service import Clickstream

ERASED_USER = "leaving-user"
OTHER_USERS = 997
USER_RANGES_EVERY = 2  # the user's sessions lie in every other range: the ranges between keep their parts


@dataclass
class SyntheticRange:
    """A range's sessions made in memory, rendered as the export renders them from DynamoDB."""

    batch_id: str
    first: int
    last: int
    user_numbers: frozenset[int]
    stored_user_id: str
    created_at: int

    def sessions(self) -> Iterator[RangeSession]:
        from clickstream.domain.datasets.parts import stored_session
        from clickstream.records import StoredEvent, StoredSession

        for number in range(self.first, self.last + 1):
            user = self.stored_user_id if number in self.user_numbers else f"user-{number % OTHER_USERS}"
            session_id = f"bench-{number}"
            stored = StoredSession(
                self.batch_id, number, session_id, self.created_at, user, False, False, session_document(number)
            )
            events = [
                StoredEvent(f"c{click}", f"item-{(number + click * 3) % 997}", "click", self.created_at + click, None)
                for click in range(CLICKS_PER_SESSION)
            ]
            yield stored_session(stored, events)

    def erased(self) -> int:
        return 0


def user_numbers(sessions: int, user_sessions: int, range_sessions: int) -> frozenset[int]:
    """The erased user's session numbers: spread evenly over every USER_RANGES_EVERY-th range."""
    ranges = -(-sessions // range_sessions)
    theirs = [index for index in range(ranges) if index % USER_RANGES_EVERY == 0]
    numbers = set()
    for n in range(user_sessions):
        index = theirs[n % len(theirs)]
        first, last = index * range_sessions + 1, min((index + 1) * range_sessions, sessions)
        numbers.add(first + (n // len(theirs) * 7919 + index * 13) % (last - first + 1))
    return frozenset(numbers)


def build(service: Clickstream, sessions: int, user_sessions: int) -> dict[str, Any]:
    """A released, settled batch of `sessions` exported by the export's own code (see the module's text)."""
    from clickstream.domain.datasets.layout import number_ranges
    from clickstream.domain.datasets.parts import ExportJob, RangeWriter
    from clickstream.records import Dataset, ReleaseRecord

    storage, settings = service.storage, service.settings
    now = int(time.time() * 1000)
    batch_id, release_id, export_id = f"b-erasure-{sessions}", f"release-erasure-{sessions}", "bench-export"
    storage.batches.put(ReleaseRecord(release_id, batch_id, now, sessions, 1, sessions, now - 60_000))
    storage.batches.record_session_count(batch_id, sessions)
    taken = storage.batches.claim_export(batch_id, Dataset("exporting", export_id, started_at=now, events_until=now), 0)
    assert taken is not None, batch_id
    job = ExportJob(batch_id, release_id, export_id, 1, now, now)
    ranges = number_ranges(sessions, settings.export_range_sessions)
    theirs = user_numbers(sessions, user_sessions, settings.export_range_sessions)
    stored_user_id = service.user_ids.stored(ERASED_USER)
    for item in ranges:
        source = SyntheticRange(batch_id, item.first, item.last, theirs, stored_user_id, now - 60_000)
        RangeWriter(service.lake, batch_id, item, source).write()
    finished = service.exporter.finish(job, len(ranges), service.exporter.judge(job, len(ranges)))
    return {"batch_id": batch_id, "ranges": len(ranges), "parts": finished["parts"], "user_sessions": len(theirs)}


@dataclass
class CountingLake:
    """A lake that counts its calls and bytes (the S3 requests they are: see the module's text)."""

    lake: Lake
    calls: Counter[str] = field(default_factory=Counter)
    bytes_read: int = 0
    bytes_written: int = 0
    put_keys: list[str] = field(default_factory=list)

    def uri(self, key: str) -> str:
        return self.lake.uri(key)

    def put_file(self, key: str, path: Path) -> None:
        self.calls["PutObject"] += 1
        self.bytes_written += path.stat().st_size
        self.put_keys.append(key)
        self.lake.put_file(key, path)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.calls["PutObject"] += 1
        self.bytes_written += len(data)
        self.put_keys.append(key)
        self.lake.put_bytes(key, data)

    def get_bytes(self, key: str) -> bytes | None:
        self.calls["GetObject"] += 1
        data = self.lake.get_bytes(key)
        self.bytes_read += len(data or b"")
        return data

    def fetch(self, key: str, path: Path) -> bool:
        self.calls["GetObject"] += 1
        found = self.lake.fetch(key, path)
        self.bytes_read += path.stat().st_size if found else 0
        return found

    def delete_noncurrent_versions(self, folder: str) -> int:
        self.calls["ListObjectVersions"] += 1  # one page: below 1,000 versions in a batch's folder
        deleted = self.lake.delete_noncurrent_versions(folder)
        self.calls["DeleteObject"] += deleted
        return deleted

    def keys(self, prefix: str) -> list[str]:
        self.calls["ListObjectsV2"] += 1
        return self.lake.keys(prefix)

    def remove(self, key: str) -> int:
        self.calls["ListObjectVersions"] += 1
        self.calls["DeleteObject"] += 1  # the current version (a folder keeps no older ones)
        return self.lake.remove(key)


def rewrite(batch_id: str, erasure_id: str) -> dict[str, Any]:
    """In the child: the rewrite, timed, its lake calls and DynamoDB requests counted."""
    import resource

    from bench.cost import CapacityMeter, index_counts, sparse_index_keys
    from bench.request_counts import RequestCounter, service_dynamodb_client
    from clickstream import runtime
    from clickstream.domain.datasets.layout import dataset_folder
    from clickstream.service import Clickstream

    def cpu_s() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    client = service_dynamodb_client()
    meter = CapacityMeter(index_counts(local_table_names()), sparse_index_keys(local_table_names()))
    meter.attach(client)
    counter = RequestCounter(client)
    service = runtime.get_service()
    lake = CountingLake(service.lake)
    rewriting = Clickstream(service.storage, service.settings, lake=lake)
    baseline_mb = peak_resident_mb()
    meter.route = "rewrite"
    started, cpu_before = time.perf_counter(), cpu_s()
    with counter.counting() as issued:
        rewritten = rewriting.rewriter.rewrite(batch_id, rewriting.user_ids.stored(ERASED_USER), erasure_id)
    wall, cpu = time.perf_counter() - started, cpu_s() - cpu_before
    manifest = json.loads(service.lake.get_bytes(f"{dataset_folder(batch_id)}/manifest.json") or b"{}")
    parts = {f"{dataset_folder(batch_id)}/{part['key']}" for part in manifest["parts"]}
    cost = meter.routes["rewrite"]
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "baseline_rss_mb": round(baseline_mb, 1),
        "peak_rss_mb": round(peak_resident_mb(), 1),
        "sessions_removed": rewritten.sessions_removed,
        "events_removed": rewritten.events_removed,
        "sessions_kept": manifest["session_count"],
        "parts": len(parts),
        "parts_uploaded": len(parts & set(lake.put_keys)),
        "replaced_keys": len(rewritten.replaced_keys),
        "bytes_read": lake.bytes_read,
        "bytes_written": lake.bytes_written,
        "s3_requests": dict(sorted(lake.calls.items())),
        "dynamodb_requests": dict(sorted(Counter(request.operation for request in issued).items())),
        "read_units": round(cost.read_units, 1),
        "write_units": round(cost.write_units, 1),
    }


def measure(sizes: list[int], user_sessions: int) -> dict[str, Any]:
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as work:
        for size in sizes:
            with dynalite_server(Path(work) / f"dynalite-{size}.log") as endpoint:
                environment = {**os.environ, **child_environment(endpoint, Path(work) / f"lake-{size}")}
                started = time.perf_counter()
                built = _child(environment, "build", str(size), str(user_sessions))
                build_s = time.perf_counter() - started
                first = _child(environment, "rewrite", built["batch_id"], "e-bench")
                again = _child(environment, "rewrite", built["batch_id"], "e-bench")
            assert first["sessions_removed"] == built["user_sessions"], (first, built)
            assert first["sessions_kept"] == size - built["user_sessions"], first
            assert again["sessions_removed"] == 0, again
            runs[str(size)] = {**built, "build_s": round(build_s, 1), "first": first, "again": again}
    return {"user_sessions": user_sessions, "clicks_per_session": CLICKS_PER_SESSION, "runs": runs}


def _child(environment: dict[str, str], *arguments: str) -> Any:
    return run_child("bench.erasure", *arguments, environment=environment)


def _main(command: str, *arguments: str) -> Any:
    from clickstream import runtime  # after the environment: Powertools reads its settings at import

    if command == "build":
        ensure_tables(dynamodb_client(os.environ["AWS_ENDPOINT_URL_DYNAMODB"]), local_table_names())
        return build(runtime.get_service(), int(arguments[0]), int(arguments[1]))
    return rewrite(*arguments)


if __name__ == "__main__":  # python -m bench.erasure build <sessions> <user sessions> | rewrite <batch> <erasure>
    print(json.dumps(_main(sys.argv[1], *sys.argv[2:])), flush=True)
