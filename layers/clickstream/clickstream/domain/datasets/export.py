"""Exporting a released batch (contract 7.1-7.3, 14): plan, write the ranges (in parallel), judge, finish.

* Plan: the export takes the batch (a conditional write on its record: one export at a time; the same
  export again, as a redrive, keeps its start), fences it against late writes (contract 13.5: once, kept by
  every later export), and cuts its numbers into ranges. The ranges are read only from `read_after`, the
  fence plus WRITE_SETTLE_MS, when every write accepted before the fence is stored (domain/late_writes.py).
* Ranges: each worker writes its parts, its share of the report and its judgment counts
  (`parts.RangeWriter`).
* Judge: the counts merged, the click models fitted, the judgments written (`judging`, contract 14).
* Finish: every range's summary, merged into the report (sorted lists streamed together, never the
  batch), the session count checked against the release's, the report page (report_page.py), then
  `manifest.json`, written last: the dataset exists when its manifest does. Then the batch record says
  so, and that change announces the export (BatchExported, through the outbox).

A repeated export never duplicates a session: parts have fixed names per range and are replaced whole,
and the manifest lists exactly the parts of this export.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clickstream.domain.context import Context
from clickstream.domain.datasets.experiments import experiments_report, merge_sums, recordable_sums
from clickstream.domain.datasets.judging import publish_judgments
from clickstream.domain.datasets.layout import (
    FORMAT,
    JUDGMENT_COUNTS,
    SCHEMA_VERSION,
    NumberRange,
    manifest_key,
    number_ranges,
    range_list,
    range_list_key,
    range_summary_key,
    work_folder,
)
from clickstream.domain.datasets.metrics import median_of_sorted, merge, report, top_queries
from clickstream.domain.datasets.parts import ExportJob, RangeWriter
from clickstream.domain.datasets.report_page import write_report
from clickstream.domain.datasets.retention import Retention, expiry_of
from clickstream.domain.ports import Lake, ReportPages
from clickstream.errors import ExportNotReady, ExportRangeMissing, ExportSessionsMismatch
from clickstream.records import BatchRecord, Dataset

LATE_WRITES_RULE = (
    "every event and irrelevant mark accepted for the batch's sessions before fenced_at is in the dataset, "
    "whatever its created_at; later ones were refused (409). The parts were read after read_after."
)
STALE_EXPORT_MS = 24 * 3_600_000  # an export holding a batch this long is taken to have died
MAX_RECORDED_METRICS_BYTES = 64_000  # the report on the batch record and in the event (the manifest has it all)


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
        self._pages = pages

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
        claimed = self._storage.batches.claim_export(record.batch_id, claim, now - STALE_EXPORT_MS)
        if claimed is None:
            return ExportPlan(record.batch_id, skip_reason="another export holds it")
        ranges = number_ranges(release.last_number, self._context.settings.export_range_sessions)
        ranges_key = f"{work_folder(record.batch_id)}/ranges.json"
        self._lake.put_bytes(ranges_key, range_list(ranges))
        fenced_at = claimed.dataset.fenced_at or now
        read_after = fenced_at + self._context.settings.write_settle_ms
        job = ExportJob(record.batch_id, release_id, export_id, release.shards, fenced_at, read_after)
        return ExportPlan(record.batch_id, job, len(ranges), ranges_key, wait_seconds=_seconds_until(read_after, now))

    def write_range(self, job: ExportJob, number_range: NumberRange) -> dict[str, Any]:
        summary = RangeWriter(self._context, self._lake, job, number_range).write()
        return {"range": number_range.index, "parts": len(summary["parts"]), "sessions": summary["scalars"]["sessions"]}

    def judge(self, job: ExportJob, ranges: int) -> dict[str, Any]:
        """The click models fitted on the ranges' counts and the judgments written (contract 14)."""
        totals = merge(self._summary(job.batch_id, index)["scalars"] for index in range(ranges))
        with tempfile.TemporaryDirectory(prefix="judge-") as work:
            counts = self._fetch_lists(Path(work), job.batch_id, ranges, JUDGMENT_COUNTS)
            return publish_judgments(self._lake, job.batch_id, counts, totals, Path(work))

    def finish(self, job: ExportJob, ranges: int, judged: dict[str, Any]) -> dict[str, Any]:
        """`judged`: what the judge step returned (the judgments' uri, pairs, bytes, sha256; click_model)."""
        record = self._storage.batches.get(job.batch_id)
        if record is None or record.session_count is None:
            raise ExportNotReady(f"batch {job.batch_id} is not settled")
        summaries = [self._summary(job.batch_id, index) for index in range(ranges)]
        totals = merge(summary["scalars"] for summary in summaries)
        if totals.get("sessions", 0) != record.session_count:
            raise ExportSessionsMismatch(job.batch_id, totals.get("sessions", 0), record.session_count)
        metrics = self._report(job.batch_id, ranges, totals)
        experiment_sums = merge_sums(summary.get("experiments", {}) for summary in summaries)
        recorded, truncated = recordable_sums(experiment_sums)
        for experiment_id in recorded:  # named before the dataset is: a reader keeps only exported batches
            self._storage.experiments.add_batch(experiment_id, job.batch_id)
        exported_at = self._context.clock()
        parts = [part for summary in summaries for part in summary["parts"]]
        manifest = {**_manifest(job, record, exported_at, parts, metrics), **judged}
        manifest["experiments"] = experiments_report(experiment_sums)
        manifest["report"] = write_report(self._storage, self._lake, self._pages, manifest)
        self._lake.put_bytes(manifest_key(job.batch_id), json.dumps(manifest, ensure_ascii=False).encode("utf-8"))
        dataset = Dataset(
            "exported",
            job.export_id,
            exported_at=exported_at,
            session_count=manifest["session_count"],
            event_count=manifest["event_count"],
            parts=len(parts),
            metrics=recordable_metrics(metrics),
            experiment_sums=recorded,
            experiments_truncated=truncated,
            judgments=json.dumps({name: value for name, value in judged["judgments"].items() if name != "uri"}),
            click_model=json.dumps(judged["click_model"]),
        )
        if not self._storage.batches.finish_export(job.batch_id, dataset):
            raise ExportNotReady(f"export {job.export_id} no longer holds batch {job.batch_id}")
        return {
            "batch_id": job.batch_id,
            "manifest": self._lake.uri(manifest_key(job.batch_id)),
            "parts": len(parts),
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

    def _summary(self, batch_id: str, index: int) -> dict[str, Any]:
        data = self._lake.get_bytes(range_summary_key(batch_id, index))
        if data is None:
            raise ExportRangeMissing(batch_id, index)
        summary: dict[str, Any] = json.loads(data)
        return summary

    def _report(self, batch_id: str, ranges: int, totals: dict[str, Any]) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="report-") as work:
            lists = {name: self._fetch_lists(Path(work), batch_id, ranges, name) for name in _LISTS}
            median = median_of_sorted((_values(path) for path in lists["first-clicks"]), totals.get("first_clicks", 0))
            top = {
                "no_click": top_queries(_pairs(path) for path in lists["no-click-queries"]),
                "no_results": top_queries(_pairs(path) for path in lists["no-results-queries"]),
            }
            return report(totals, median, top)

    def _fetch_lists(self, folder: Path, batch_id: str, ranges: int, name: str) -> list[Path]:
        paths = []
        for index in range(ranges):
            path = folder / f"{index:05d}.{name}.gz"
            if not self._lake.fetch(range_list_key(batch_id, index, name), path):
                raise ExportRangeMissing(batch_id, index)
            paths.append(path)
        return paths


_LISTS = ("first-clicks", "no-click-queries", "no-results-queries")


def _lines(path: Path) -> Iterator[Any]:
    with gzip.open(path, "rt", encoding="utf-8") as stream:
        for line in stream:
            yield json.loads(line)


def _values(path: Path) -> Iterator[int]:
    yield from _lines(path)


def _pairs(path: Path) -> Iterator[tuple[str, int]]:
    yield from ((text, count) for text, count in _lines(path))


def _seconds_until(at_ms: int, now_ms: int) -> int:
    """Whole seconds (a Wait state's unit) from now until `at_ms`, rounded up."""
    return max(0, -(-(at_ms - now_ms) // 1000))


def _manifest(
    job: ExportJob, record: BatchRecord, exported_at: int, parts: list[dict[str, Any]], metrics: dict[str, Any]
) -> dict[str, Any]:
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
        "session_count": sum(part["sessions"] for part in parts),
        "event_count": sum(part["events"] for part in parts),
        "format": FORMAT,
        "parts": parts,
        "metrics": metrics,
    }


def recordable_metrics(metrics: dict[str, Any]) -> str:
    """The report as the batch record and the event carry it: whole, unless its top lists (queries can be
    large JSON objects) would make it too large; then they are shortened and `top_queries_truncated` says so.
    The manifest always has the whole report."""
    kept = dict(metrics)
    while len(text := json.dumps(kept, ensure_ascii=False)) > MAX_RECORDED_METRICS_BYTES:
        lists = [name for name in ("top_no_click_queries", "top_no_results_queries") if kept[name]]
        if not lists:
            break
        longest = max(lists, key=lambda name: len(json.dumps(kept[name], ensure_ascii=False)))
        kept[longest] = kept[longest][:-1]
        kept["top_queries_truncated"] = True
    return text
