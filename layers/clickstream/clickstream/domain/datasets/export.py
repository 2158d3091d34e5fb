"""Exporting a released batch (contract 7.1-7.3, 14): plan, write the ranges (in parallel), judge, finish.

* Plan: the export takes the batch (a conditional write on its record: one export at a time; the same
  export again, as a redrive, keeps its start), fences it against late writes (contract 13.5: once, kept by
  every later export), and cuts its numbers into ranges. The ranges are read only from `read_after`, the
  fence plus WRITE_SETTLE_MS, when every write accepted before the fence is stored (domain/late_writes.py).
* Ranges: each worker writes its parts, its share of the report and its judgment counts
  (`parts.RangeWriter`).
* Judge: the counts merged, the click models fitted, the judgments written (`judging`, contract 14).
* Finish: every range's summary, merged into the report (sorted lists streamed together, never the
  batch), the session count checked against the release's (sessions and erased tombstones read against
  session_count + erased_sessions, contract 17.4: an erasure beside the export never fails it), the report
  page (report_page.py), then `manifest.json`, written last: the dataset exists when its manifest does
  (publish.py, shared with an erasure's rewrite). Then the batch record says so, and that change announces
  the export (BatchExported, through the outbox).

A repeated export never duplicates a session: parts have fixed names per range and are replaced whole,
and the manifest lists exactly the parts of this export.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from clickstream.domain.context import Context
from clickstream.domain.datasets.layout import (
    SCHEMA_VERSION,
    NumberRange,
    manifest_key,
    number_ranges,
    range_list,
    work_folder,
)
from clickstream.domain.datasets.metrics import merge
from clickstream.domain.datasets.parts import ExportJob, RangeWriter, StoredRange
from clickstream.domain.datasets.publish import Publisher
from clickstream.domain.datasets.retention import Retention, expiry_of
from clickstream.domain.datasets.rewrite import REWRITE_STALE_MS
from clickstream.domain.ports import Lake, ReportPages
from clickstream.errors import ExportNotReady, ExportSessionsMismatch
from clickstream.records import BatchRecord, Dataset

LATE_WRITES_RULE = (
    "every event and irrelevant mark accepted for the batch's sessions before fenced_at is in the dataset, "
    "whatever its created_at; later ones were refused (409). The parts were read after read_after."
)
STALE_EXPORT_MS = 24 * 3_600_000  # an export holding a batch this long is taken to have died


@dataclass(frozen=True)
class ExportPlan:
    """What the plan step decided: the job and how many ranges (their list is in the lake at `ranges_key`),
    or why there is nothing to do (`skip_reason`: exported already, or another export holds the batch)."""

    batch_id: str
    job: ExportJob | None = None
    ranges: int = 0
    ranges_key: str | None = None
    skip_reason: str | None = None
    wait_seconds: int = 0  # until job.read_after: the machine's WaitForAcceptedWrites


class Exporter:
    def __init__(self, context: Context, lake: Lake, pages: ReportPages) -> None:
        self._context = context
        self._storage = context.storage
        self._lake = lake
        self._publisher = Publisher(context, lake, pages)

    def plan(self, release_id: str, export_id: str) -> ExportPlan:
        """Take the released batch for this export and cut it into ranges; `skip` when there is nothing to
        do (exported already, or another export holds it)."""
        release = self._storage.releases.get_release(release_id)
        record = None if release is None else self._storage.batches.get(release.batch_id)
        if release is None or record is None or release.session_count is None:
            raise ExportNotReady(f"release {release_id} is not settled yet")
        if record.dataset.status == "exported":
            return ExportPlan(record.batch_id, skip_reason="exported")
        now = self._context.clock()
        again = record.dataset.export_id == export_id  # a redrive keeps its start
        started_at = record.dataset.started_at if again else now
        claim = Dataset("exporting", export_id, started_at=started_at, events_until=now)
        claimed = self._storage.batches.claim_export(
            record.batch_id, claim, now - STALE_EXPORT_MS, held_before=now - REWRITE_STALE_MS
        )
        if claimed is None:
            if record.dataset.status == "failed":  # an erasure removes what the failed export left: soon done
                raise ExportNotReady(f"an erasure holds batch {record.batch_id}: export it after")
            return ExportPlan(record.batch_id, skip_reason="another export holds it")
        ranges = number_ranges(release.last_number, self._context.settings.export_range_sessions)
        ranges_key = f"{work_folder(record.batch_id)}/ranges.json"
        self._lake.put_bytes(ranges_key, range_list(ranges))
        fenced_at = claimed.dataset.fenced_at or now
        read_after = fenced_at + self._context.settings.write_settle_ms
        job = ExportJob(record.batch_id, release_id, export_id, release.shards, fenced_at, read_after)
        return ExportPlan(record.batch_id, job, len(ranges), ranges_key, wait_seconds=_seconds_until(read_after, now))

    def write_range(self, job: ExportJob, number_range: NumberRange) -> dict[str, Any]:
        if self._context.clock() < job.read_after:
            raise ExportNotReady(f"batch {job.batch_id} is read from {job.read_after}: writes may be landing")
        source = StoredRange(self._context, job, number_range)
        summary = RangeWriter(self._lake, job.batch_id, number_range, source).write()
        return {"range": number_range.index, "parts": len(summary["parts"]), "sessions": summary["scalars"]["sessions"]}

    def judge(self, job: ExportJob, ranges: int) -> dict[str, Any]:
        """The click models fitted on the ranges' counts and the judgments written (contract 14)."""
        return self._publisher.judge(job.batch_id, ranges)

    def finish(self, job: ExportJob, ranges: int, judged: dict[str, Any]) -> dict[str, Any]:
        """`judged`: what the judge step returned (the judgments' uri, pairs, bytes, sha256; click_model)."""
        record = self._storage.batches.get(job.batch_id)
        if record is None or record.session_count is None:
            raise ExportNotReady(f"batch {job.batch_id} is not settled")
        summaries = self._publisher.summaries(job.batch_id, ranges)
        sessions = merge(summary["scalars"] for summary in summaries).get("sessions", 0)
        erased = sum(summary.get("erased_sessions", 0) for summary in summaries)
        # An erasure beside the export turns sessions into erased tombstones: together they stay what settle counted.
        if sessions + erased != record.session_count + record.erased_sessions:
            raise ExportSessionsMismatch(job.batch_id, sessions + erased, record.session_count + record.erased_sessions)
        exported_at = self._context.clock()
        published = self._publisher.publish(manifest_head(job, record, exported_at), summaries, judged, erased)
        dataset = replace(published.dataset, export_id=job.export_id)
        if not self._storage.batches.finish_export(job.batch_id, dataset):
            raise ExportNotReady(f"export {job.export_id} no longer holds batch {job.batch_id}")
        return {
            "batch_id": job.batch_id,
            "manifest": self._lake.uri(manifest_key(job.batch_id)),
            "parts": dataset.parts,
            "expires_at": expiry_of(exported_at, self._context.settings.retention_days),
            # Tasks scheduled on a stale "not exported" land before this; then the items get their expiry.
            "expire_after": exported_at + self._context.settings.write_settle_ms,
            "wait_seconds": _seconds_until(exported_at + self._context.settings.write_settle_ms, exported_at),
        }

    def expire_range(self, job: ExportJob, number_range: NumberRange, at_seconds: int) -> dict[str, Any]:
        """Retention (contract 7.6, 13.6): the range's items expire at `at_seconds`; only once the dataset exists,
        and WRITE_SETTLE_MS after it was recorded (a task scheduled later carries its expiry itself)."""
        record = self._storage.batches.get(job.batch_id)
        if record is None or record.dataset.status != "exported" or record.dataset.exported_at is None:
            raise ExportNotReady(f"batch {job.batch_id} has no dataset yet: its items are kept")
        if self._context.clock() < record.dataset.exported_at + self._context.settings.write_settle_ms:
            raise ExportNotReady(f"batch {job.batch_id}: tasks scheduled before its export was known may be landing")
        return Retention(self._context).expire_range(job, number_range, at_seconds)

    def fail(self, batch_id: str, export_id: str) -> None:
        self._storage.batches.fail_export(batch_id, export_id)


def _seconds_until(at_ms: int, now_ms: int) -> int:
    """Whole seconds (a Wait state's unit) from now until `at_ms`, rounded up."""
    return max(0, -(-(at_ms - now_ms) // 1000))


def manifest_head(job: ExportJob, record: BatchRecord, exported_at: int) -> dict[str, Any]:
    """The manifest's first members: what the export was (the counts, parts and reports follow)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "release_id": job.release_id,
        "batch_id": job.batch_id,
        "released_at": record.released_at,
        "exported_at": exported_at,
        "events_until": job.events_until,
        "late_writes": {
            "rule": LATE_WRITES_RULE,
            "fenced_at": job.events_until,
            "read_after": job.read_after,
        },
    }
