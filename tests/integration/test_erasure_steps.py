"""The erasure's steps (contract 17) through the real ErasureFunction, as local/erasures.py runs the erasure
state machine: a user with sessions in an exported batch, a released batch not exported and the collecting
batch is erased from every table, the datasets rewritten, the release counts kept right; other users'
items stay exactly as they were. A crash at any step is completed by running the erasure again, with the
same end state and the same counts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from clickstream.errors import ExportNotReady, SessionNotFound
from clickstream.records import Place
from clickstream.service import Clickstream
from clickstream.storage import Storage
from local.apigateway import HttpResult
from local.erasures import LocalErasures
from tests.conftest import local_functions
from tests.support import new_session_body, now_ms
from tests.support.datasets import dataset_sessions, run_export
from tests.support.domain import all_sessions, click, new_session
from tests.support.erasure import InProcessSteps, request_erasure, session_items
from tests.support.late import FakeClock

USER = "user-erased"
OTHER = "user-kept"


@dataclass
class World:
    """Sessions of the erased user and of others in three batches: exported, released, collecting."""

    service: Clickstream
    lake_dir: Path
    batches: dict[str, str] = field(default_factory=dict)  # exported | released | collecting -> batch id
    user_sessions: dict[str, Place] = field(default_factory=dict)
    other_sessions: set[str] = field(default_factory=set)
    user_events: int = 0

    def add(self, session_id: str, user_id: str | None, clicks: int) -> None:
        registration = self.service.register(new_session(session_id, user_id=user_id))
        if clicks:
            self.service.add_events(session_id, [click(f"c{n}") for n in range(clicks)])
        if user_id == USER:
            place = Place(registration.batch_id, registration.session_number, self._shards(registration.batch_id))
            self.user_sessions[session_id] = place
            self.user_events += clicks
        else:
            self.other_sessions.add(session_id)

    def _shards(self, batch_id: str) -> int:
        pointer = self.service.storage.pointer.get()
        record = self.service.storage.batches.get(batch_id)
        return record.shards if record is not None else pointer.shards if pointer is not None else 1


@pytest.fixture
def world(service: Clickstream) -> World:
    world = World(service, Path(service.settings.lake_dir))
    for n in range(3):
        world.add(f"exp-user-{n}", USER, clicks=n + 1)
        world.add(f"exp-other-{n}", OTHER if n else None, clicks=2)
    world.batches["exported"] = service.release("release-exported").batch_id
    assert run_export(service, world.lake_dir, "release-exported") is not None
    world.add("rel-user-0", USER, clicks=2)
    world.add("rel-other-0", OTHER, clicks=1)
    world.add("rel-other-1", None, clicks=0)
    service.use_for_improvement("rel-user-0")  # a task of the user's
    service.use_for_improvement("rel-other-0")
    world.batches["released"] = service.release("release-released").batch_id
    world.add("col-user-0", USER, clicks=1)
    world.add("col-other-0", OTHER, clicks=3)
    world.batches["collecting"] = world.user_sessions["col-user-0"].batch_id
    return world


def erasures() -> LocalErasures:
    return LocalErasures(local_functions())


def check_erased(
    world: World, erasure_id: str, others_before: dict[str, list[dict[str, Any]]], tables: dict[str, str]
) -> None:
    """The end state of a done erasure, however it got there."""
    service, storage = world.service, world.service.storage
    erasure = storage.erasures.get(erasure_id)
    assert erasure is not None
    assert erasure.status == "done"
    assert erasure.stored_user_id is None
    counts = (erasure.sessions, erasure.events, erasure.tasks, erasure.datasets_rewritten)
    assert counts == (len(world.user_sessions), world.user_events, 1, 1)
    assert session_items(tables, set(world.user_sessions)) == {table: [] for table in others_before} | {
        "SessionsTable": []
    }
    for session_id, place in world.user_sessions.items():
        slot = storage.sessions.get_slot(place)
        assert slot is not None
        assert (slot.session_id, slot.erased_by) == (None, erasure_id)  # a numbered gap
        with pytest.raises(SessionNotFound):
            service.session_json(session_id, 10)
    assert session_items(tables, world.other_sessions) == others_before  # item for item
    assert storage.erasures.active_user_keys() == frozenset()
    assert storage.user_datasets.batches_of(erasure.user_key) == []
    assert not list((world.lake_dir / "erasures").rglob("*.gz"))  # the work file is gone


def check_counts(world: World) -> None:
    storage = world.service.storage
    for kind, user_count in (("exported", 3), ("released", 1)):
        record = storage.batches.get(world.batches[kind])
        assert record is not None
        others = len([s for s in world.other_sessions if s.startswith(kind[:3])])
        assert (record.session_count, record.erased_sessions) == (others, user_count), kind
    exported = dataset_sessions(world.lake_dir, world.batches["exported"])
    assert sorted(line["session_id"] for line in exported) == sorted(
        s for s in world.other_sessions if s.startswith("exp")
    )
    assert all(line["user_id"] != USER for line in exported)


def test_a_user_is_erased_from_every_table_and_dataset_and_the_release_counts_follow(
    world: World, tables: dict[str, str]
) -> None:
    service = world.service
    exported_before = {line["session_id"]: line for line in dataset_sessions(world.lake_dir, world.batches["exported"])}
    others_before = session_items(tables, world.other_sessions)
    paged_before = {kind: all_sessions(service, batch_id, 2) for kind, batch_id in world.batches.items()}
    erasure = request_erasure(service, USER)
    finished = erasures().erase(erasure.erasure_id)
    assert finished is not None
    assert finished["status"] == "done"
    check_erased(world, erasure.erasure_id, others_before, tables)
    check_counts(world)
    for kind, before in paged_before.items():  # paging skips the gaps, the others' sessions as they were
        expected = [session for session in before if session["session_id"] not in world.user_sessions]
        assert all_sessions(service, world.batches[kind], 2) == expected, kind
    kept = {line["session_id"]: line for line in dataset_sessions(world.lake_dir, world.batches["exported"])}
    assert kept == {sid: line for sid, line in exported_before.items() if sid not in world.user_sessions}
    # The collecting batch, released now: settle counts the erased tombstone beside the session that remains.
    collecting = service.release("release-collecting")
    record = service.storage.batches.get(collecting.batch_id)
    assert record is not None
    assert (record.session_count, record.erased_sessions) == (1, 1)


def test_a_registration_of_the_user_is_refused_while_the_erasure_runs_and_kept_after_it(world: World) -> None:
    service = world.service
    functions = local_functions()
    erasure = request_erasure(service, USER)
    run = erasures()
    run._step("begin", erasure.erasure_id)
    refused = functions.call("POST /session", body=new_session_body("during-user-0", user_id=USER))
    assert refused.status == 409
    assert functions.call("POST /session", body=new_session_body("during-other-0", user_id=OTHER)).status == 200
    assert run.run(erasure.erasure_id) is not None
    again = service.register(new_session("after-user-0", user_id=USER))
    assert json.loads(service.session_json("after-user-0", 10))["user_id"] == USER
    assert service.storage.claims.user_sessions(erasure.user_key, 10) == (["after-user-0"], None)
    assert again.batch_id


def test_an_event_for_a_found_session_after_unclaim_is_refused_with_404(world: World, invoke_http: Any) -> None:
    service = world.service
    erasure = request_erasure(service, USER)
    run = erasures()
    run._step("begin", erasure.erasure_id)
    run._step("find", erasure.erasure_id)
    run._step("unclaim", erasure.erasure_id)
    functions = local_functions()
    body = {"session_id": "col-user-0", "events": [{"event_id": "late", "object_id": "shoe-3"}]}
    refused: HttpResult = functions.call("POST /session/events", body=body)
    assert refused.status == 404
    assert functions.call("GET /session", query={"session_id": "col-user-0"}).status == 404
    assert functions.call("POST /session/events", body={**body, "session_id": "col-other-0"}).status == 200


class Crash(Exception):
    """The erasure's function died here."""


CRASH_POINTS = (
    "before-find",
    "half-unclaimed",
    "before-purge",
    "half-purged",
    "after-account",
    "after-rewrite",
    "before-finish",
    "before-close",
)


def crash_at(point: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the erasure's function die at `point` (once)."""
    from clickstream.domain.erasure.steps import ErasureSteps
    from clickstream.storage.claims import Claims
    from clickstream.storage.erasures import Erasures
    from clickstream.storage.sessions import SessionSlots

    def die_on(cls: Any, name: str, call: int = 1) -> None:
        original = getattr(cls, name)
        calls = [0]

        def dying(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] == call:
                raise Crash(point)
            return original(*args, **kwargs)

        monkeypatch.setattr(cls, name, dying)

    targets: dict[str, tuple[Any, str, int]] = {
        "before-find": (ErasureSteps, "find", 1),
        "half-unclaimed": (Claims, "delete", 3),
        "before-purge": (ErasureSteps, "purge", 1),
        "half-purged": (SessionSlots, "erase", 2),
        "after-account": (ErasureSteps, "rewrite", 1),
        "after-rewrite": (ErasureSteps, "versions", 1),
        "before-finish": (ErasureSteps, "finish", 1),
        "before-close": (Erasures, "close", 1),
    }
    die_on(*targets[point])


@pytest.mark.parametrize("crash", CRASH_POINTS)
def test_an_erasure_stopped_at_any_step_is_completed_by_running_it_again(
    world: World, tables: dict[str, str], crash: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    others_before = session_items(tables, world.other_sessions)
    erasure = request_erasure(world.service, USER)
    with monkeypatch.context() as patch:
        crash_at(crash, patch)
        with pytest.raises(Crash):
            erasures().run(erasure.erasure_id)
    stopped = world.service.storage.erasures.get(erasure.erasure_id)
    assert stopped is not None
    assert stopped.status == "running"
    assert erasures().run(erasure.erasure_id) is not None  # the whole erasure again, as a redrive does
    check_erased(world, erasure.erasure_id, others_before, tables)
    check_counts(world)
    assert erasures().run(erasure.erasure_id) is None  # closed: a third start stops at Begin


def test_an_export_that_outlasts_the_deadline_fails_the_erasure_before_the_timeout_would(
    world: World, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step Functions' timeout would stop the machine with no Failed step, the user's registrations refused
    for good: the Rewrite step gives up an hour before ERASURE_DEADLINE_HOURS instead, and Failed runs."""
    from clickstream.domain.datasets.rewrite import DatasetRewriter

    clock = FakeClock(now_ms())
    service = Clickstream(storage, world.service.settings, clock=clock)
    monkeypatch.setattr(DatasetRewriter, "rewrite", lambda *_: (_ for _ in ()).throw(ExportNotReady("exporting")))
    erasure = request_erasure(service, USER)
    steps = InProcessSteps(service)
    with pytest.raises(ExportNotReady):  # retried by the machine, hourly
        LocalErasures(steps, export_retries=0).run(erasure.erasure_id)
    clock.advance((service.settings.erasure_deadline_hours - 1) * 3_600_000)
    assert LocalErasures(steps, export_retries=0).erase(erasure.erasure_id) == {
        "erasure_id": erasure.erasure_id,
        "status": "failed",
        "sessions": len(world.user_sessions),
        "events": world.user_events,
        "tasks": 1,
        "datasets_rewritten": 0,
    }
    failed = storage.erasures.get(erasure.erasure_id)
    assert failed is not None
    assert failed.error == "ErasureDeadlinePassed"
    assert storage.erasures.active_user_keys() == frozenset()


def test_the_next_erasure_of_the_user_finishes_what_a_failed_one_left(
    world: World, tables: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after Unclaim leaves sessions the index no longer finds: the failed erasure leaves its list
    (under the user's hash), and the user's next erasure merges it, erases them, and deletes it."""
    from clickstream.domain.erasure.purge import Purge

    others_before = session_items(tables, world.other_sessions)
    first = request_erasure(world.service, USER)
    with monkeypatch.context() as patch:
        patch.setattr(Purge, "delete", lambda *_: (_ for _ in ()).throw(ValueError("broken")))
        failed = erasures().erase(first.erasure_id)
    assert failed is not None
    assert failed["status"] == "failed"
    assert world.service.storage.claims.user_sessions(first.user_key, 10) == ([], None)  # unclaimed, not purged
    assert session_items(tables, set(world.user_sessions))["EventsTable"]
    left = list((world.lake_dir / "erasures" / f"user_key={first.user_key}").iterdir())
    assert [path.name for path in left] == [f"{first.erasure_id}.json.gz"]
    second = request_erasure(world.service, USER)
    assert second.erasure_id != first.erasure_id
    assert erasures().erase(second.erasure_id) is not None
    check_erased(world, second.erasure_id, others_before, tables)
    check_counts(world)
