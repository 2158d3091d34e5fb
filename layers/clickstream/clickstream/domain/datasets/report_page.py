"""The export's report page (contract 16): rendered from the manifest and the earlier releases' reports,
written to `reports/batch_id=<id>/report.html` before the manifest names it.

The page's renderer is a port (`ReportPages`): the domain never imports the template engine. The earlier
releases are the batch records older than this batch, newest first (the listing GET /batches reads),
exported ones only, as many as the trend shows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from clickstream.domain.datasets.layout import report_key
from clickstream.domain.ports import Lake, ReportPages, Stores
from clickstream.records import BatchRecord

EARLIER_RELEASES = 29  # with this one, the trend's 30
MAX_LISTING_PAGES = 4  # batches that never exported are skipped, but only this many pages are read for them


def write_report(storage: Stores, lake: Lake, pages: ReportPages, manifest: Mapping[str, Any]) -> str:
    """Render and store the page of the export whose manifest is given; its URI."""
    batch_id = manifest["batch_id"]
    key = report_key(batch_id)
    lake.put_bytes(key, pages.render(manifest, earlier_releases(storage, batch_id)))
    return lake.uri(key)


def earlier_releases(storage: Stores, batch_id: str) -> list[dict[str, Any]]:
    """The exported releases before `batch_id`, newest first, at most EARLIER_RELEASES."""
    found: list[dict[str, Any]] = []
    before = batch_id
    for _ in range(MAX_LISTING_PAGES):
        records, more = storage.batches.newest(EARLIER_RELEASES, before)
        found += [_release(record) for record in records if _exported(record)]
        if not more or not records or len(found) >= EARLIER_RELEASES:
            break
        before = records[-1].batch_id
    return found[:EARLIER_RELEASES]


def _exported(record: BatchRecord) -> bool:
    return record.dataset.status == "exported" and bool(record.dataset.metrics)


def _release(record: BatchRecord) -> dict[str, Any]:
    return {
        "batch_id": record.batch_id,
        "release_id": record.release_id,
        "released_at": record.released_at,
        "metrics": json.loads(record.dataset.metrics or "{}"),
    }
