"""What a dataset's ranges add up to, published: the judgments, the report, the experiments, the report page
and `manifest.json` (contract 7.2, 14, 15, 16). The export's judge and finish steps (export.py) and an
erasure's rewrite (rewrite.py) both publish through here, from the ranges' summaries and lists in the lake.

The manifest is written last: the dataset exists when its manifest does. What the batch record keeps of
it comes back as a `Dataset`, for the caller to record.
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
    manifest_key,
    range_list_key,
    range_summary_key,
)
from clickstream.domain.datasets.metrics import median_of_sorted, merge, report, top_queries
from clickstream.domain.datasets.report_page import write_report
from clickstream.domain.ports import Lake, ReportPages
from clickstream.errors import ExportRangeMissing
from clickstream.records import Dataset

MAX_RECORDED_METRICS_BYTES = 64_000  # the report on the batch record and in the event (the manifest has it all)
_LISTS = ("first-clicks", "no-click-queries", "no-results-queries")


@dataclass(frozen=True)
class Published:
    """The manifest as written, and what the batch record keeps of it (status exported)."""

    manifest: dict[str, Any]
    dataset: Dataset


class Publisher:
    def __init__(self, context: Context, lake: Lake, pages: ReportPages) -> None:
        self._storage = context.storage
        self._lake = lake
        self._pages = pages

    def summaries(self, batch_id: str, ranges: int) -> list[dict[str, Any]]:
        return [self._summary(batch_id, index) for index in range(ranges)]

    def judge(self, batch_id: str, ranges: int) -> dict[str, Any]:
        """The click models fitted on the ranges' counts and the judgments written (contract 14)."""
        totals = merge(summary["scalars"] for summary in self.summaries(batch_id, ranges))
        with tempfile.TemporaryDirectory(prefix="judge-") as work:
            counts = self._fetch_lists(Path(work), batch_id, ranges, JUDGMENT_COUNTS)
            return publish_judgments(self._lake, batch_id, counts, totals, Path(work))

    def publish(
        self, head: dict[str, Any], summaries: list[dict[str, Any]], judged: dict[str, Any], erased_sessions: int
    ) -> Published:
        """`head`: the manifest's first members (schema_version, release_id, batch_id, ... late_writes; the
        export's); `judged`: what `judge` returned; `erased_sessions`: the batch's sessions erased before."""
        batch_id = head["batch_id"]
        totals = merge(summary["scalars"] for summary in summaries)
        metrics = self._report(batch_id, len(summaries), totals)
        experiment_sums = merge_sums(summary.get("experiments", {}) for summary in summaries)
        recorded, truncated = recordable_sums(experiment_sums)
        for experiment_id in recorded:  # named before the dataset is: a reader keeps only exported batches
            self._storage.experiments.add_batch(experiment_id, batch_id)
        parts = [part for summary in summaries for part in summary["parts"]]
        manifest = {
            **head,
            "session_count": sum(part["sessions"] for part in parts),
            "event_count": sum(part["events"] for part in parts),
            "erased_sessions": erased_sessions,
            "format": FORMAT,
            "parts": parts,
            "metrics": metrics,
            **judged,
            "experiments": experiments_report(experiment_sums),
        }
        manifest["report"] = write_report(self._storage, self._lake, self._pages, manifest)
        self._lake.put_bytes(manifest_key(batch_id), json.dumps(manifest, ensure_ascii=False).encode("utf-8"))
        dataset = Dataset(
            "exported",
            exported_at=head["exported_at"],
            session_count=manifest["session_count"],
            event_count=manifest["event_count"],
            parts=len(parts),
            metrics=recordable_metrics(metrics),
            experiment_sums=recorded,
            experiments_truncated=truncated,
            judgments=json.dumps({name: value for name, value in judged["judgments"].items() if name != "uri"}),
            click_model=json.dumps(judged["click_model"]),
        )
        return Published(manifest, dataset)

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


def _lines(path: Path) -> Iterator[Any]:
    with gzip.open(path, "rt", encoding="utf-8") as stream:
        for line in stream:
            yield json.loads(line)


def _values(path: Path) -> Iterator[int]:
    yield from _lines(path)


def _pairs(path: Path) -> Iterator[tuple[str, int]]:
    yield from ((text, count) for text, count in _lines(path))


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
