"""Which batches exist, what each holds (contract 7.4), and the shard count each was opened with (8.1).

A batch is released (its `batch#<id>` record exists) or collecting (the pointer names it). Its shard count
never changes, so a container keeps it once read: paging the same batch again costs no lookup.
"""

from __future__ import annotations

import json
import re
import threading

from clickstream.domain.context import Context
from clickstream.domain.datasets.experiments import report_of_recorded
from clickstream.domain.datasets.layout import judgments_key, manifest_key, report_key
from clickstream.domain.ports import Lake
from clickstream.errors import BatchNotFound, ReportNotFound
from clickstream.records import BatchRecord, Pointer, recorded
from clickstream.reports import (
    BatchList,
    BatchView,
    ClickModel,
    DatasetView,
    ExperimentReport,
    JudgmentsFile,
    QualityReport,
)

_OPENED_IN_ID = re.compile(r"^b-(\d{13})-")


class BatchDirectory:
    def __init__(self, context: Context, lake: Lake) -> None:
        self._storage = context.storage
        self._lake = lake
        self._shards: dict[str, int] = {}
        self._lock = threading.Lock()

    def shards_of(self, batch_id: str) -> int:
        """The shard count of a released or collecting batch; BatchNotFound for any other id."""
        with self._lock:
            known = self._shards.get(batch_id)
        if known is not None:
            return known
        record, pointer = self._find(batch_id)
        shards = record.shards if record is not None else pointer.shards if pointer is not None else 1
        with self._lock:
            self._shards[batch_id] = shards
        return shards

    def view(self, batch_id: str) -> BatchView:
        """`GET /batch`: the batch, its dataset and its report."""
        record, pointer = self._find(batch_id)
        return self._released(record) if record is not None else _collecting(pointer, batch_id)

    def report_page(self, batch_id: str) -> bytes:
        """`GET /batch/report`: the exported batch's page; ReportNotFound until the dataset exists."""
        record, _ = self._find(batch_id)
        page = None
        if record is not None and record.dataset.status == "exported":
            page = self._lake.get_bytes(report_key(batch_id))
        if page is None:
            raise ReportNotFound(batch_id)
        return page

    def newest(self, limit: int, before: str | None) -> BatchList:
        """`GET /batches`: newest first; the collecting batch first on the first page."""
        views: list[BatchView] = []
        pointer = self._storage.pointer.get() if before is None else None
        if pointer is not None and self._storage.batches.get(pointer.batch_id) is None:
            views.append(_collecting(pointer, pointer.batch_id))
        records, more = self._storage.batches.newest(limit - len(views), before)
        views += [self._released(record) for record in records]
        return BatchList(batches=views, next=views[-1].batch_id if more and views else None)

    def _find(self, batch_id: str) -> tuple[BatchRecord | None, Pointer | None]:
        # Record, then pointer, then record again: a release moving the batch between the first two
        # reads has written the record by the time of the third.
        record = self._storage.batches.get(batch_id)
        if record is not None:
            return record, None
        pointer = self._storage.pointer.get()
        if pointer is not None and pointer.batch_id == batch_id:
            return None, pointer
        record = self._storage.batches.get(batch_id)
        if record is None:
            raise BatchNotFound(batch_id)
        return record, None

    def _released(self, record: BatchRecord) -> BatchView:
        dataset = record.dataset
        exported = dataset.status == "exported"
        return BatchView(
            batch_id=record.batch_id,
            status="released",
            opened_at=record.opened_at or _opened_in_id(record.batch_id),
            release_id=record.release_id,
            released_at=record.released_at,
            session_count=record.session_count,
            erased_sessions=record.erased_sessions,
            dataset=DatasetView(
                status=dataset.status,
                manifest=self._lake.uri(manifest_key(record.batch_id)),
                exported_at=dataset.exported_at if exported else None,
                session_count=dataset.session_count if exported else None,
                event_count=dataset.event_count if exported else None,
                parts=dataset.parts if exported else None,
                judgments=self._judgments(record) if exported else None,
                report=self._lake.uri(report_key(record.batch_id)) if exported else None,
            ),
            metrics=QualityReport.model_validate(json.loads(dataset.metrics)) if exported and dataset.metrics else None,
            experiments=[
                ExperimentReport.model_validate(entry) for entry in report_of_recorded(dataset.experiment_sums)
            ]
            if exported
            else None,
            experiments_truncated=dataset.experiments_truncated,
            click_model=_click_model(dataset.click_model) if exported else None,
        )

    def _judgments(self, record: BatchRecord) -> JudgmentsFile | None:
        """Datasets exported before judgments were fitted have none."""
        if not recorded(record.dataset.judgments):
            return None
        described = json.loads(record.dataset.judgments or "{}")
        return JudgmentsFile(uri=self._lake.uri(judgments_key(record.batch_id)), **described)


def _collecting(pointer: Pointer | None, batch_id: str) -> BatchView:
    return BatchView(
        batch_id=batch_id,
        status="collecting",
        opened_at=pointer.opened_at if pointer is not None else _opened_in_id(batch_id),
        release_id=None,
        released_at=None,
        session_count=None,
        dataset=None,
        metrics=None,
        experiments=None,
        click_model=None,
    )


def _click_model(document: str | None) -> ClickModel | None:
    return ClickModel.model_validate(json.loads(document or "{}")) if recorded(document) else None


def _opened_in_id(batch_id: str) -> int | None:
    """Batch ids begin with their opening time (records from before it was kept carry no other)."""
    match = _OPENED_IN_ID.match(batch_id)
    return int(match.group(1)) if match else None
