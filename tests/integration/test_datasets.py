"""A released batch becomes a dataset (contract 7.2, 7.3): read as a consumer reads it (DuckDB over the gzip
parts), it holds every session of the batch once, with all its events, exactly as paging the API shows
them; its manifest is written last and describes the stored parts; its report is the one worked out by hand."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from clickstream.domain.datasets import layout
from clickstream.domain.datasets.export import ExportPlan
from clickstream.domain.datasets.layout import NumberRange
from clickstream.domain.datasets.parts import ExportJob
from clickstream.errors import BatchExported
from clickstream.models import NewEvent
from clickstream.service import Clickstream
from clickstream.settings import Settings
from clickstream.storage import Storage
from tests.support import now_ms
from tests.support.datasets import check_parts, dataset_sessions, manifest, planned_ranges, run_export
from tests.support.domain import all_sessions, click, hand_out_number, new_session
from tests.unit.test_quality_metrics import EXPECTED, SESSIONS


@pytest.fixture(params=[1, 8], ids=["1-shard", "8-shards"])
def exporting(request: pytest.FixtureRequest, storage: Storage, settings: Settings, tmp_path: Path) -> Clickstream:
    """The service over the template's tables, exporting into a folder, ranges of 4 numbers."""
    configured = settings.model_copy(
        update={"batch_shards": request.param, "export_range_sessions": 4, "lake_dir": str(tmp_path / "lake")}
    )
    return Clickstream(storage, configured)


def lake(service: Clickstream) -> Path:
    return Path(service.settings.lake_dir)


def fill_batch(service: Clickstream, storage: Storage, sessions: int = 13) -> tuple[str, list[str]]:
    """A released batch with sessions that have 0..4 events, and a number nobody wrote in the middle."""
    ids = []
    for n in range(sessions):
        if n == 6:
            hand_out_number(storage)  # a gap: tombstoned by the release
        registration = service.register(new_session(f"s{n:02d}", search_query={"text": "q", "n": n % 3}))
        events = [NewEvent(event_id=f"e{k}", object_id="shoe-3", created_at=now_ms() - 1000 + k) for k in range(n % 5)]
        if events:
            service.add_events(registration.session_id, events)
        ids.append(registration.session_id)
    return registration.batch_id, ids


def page_everything(service: Clickstream, batch_id: str) -> list[dict[str, Any]]:
    return [{"batch_id": batch_id, **session} for session in all_sessions(service, batch_id, 5)]


def test_the_dataset_holds_every_session_once_with_all_its_events_as_paging_shows_them(
    exporting: Clickstream, storage: Storage
) -> None:
    batch_id, ids = fill_batch(exporting, storage)
    release = exporting.release("release-d")
    finished = run_export(exporting, lake(exporting), "release-d")
    assert finished is not None
    exported = dataset_sessions(lake(exporting), batch_id)
    assert exported == page_everything(exporting, batch_id)  # session by session, event by event
    assert sorted(session["session_id"] for session in exported) == ids
    document = manifest(lake(exporting), batch_id)
    assert document["session_count"] == release.session_count == len(ids)
    assert document["event_count"] == sum(n % 5 for n in range(len(ids)))
    assert len(document["parts"]) == 4  # 14 numbers in ranges of 4
    check_parts(lake(exporting), batch_id)
    view = exporting.batch(batch_id)
    assert view.dataset is not None
    assert (view.dataset.status, view.dataset.session_count, view.dataset.parts) == ("exported", len(ids), 4)
    assert view.dataset.manifest == (lake(exporting) / layout.manifest_key(batch_id)).as_uri().replace("%3D", "=")


def test_a_consumer_queries_the_dataset_with_sql(exporting: Clickstream, storage: Storage) -> None:
    batch_id, ids = fill_batch(exporting, storage)
    exporting.release("release-q")
    run_export(exporting, lake(exporting), "release-q")
    folder = lake(exporting) / "sessions"
    query = (
        "SELECT batch_id, count(session_id) AS sessions, sum(len(events)) AS events "
        "FROM read_json_auto($parts, hive_partitioning = true) GROUP BY batch_id"
    )
    rows = duckdb.execute(query, {"parts": f"{folder}/*/part-*.jsonl.gz"}).fetchall()
    assert rows == [(batch_id, len(ids), sum(n % 5 for n in range(len(ids))))]


def test_the_report_of_the_dataset_is_the_one_worked_out_by_hand(exporting: Clickstream) -> None:
    """The sessions of tests/unit/test_quality_metrics.py, registered and clicked through the service."""
    start = now_ms() - 60_000
    for n, (query, shown, (irrelevant, payload), events) in enumerate(SESSIONS):
        session_id = f"m{n:02d}"
        body = new_session(
            session_id, search_query=query, search_results=shown, is_payload_search=payload, created_at=start
        )
        exporting.register(body)
        if irrelevant:
            exporting.mark_irrelevant(session_id)
        moved = [
            NewEvent(
                event_id=e.event_id,
                object_id=e.object_id,
                event_type=e.event_type,
                created_at=start + e.created_at - 1_000_000,
            )
            for e in events
        ]
        if moved:
            exporting.add_events(session_id, moved)
    batch_id = exporting.release("release-m").batch_id
    run_export(exporting, lake(exporting), "release-m")
    metrics = manifest(lake(exporting), batch_id)["metrics"]
    for name, value in EXPECTED.items():
        assert metrics[name] == (pytest.approx(value) if isinstance(value, float) else value), name
    recorded = exporting.batch(batch_id).metrics
    assert recorded is not None
    assert recorded.model_dump(exclude={"top_queries_truncated"}) == metrics  # on the batch, as in the manifest


def test_every_event_accepted_before_the_fence_is_in_the_dataset_whatever_its_created_at(
    exporting: Clickstream,
) -> None:
    """The cut is by arrival (contract 13.5): a client clock behind or ahead does not leave an event out."""
    exporting.register(new_session("late"))
    batch_id = exporting.release("release-l").batch_id
    behind, ahead = now_ms() - 3_600_000, now_ms() + 60_000  # both inside the timestamp window
    exporting.add_events("late", [click("behind", behind), click("now"), click("ahead", ahead)])
    run_export(exporting, lake(exporting), "release-l")
    [session] = dataset_sessions(lake(exporting), batch_id)
    assert [event["event_id"] for event in session["events"]] == ["behind", "now", "ahead"]
    document = manifest(lake(exporting), batch_id)
    assert document["late_writes"]["fenced_at"] == document["events_until"] < ahead
    assert "before fenced_at is in the dataset" in document["late_writes"]["rule"]
    with pytest.raises(BatchExported):  # after the fence: refused, never acknowledged and left out
        exporting.add_events("late", [click("after", behind)])
    with pytest.raises(BatchExported):
        exporting.mark_irrelevant("late")
    assert dataset_sessions(lake(exporting), batch_id) == [session]


def test_a_range_larger_than_a_part_goes_on_in_the_next(
    exporting: Clickstream, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("clickstream.domain.datasets.parts.MAX_PART_BYTES", 900)  # one or two sessions a part
    batch_id, ids = fill_batch(exporting, storage, sessions=8)
    exporting.release("release-p")
    run_export(exporting, lake(exporting), "release-p")
    keys = [part["key"] for part in manifest(lake(exporting), batch_id)["parts"]]
    assert "part-00000.jsonl.gz" in keys, keys
    assert "part-00000-1.jsonl.gz" in keys, keys
    check_parts(lake(exporting), batch_id)
    assert sorted(session["session_id"] for session in dataset_sessions(lake(exporting), batch_id)) == ids


def test_an_exported_batch_is_not_exported_again_and_a_held_one_is_left_to_its_export(exporting: Clickstream) -> None:
    exporting.register(new_session())
    batch_id = exporting.release("release-x").batch_id
    first = exporting.exporter.plan("release-x", "export-a")
    assert first.job is not None
    assert exporting.exporter.plan("release-x", "export-b") == ExportPlan(
        batch_id, skip_reason="another export holds it"
    )
    again = exporting.exporter.plan("release-x", "export-a")  # a redrive keeps its claim and its cut-off
    assert again.job == first.job
    run_export(exporting, lake(exporting), "release-x", "export-a")
    assert run_export(exporting, lake(exporting), "release-x", "export-c") is None  # exported: skipped


def test_a_failed_export_lets_the_next_one_take_the_batch(exporting: Clickstream) -> None:
    exporting.register(new_session())
    batch_id = exporting.release("release-f").batch_id
    plan = exporting.exporter.plan("release-f", "export-a")
    exporting.exporter.fail(batch_id, "export-a")
    assert exporting.batch(batch_id).dataset.status == "failed"  # type: ignore[union-attr]
    assert run_export(exporting, lake(exporting), "release-f", "export-b") is not None
    assert exporting.batch(batch_id).dataset.status == "exported"  # type: ignore[union-attr]
    assert planned_ranges(lake(exporting), plan)  # the plan's ranges, kept for a redrive


def test_an_export_of_a_batch_not_settled_waits(exporting: Clickstream) -> None:
    from clickstream.errors import ExportNotReady

    with pytest.raises(ExportNotReady):
        exporting.exporter.plan("release-unknown", "export-a")


def test_items_are_kept_until_the_dataset_exists(exporting: Clickstream, storage: Storage) -> None:
    from clickstream.errors import ExportNotReady

    exporting.register(new_session())
    batch_id = exporting.release("release-kept").batch_id
    job = exporting.exporter.plan("release-kept", "export-a").job
    assert job is not None
    with pytest.raises(ExportNotReady):  # a retention step run early (or by hand) expires nothing
        exporting.exporter.expire_range(job, NumberRange(0, 1, 4), now_ms() // 1000)
    assert exporting.batch(batch_id).dataset.status == "exporting"  # type: ignore[union-attr]


class Crash(Exception):
    """The export's worker died here."""


CRASH_POINTS = (
    "after-some-ranges",
    "after-all-ranges",
    "after-the-judgments",
    "before-the-manifest",
    "after-the-manifest",
    "after-the-record",
)


def crash_export(service: Clickstream, release_id: str, crash: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the export's steps until `crash`."""
    plan = service.exporter.plan(release_id, "export-1")
    job = plan.job
    assert job is not None
    for index, number_range in enumerate(planned_ranges(lake(service), plan)):
        if crash == "after-some-ranges" and index == 2:
            return
        service.exporter.write_range(job, number_range)
    if crash == "after-all-ranges":
        return
    judged = service.exporter.judge(job, plan.ranges)
    if crash == "after-the-judgments":
        return
    with monkeypatch.context() as patch:
        if crash == "before-the-manifest":
            patch.setattr(service.lake, "put_bytes", lambda key, data: (_ for _ in ()).throw(Crash(key)))
        if crash == "after-the-manifest":
            patch.setattr(
                service.storage.batches, "finish_export", lambda batch_id, dataset: (_ for _ in ()).throw(Crash())
            )
        if crash == "after-the-record":
            service.exporter.finish(job, plan.ranges, judged)
            return
        with pytest.raises(Crash):
            service.exporter.finish(job, plan.ranges, judged)


@pytest.mark.parametrize("crash", CRASH_POINTS)
def test_an_export_stopped_at_any_step_is_completed_by_running_it_again(
    exporting: Clickstream, storage: Storage, crash: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A redrive (the same export) completes it, with every session exactly once and parts as listed, and
    the judgments written again byte for byte."""
    batch_id, ids = fill_batch(exporting, storage)
    exporting.release("release-c")
    crash_export(exporting, "release-c", crash, monkeypatch)
    if crash != "after-the-record":
        assert exporting.batch(batch_id).dataset.status == "exporting"  # type: ignore[union-attr]
    judgments = lake(exporting) / layout.judgments_key(batch_id)
    judged_before_the_crash = judgments.read_bytes() if judgments.exists() else None
    run_export(exporting, lake(exporting), "release-c", "export-1")
    exported = dataset_sessions(lake(exporting), batch_id)
    assert exported == page_everything(exporting, batch_id)
    assert sorted(session["session_id"] for session in exported) == ids
    keys = [part["key"] for part in manifest(lake(exporting), batch_id)["parts"]]
    assert len(keys) == len(set(keys)) == 4
    check_parts(lake(exporting), batch_id)
    assert exporting.batch(batch_id).dataset.status == "exported"  # type: ignore[union-attr]
    judged = judgments.read_bytes()
    assert judged_before_the_crash in (None, judged)
    listed = manifest(lake(exporting), batch_id)["judgments"]
    assert (listed["bytes"], listed["sha256"]) == (len(judged), hashlib.sha256(judged).hexdigest())
    ranges = len(json.loads((lake(exporting) / layout.work_folder(batch_id) / "ranges.json").read_text()))
    exporting.exporter.judge(ExportJob(batch_id, "release-c", "export-1", 1, 0), ranges)  # the step retried
    assert judgments.read_bytes() == judged
