"""An erasure's rewrite over in-memory ports, with parts cut small so that each range spans several pieces:
the user's lines dropped, the kept lines move up into fewer pieces exactly as a fresh export cuts them, the
pieces no longer needed are removed, and a rewrite that crashed at any write is completed by running it again."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from clickstream.domain.datasets import parts
from clickstream.domain.datasets.layout import NumberRange, dataset_folder, manifest_key
from clickstream.errors import ExportNotReady
from clickstream.models import NewEvent
from clickstream.records import Place
from clickstream.service import Clickstream
from clickstream.settings import Settings
from tests.support import now_ms
from tests.support.domain import new_session
from tests.support.memory import MemoryLake, MemoryStores

TABLES = {name: f"memory-{name}" for name in ("sessions", "session_ids", "events", "batches", "tasks", "user_datasets")}
USER = "erased-user"
USER_AT = (1, 2, 12)


class Crash(Exception):
    pass


@dataclass
class CrashingLake(MemoryLake):
    """Fails the `crash_at`-th write (1 = the first), once."""

    crash_at: int = 0
    writes: int = 0
    written: list[str] = field(default_factory=list)

    def _write(self, key: str) -> None:
        self.writes += 1
        if self.writes == self.crash_at:
            raise Crash(key)
        self.written.append(key)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write(key)
        super().put_bytes(key, data)

    def put_file(self, key: str, path: Any) -> None:
        self._write(key)
        super().put_file(key, path)

    def remove(self, key: str) -> int:
        self._write(key)
        return super().remove(key)


@pytest.fixture(autouse=True)
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parts, "MAX_PART_BYTES", 1_300)  # about three sessions a piece


def service_of(stores: MemoryStores, lake: MemoryLake) -> Clickstream:
    settings = Settings.model_validate(
        {
            **{f"{name}_table": table for name, table in TABLES.items()},
            "batch_shards": 1,
            "export_range_sessions": 8,
            "write_settle_ms": 0,
            "batch_state_cache_ms": 0,
        }
    )
    return Clickstream(stores, settings, lake=lake, sleep=lambda _seconds: None)


def export(service: Clickstream, lake: MemoryLake, release_id: str, export_id: str) -> None:
    plan = service.exporter.plan(release_id, export_id)
    assert plan.job is not None
    assert plan.ranges_key is not None
    for item in json.loads(lake.objects[plan.ranges_key]):
        service.exporter.write_range(plan.job, NumberRange(item["index"], item["first"], item["last"]))
    service.exporter.finish(plan.job, plan.ranges, service.exporter.judge(plan.job, plan.ranges))


def exported_batch(stores: MemoryStores, lake: MemoryLake) -> tuple[Clickstream, str]:
    service = service_of(stores, lake)
    for n in range(20):
        session_id = f"sess-{n:02d}"
        service.register(new_session(session_id, user_id=USER if n in USER_AT else "someone-else"))
        service.add_events(session_id, [NewEvent(event_id=f"ev-{n:02d}", object_id="shoe-3", created_at=now_ms())])
    batch_id = service.release("release-p").batch_id
    export(service, lake, "release-p", "export-1")
    return service, batch_id


def stored_parts(lake: MemoryLake, batch_id: str) -> dict[str, bytes]:
    folder = dataset_folder(batch_id)
    return {key: data for key, data in lake.objects.items() if key.startswith(f"{folder}/part-")}


def lines_of(lake: MemoryLake, batch_id: str) -> list[dict[str, Any]]:
    manifest = json.loads(lake.objects[manifest_key(batch_id)])
    folder = dataset_folder(batch_id)
    return [
        json.loads(line)
        for part in manifest["parts"]
        for line in gzip.decompress(lake.objects[f"{folder}/{part['key']}"]).splitlines()
    ]


def fresh_export_without_user(stores: MemoryStores, batch_id: str) -> MemoryLake:
    """The independent recomputation: the user's slots erased in the tables, the batch exported afresh."""
    for n in USER_AT:
        stores.sessions.erase(Place(batch_id, n + 1, 1), "e-fresh")
    record = stores.batches.items[batch_id]
    stores.batches.items[batch_id] = replace(record, dataset=replace(record.dataset, status="failed"))
    lake = MemoryLake()
    export(service_of(stores, lake), lake, "release-p", "export-fresh")
    return lake


def test_kept_lines_move_up_into_fewer_pieces_as_a_fresh_export_cuts_them() -> None:
    stores, lake = MemoryStores(), MemoryLake()
    service, batch_id = exported_batch(stores, lake)
    before = stored_parts(lake, batch_id)
    assert any(key.endswith("part-00000-2.jsonl.gz") for key in before)  # the first range spans three pieces
    rewritten = service.rewriter.rewrite(batch_id, USER, "e-1")
    assert rewritten.sessions_removed == len(USER_AT)
    after = stored_parts(lake, batch_id)
    assert set(after) < set(before)  # a piece no longer needed is gone, not left behind
    assert [line["session_id"] for line in lines_of(lake, batch_id)] == [
        f"sess-{n:02d}" for n in range(20) if n not in USER_AT
    ]
    fresh = fresh_export_without_user(stores, batch_id)
    assert stored_parts(fresh, batch_id) == after
    ours, theirs = json.loads(lake.objects[manifest_key(batch_id)]), json.loads(fresh.objects[manifest_key(batch_id)])
    assert (ours["parts"], ours["metrics"], ours["erased_sessions"]) == (
        theirs["parts"],
        theirs["metrics"],
        theirs["erased_sessions"],
    )


def test_a_rewrite_that_crashed_at_any_write_is_completed_by_running_it_again() -> None:
    counting = CrashingLake()
    service, batch_id = exported_batch(MemoryStores(), counting)
    before = counting.writes
    service.rewriter.rewrite(batch_id, USER, "e-1")
    writes = counting.writes - before
    assert writes > 20
    for crash_at in range(1, writes + 1):
        stores, lake = MemoryStores(), CrashingLake()
        service, batch_id = exported_batch(stores, lake)
        lake.crash_at = lake.writes + crash_at
        with pytest.raises(Crash):
            service.rewriter.rewrite(batch_id, USER, "e-1")
        again = service.rewriter.rewrite(batch_id, USER, "e-1")
        assert again.sessions_removed == len(USER_AT), crash_at  # counted against the record, written last
        assert stores.batches.items[batch_id].dataset.session_count == 20 - len(USER_AT)
        rewritten = stored_parts(lake, batch_id)
        manifest = json.loads(lake.objects[manifest_key(batch_id)])
        fresh = fresh_export_without_user(stores, batch_id)
        assert rewritten == stored_parts(fresh, batch_id), crash_at
        assert manifest["metrics"] == json.loads(fresh.objects[manifest_key(batch_id)])["metrics"], crash_at


def test_a_rewrite_stopped_at_its_time_limit_goes_on_where_it_stopped_and_ends_as_one_run() -> None:
    """A batch too large for one invocation: each call stops after a range once `stop_at` has passed (here
    at once), the next goes on from the following range, and the end is what a fresh export writes."""
    stores, lake = MemoryStores(), MemoryLake()
    service, batch_id = exported_batch(stores, lake)
    calls = [service.rewriter.rewrite(batch_id, USER, "e-1", stop_at=0)]
    while not calls[-1].done:
        calls.append(service.rewriter.rewrite(batch_id, USER, "e-1", stop_at=0))

    assert len(calls) == 3  # 20 sessions in ranges of 8: one range a call
    assert [call.sessions_removed for call in calls] == [0, 0, len(USER_AT)]  # counted once, at the end
    assert not [key for key in lake.objects if key.endswith("rewrite-progress.json")]  # the progress goes at the end
    assert stores.batches.items[batch_id].dataset.session_count == 20 - len(USER_AT)
    fresh = fresh_export_without_user(stores, batch_id)
    assert stored_parts(lake, batch_id) == stored_parts(fresh, batch_id)
    ours, theirs = json.loads(lake.objects[manifest_key(batch_id)]), json.loads(fresh.objects[manifest_key(batch_id)])
    assert (ours["parts"], ours["metrics"]) == (theirs["parts"], theirs["metrics"])


def test_another_erasures_progress_is_not_taken_for_ours() -> None:
    """Progress left by an erasure that died holding the dataset: ours rewrites every range itself."""
    stores, lake = MemoryStores(), MemoryLake()
    service, batch_id = exported_batch(stores, lake)
    lake.objects[f"exports/batch_id={batch_id}/rewrite-progress.json"] = b'{"erasure_id": "e-dead", "ranges": 2}'

    assert service.rewriter.rewrite(batch_id, USER, "e-1").sessions_removed == len(USER_AT)
    assert stored_parts(lake, batch_id) == stored_parts(fresh_export_without_user(stores, batch_id), batch_id)


def test_a_dataset_whose_export_failed_loses_what_that_export_left() -> None:
    """A failed export's parts hold the user too (a new export writes them again from DynamoDB)."""
    stores, lake = MemoryStores(), MemoryLake()
    service, batch_id = exported_batch(stores, lake)
    record = stores.batches.items[batch_id]
    stores.batches.items[batch_id] = replace(record, dataset=replace(record.dataset, status="failed"))
    other = [key for key in lake.objects if batch_id not in key]

    rewritten = service.rewriter.rewrite(batch_id, USER, "e-1")

    assert rewritten.sessions_removed == 0
    assert rewritten.replaced_keys  # what was removed
    assert sorted(lake.objects) == sorted(other)


def test_while_a_large_batch_is_rewritten_no_session_is_in_two_parts() -> None:
    """Pieces whose lines moved up go with their range, not at the end: a reader of the folder (Athena
    reads it whole) never counts a session twice between two invocations, nor after a failed erasure."""
    stores, lake = MemoryStores(), MemoryLake()
    service, batch_id = exported_batch(stores, lake)
    assert not service.rewriter.rewrite(batch_id, USER, "e-1", stop_at=0).done  # the first range only
    numbers = [
        json.loads(line)["session_number"]
        for data in stored_parts(lake, batch_id).values()
        for line in gzip.decompress(data).splitlines()
    ]
    assert len(numbers) == len(set(numbers))
    assert set(numbers) == {n + 1 for n in range(20) if n not in USER_AT[:2]}  # range 0 rewritten, the rest not yet


def test_a_dataset_the_buckets_retention_expired_is_left_with_nothing_and_the_erasure_goes_on() -> None:
    """Retention's lifecycle rule expired the manifest and parts (the report page is not under it): what is
    left of the batch goes, nothing fails, and the hold is let go."""
    stores, lake = MemoryStores(), MemoryLake()
    service, batch_id = exported_batch(stores, lake)
    for key in [key for key in lake.objects if key.startswith(("sessions/", "judgments/"))]:
        del lake.objects[key]

    rewritten = service.rewriter.rewrite(batch_id, USER, "e-1")

    assert (rewritten.sessions_removed, rewritten.done) == (0, True)
    assert not [key for key in lake.objects if batch_id in key]
    assert stores.batches.hold_rewrite(batch_id, "e-2", now_ms(), 0)  # let go


def test_no_export_takes_a_failed_batch_while_an_erasure_removes_what_it_left() -> None:
    stores, lake = MemoryStores(), MemoryLake()
    service, batch_id = exported_batch(stores, lake)
    record = stores.batches.items[batch_id]
    stores.batches.items[batch_id] = replace(record, dataset=replace(record.dataset, status="failed"))
    assert stores.batches.hold_rewrite(batch_id, "e-1", now_ms(), 0)

    with pytest.raises(ExportNotReady, match="an erasure holds"):
        service.exporter.plan("release-p", "export-2")
    stores.batches.release_rewrite(batch_id, "e-1")
    assert service.exporter.plan("release-p", "export-2").job is not None


def test_the_rewrite_accounts_the_removed_sessions_only_when_the_account_step_did_not() -> None:
    for account_removed, session_count in ((False, 20), (True, 20 - len(USER_AT))):
        stores, lake = MemoryStores(), MemoryLake()
        service, batch_id = exported_batch(stores, lake)
        service.rewriter.rewrite(batch_id, USER, "e-1", account_removed=account_removed)
        assert stores.batches.items[batch_id].session_count == session_count


def test_the_account_step_waits_for_a_batch_being_settled() -> None:
    stores, lake = MemoryStores(), MemoryLake()
    service, batch_id = exported_batch(stores, lake)
    stores.batches.items[batch_id] = replace(stores.batches.items[batch_id], session_count=None)
    with pytest.raises(ExportNotReady, match="being settled"):
        service.erasure_steps.account("e-1", batch_id, live=True)
