"""Running an export by its steps, as the export state machine does, and reading it as a consumer would."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import duckdb

from clickstream.domain.datasets.export import ExportPlan
from clickstream.domain.datasets.layout import NumberRange, dataset_folder, manifest_key
from clickstream.service import Clickstream


def run_export(
    service: Clickstream, lake_dir: Path, release_id: str, export_id: str = "export-1", *, expire: bool = False
) -> dict[str, Any] | None:
    """Plan, every range, judge, finish (and with `expire`, retention's expire steps); None when the plan
    skips. Returns what finish returns. Waits, as the machine's Wait states do, until the plan's `read_after`
    and finish's `expire_after` (now, with the tests' WRITE_SETTLE_MS of 0)."""
    plan = service.exporter.plan(release_id, export_id)
    if plan.job is None:
        return None
    ranges = planned_ranges(lake_dir, plan)
    time.sleep(max(0.0, plan.job.read_after / 1000 - time.time()))
    for number_range in ranges:
        service.exporter.write_range(plan.job, number_range)
    judged = service.exporter.judge(plan.job, plan.ranges)
    finished: dict[str, Any] = service.exporter.finish(plan.job, plan.ranges, judged)
    if expire:
        assert finished["expires_at"] is not None, "retention is off"
        time.sleep(max(0.0, finished["expire_after"] / 1000 - time.time()))
        for number_range in ranges:
            service.exporter.expire_range(plan.job, number_range, finished["expires_at"])
    return finished


def planned_ranges(lake_dir: Path, plan: ExportPlan) -> list[NumberRange]:
    """The ranges the plan wrote to the lake, as the export machine's Map reads them."""
    assert plan.ranges_key is not None
    items = json.loads((lake_dir / plan.ranges_key).read_text(encoding="utf-8"))
    return [NumberRange(item["index"], item["first"], item["last"]) for item in items]


def manifest(lake_dir: Path, batch_id: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((lake_dir / manifest_key(batch_id)).read_text(encoding="utf-8"))
    return document


def dataset_sessions(lake_dir: Path, batch_id: str) -> list[dict[str, Any]]:
    """Every line of the dataset's parts, read by DuckDB as JSON objects, in part and line order."""
    folder = lake_dir / dataset_folder(batch_id)
    query = "SELECT json FROM read_json_objects($parts, filename = true) ORDER BY filename"
    rows = duckdb.execute(query, {"parts": f"{folder}/part-*.jsonl.gz"}).fetchall()
    return [json.loads(row[0]) for row in rows]


def check_parts(lake_dir: Path, batch_id: str) -> None:
    """Each part the manifest lists is stored with its hash, size and counts, its numbers ascending."""
    document = manifest(lake_dir, batch_id)
    folder = lake_dir / dataset_folder(batch_id)
    for part in document["parts"]:
        stored = (folder / part["key"]).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == part["sha256"], part["key"]
        assert len(stored) == part["bytes"]
        lines = [json.loads(line) for line in gzip.decompress(stored).decode("utf-8").splitlines()]
        assert len(lines) == part["sessions"]
        assert sum(len(line["events"]) for line in lines) == part["events"]
        numbers = [line["session_number"] for line in lines]
        assert numbers == sorted(set(numbers))
        assert (numbers[0], numbers[-1]) == (part["first_number"], part["last_number"])
