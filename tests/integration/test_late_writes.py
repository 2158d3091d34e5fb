"""Nothing acknowledged is missing from a dataset (contract 13.5): a write for a session of a released batch
is in the batch's dataset, or refused with 409 once the export fenced the batch - also when the write races
the fence. The races are interleaved deterministically: a gate holds the write between its fence check and
its store while the export fences, and a fake clock stands for the time in between, with the deployed
settings (a container trusts a batch state it read for 10 s; the export reads 60 s after its fence)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clickstream.domain.datasets.export import ExportPlan
from clickstream.domain.datasets.layout import NumberRange
from clickstream.domain.datasets.parts import ExportJob
from clickstream.errors import BatchExported, ExportNotReady
from clickstream.service import Clickstream
from clickstream.settings import Settings
from clickstream.storage import Storage
from local.apigateway import HttpResult
from tests.support import now_ms, sample_event
from tests.support.datasets import dataset_sessions, manifest, planned_ranges, run_export
from tests.support.domain import click, new_session
from tests.support.late import FakeClock, Gate

CACHE_MS = 10_000
SETTLE_MS = 60_000
LONGEST_CALL_MS = 29_000  # the API functions' timeout in template.yaml (tests/unit/test_template.py)
REFUSED = "The session's batch is exported: it takes no more events"


@dataclass
class Deployed:
    service: Clickstream
    clock: FakeClock
    lake: Path

    def plan(self, release_id: str) -> tuple[ExportJob, ExportPlan]:
        plan = self.service.exporter.plan(release_id, "export-1")
        assert plan.job is not None
        return plan.job, plan

    def read_and_finish(self, job: ExportJob, plan: ExportPlan) -> dict[str, Any]:
        """The ranges, judge and finish, run when the machine's Wait state lets them (at `read_after`)."""
        self.clock.now = max(self.clock.now, job.read_after)
        for number_range in planned_ranges(self.lake, plan):
            self.service.exporter.write_range(job, number_range)
        judged = self.service.exporter.judge(job, plan.ranges)
        return self.service.exporter.finish(job, plan.ranges, judged)

    def exported(self, batch_id: str) -> dict[str, Any]:
        [session] = dataset_sessions(self.lake, batch_id)
        return session


@pytest.fixture
def deployed(storage: Storage, settings: Settings, tmp_path: Path) -> Deployed:
    clock = FakeClock(now_ms())
    configured = settings.model_copy(
        update={"batch_state_cache_ms": CACHE_MS, "write_settle_ms": SETTLE_MS, "lake_dir": str(tmp_path / "lake")}
    )
    return Deployed(Clickstream(storage, configured, clock=clock, sleep=clock.sleep), clock, tmp_path / "lake")


@pytest.fixture
def writer() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1, thread_name_prefix="late-write") as pool:
        yield pool


WRITES: dict[str, Callable[[Clickstream, str], Any]] = {
    "event": lambda service, session_id: service.add_events(session_id, [click("late")]),
    "irrelevant mark": lambda service, session_id: service.mark_irrelevant(session_id),
}
STORES = {"event": "events.put", "irrelevant mark": "sessions.set_irrelevant"}


def in_dataset(write: str, session: dict[str, Any]) -> bool:
    if write == "event":
        return [event["event_id"] for event in session["events"]] == ["late"]
    return bool(session["is_irrelevant"])


def hold_store(deployed: Deployed, write: str, monkeypatch: pytest.MonkeyPatch) -> Gate:
    gateway_name, method = STORES[write].split(".")
    gateway = getattr(deployed.service.storage, gateway_name)
    gate = Gate(getattr(gateway, method))
    monkeypatch.setattr(gateway, method, gate)
    return gate


def released_session(deployed: Deployed, session_id: str, release_id: str) -> str:
    deployed.service.register(new_session(session_id))
    return deployed.service.release(release_id).batch_id


@pytest.mark.parametrize("write", WRITES)
def test_a_write_that_passed_its_check_before_the_fence_is_stored_before_the_export_reads(
    deployed: Deployed, write: str, writer: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check -> fence -> store -> read: acknowledged, and in the dataset."""
    batch_id = released_session(deployed, "racer", "release-race")
    gate = hold_store(deployed, write, monkeypatch)
    pending: Future[Any] = writer.submit(WRITES[write], deployed.service, "racer")
    gate.wait_reached()  # checked: released, not fenced; stored nothing yet
    job, plan = deployed.plan("release-race")  # the export fences the batch now
    assert job.read_after >= job.events_until + CACHE_MS + LONGEST_CALL_MS
    with pytest.raises(ExportNotReady):  # no range is read before read_after
        deployed.service.exporter.write_range(job, NumberRange(0, 1, 1))
    deployed.clock.advance(LONGEST_CALL_MS)  # the call ends within its timeout: before read_after
    gate.release()
    pending.result(timeout=10)  # 200
    deployed.read_and_finish(job, plan)
    assert in_dataset(write, deployed.exported(batch_id))


@pytest.mark.parametrize("write", WRITES)
def test_a_write_checked_after_the_fence_is_refused(deployed: Deployed, write: str) -> None:
    """Fence -> check: 409, and nothing stored that the dataset misses."""
    batch_id = released_session(deployed, "racer", "release-fenced")
    job, plan = deployed.plan("release-fenced")
    with pytest.raises(BatchExported) as refused:
        WRITES[write](deployed.service, "racer")
    assert refused.value.message == REFUSED
    deployed.read_and_finish(job, plan)
    assert not in_dataset(write, deployed.exported(batch_id))


def test_a_container_that_cached_not_fenced_accepts_only_writes_the_export_still_reads(deployed: Deployed) -> None:
    """A stale cache: the container read "released, not fenced" before the fence and trusts it for 10 s. What
    it accepts in that time is stored before read_after; once the 10 s are over it reads the fence and refuses."""
    batch_id = released_session(deployed, "cached", "release-cached")
    deployed.service.add_events("cached", [click("before")])  # reads the batch: released, not fenced
    read_at = deployed.clock()
    deployed.clock.advance(1_000)
    job, plan = deployed.plan("release-cached")
    deployed.clock.now = read_at + CACHE_MS - 1
    deployed.service.add_events("cached", [click("stale")])  # accepted on the cached state
    assert deployed.clock() + LONGEST_CALL_MS < job.read_after  # so its call ends before the export reads
    deployed.clock.now = read_at + CACHE_MS
    with pytest.raises(BatchExported):
        deployed.service.add_events("cached", [click("refused")])
    deployed.read_and_finish(job, plan)
    assert [event["event_id"] for event in deployed.exported(batch_id)["events"]] == ["before", "stale"]


def test_a_fence_is_kept_by_every_later_export(deployed: Deployed) -> None:
    """A failed export's fence stays: a new export cannot reopen the batch to writes or move its cut."""
    released_session(deployed, "kept", "release-kept")
    first, _ = deployed.plan("release-kept")
    deployed.service.exporter.fail(first.batch_id, "export-1")
    deployed.clock.advance(5_000)
    again = deployed.service.exporter.plan("release-kept", "export-2").job
    assert again is not None
    assert (again.events_until, again.read_after) == (first.events_until, first.read_after)
    with pytest.raises(BatchExported):
        deployed.service.add_events("kept", [click("late")])


def test_late_writes_over_http_answer_409_and_scheduling_stays_open(
    service: Clickstream, invoke_http: Callable[[str, dict[str, Any]], HttpResult]
) -> None:
    """Tasks are not in datasets: use-for-improvement works on an exported batch."""
    service.register(new_session("http-late"))
    service.add_events("http-late", [click("c1")])
    service.release("release-http")
    run_export(service, Path(service.settings.lake_dir), "release-http")
    body = {"session_id": "http-late", "events": [{"event_id": "c2", "object_id": "o"}]}
    for route, event in (
        ("events", sample_event("add_events", body=body)),
        ("irrelevant", sample_event("mark_irrelevant", body={"session_id": "http-late"})),
    ):
        answer = invoke_http("CollectionFunction", event)
        assert (answer.status, answer.body) == (409, {"message": REFUSED}), route
    scheduled = invoke_http(
        "UseForImprovementFunction", sample_event("use_for_improvement", body={"session_id": "http-late"})
    )
    assert (scheduled.status, scheduled.body["status"]) == (200, "scheduled")
    session = invoke_http("CollectionFunction", sample_event("get_session", query={"session_id": "http-late"}))
    assert [event["event_id"] for event in session.body["events"]] == ["c1"]
    assert manifest(Path(service.settings.lake_dir), session.body["batch_id"])["event_count"] == 1
