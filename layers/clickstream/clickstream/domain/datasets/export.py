"""Exporting a released batch (contract 7.1-7.3): plan, write the ranges (in parallel), finish.

* Plan: the export takes the batch (a conditional write on its record: one export at a time; the same
  export again, as a redrive, keeps its start and its event cut-off), and cuts its numbers into ranges.
* Ranges: each worker writes its parts and its share of the report (`parts.RangeWriter`).
* Finish: every range's summary, merged into the report (sorted lists streamed together, never the
  batch), the session count checked against the release's, then `manifest.json`, written last: the
  dataset exists when its manifest does. Then the batch record says so, and that change announces the
  export (BatchExported, through the outbox).

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
from clickstream.domain.datasets.layout import (
    FORMAT,
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
from clickstream.domain.datasets.retention import Retention, expiry_of
from clickstream.domain.ports import Lake
from clickstream.errors import ExportNotReady, ExportRangeMissing, ExportSessionsMismatch
from clickstream.records import BatchRecord, Dataset

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


class Exporter:
    def __init__(self, context: Context, lake: Lake) -> None:
        self._context = context
        self._storage = context.storage
        self._lake = lake

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
        again = record.dataset.export_id == export_id  # a redrive keeps its cut-off
        claim = Dataset(
            "exporting",
            export_id,
            started_at=record.dataset.started_at if again else now,
            events_until=record.dataset.events_until if again else now,
        )
        claimed = self._storage.batches.claim_export(record.batch_id, claim, now - STALE_EXPORT_MS)
        if claimed is None:
            return ExportPlan(record.batch_id, skip_reason="another export holds it")
        ranges = number_ranges(release.last_number, self._context.settings.export_range_sessions)
        ranges_key = f"{work_folder(record.batch_id)}/ranges.json"
        self._lake.put_bytes(ranges_key, range_list(ranges))
        job = ExportJob(record.batch_id, release_id, export_id, release.shards, claimed.dataset.events_until or now)
        return ExportPlan(record.batch_id, job, len(ranges), ranges_key)

    def write_range(self, job: ExportJob, number_range: NumberRange) -> dict[str, Any]:
        summary = RangeWriter(self._context, self._lake, job, number_range).write()
        return {"range": number_range.index, "parts": len(summary["parts"]), "sessions": summary["scalars"]["sessions"]}

    def finish(self, job: ExportJob, ranges: int) -> dict[str, Any]:
        record = self._storage.batches.get(job.batch_id)
        if record is None or record.session_count is None:
            raise ExportNotReady(f"batch {job.batch_id} is not settled")
        summaries = [self._summary(job.batch_id, index) for index in range(ranges)]
        totals = merge(summary["scalars"] for summary in summaries)
        if totals.get("sessions", 0) != record.session_count:
            raise ExportSessionsMismatch(job.batch_id, totals.get("sessions", 0), record.session_count)
        metrics = self._report(job.batch_id, ranges, totals)
        exported_at = self._context.clock()
        parts = [part for summary in summaries for part in summary["parts"]]
        manifest = _manifest(job, record, exported_at, parts, metrics)
        self._lake.put_bytes(manifest_key(job.batch_id), json.dumps(manifest, ensure_ascii=False).encode("utf-8"))
        dataset = Dataset(
            "exported",
            job.export_id,
            exported_at=exported_at,
            session_count=manifest["session_count"],
            event_count=manifest["event_count"],
            parts=len(parts),
            metrics=recordable_metrics(metrics),
        )
        if not self._storage.batches.finish_export(job.batch_id, dataset):
            raise ExportNotReady(f"export {job.export_id} no longer holds batch {job.batch_id}")
        return {
            "batch_id": job.batch_id,
            "manifest": self._lake.uri(manifest_key(job.batch_id)),
            "parts": len(parts),
            "expires_at": expiry_of(exported_at, self._context.settings.retention_days),
        }

    def expire_range(self, job: ExportJob, number_range: NumberRange, at_seconds: int) -> dict[str, Any]:
        """Retention (contract 7.6): the range's items expire at `at_seconds`; only once the dataset exists."""
        record = self._storage.batches.get(job.batch_id)
        if record is None or record.dataset.status != "exported":
            raise ExportNotReady(f"batch {job.batch_id} has no dataset yet: its items are kept")
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
