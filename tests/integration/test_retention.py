"""Retention covers late writes (contract 13.6), with RETENTION_DAYS=1 and DynamoDB's TTL applied by hand
(`apply_ttl`: moto never expires items). Every item of a released batch expires, those written after its
export included, and a session_id registered again once its claim is gone never sees the old session's
events or task - whichever expired items TTL has deleted by then (it deletes in no order, up to days late)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from clickstream.domain.pseudonyms import user_key
from clickstream.errors import BatchExported
from clickstream.service import Clickstream
from clickstream.settings import Settings
from clickstream.storage import Storage
from local.dynamodb import LOCAL_REGION
from local.erasures import LocalErasures
from tests.support.datasets import dataset_sessions, run_export
from tests.support.domain import click, new_session
from tests.support.erasure import InProcessSteps, request_erasure, session_items
from tests.support.late import apply_ttl

DAY_S = 86_400
SESSION_TABLES = ("SessionIdsTable", "SessionsTable", "EventsTable", "ImprovementTasksTable")


@pytest.fixture
def retained(storage: Storage, settings: Settings) -> Clickstream:
    return Clickstream(storage, settings.model_copy(update={"retention_days": 1}))


def at_time(storage: Storage, now_s: int) -> None:
    """Storage compares `expires_at` with this time from now on (as if the days had passed)."""
    storage.dynamo.now_s = lambda: now_s


def expiries(tables: dict[str, str], table_id: str, batch_id: str | None = None) -> list[int | None]:
    """The expires_at of every item of a table (of one batch's slots, for the sessions table)."""
    client = boto3.client("dynamodb", region_name=LOCAL_REGION)
    items = client.scan(TableName=tables[table_id], ConsistentRead=True)["Items"]
    if batch_id is not None:
        items = [item for item in items if item["batch_id"]["S"].split("#")[0] == batch_id]
    return [int(item["expires_at"]["N"]) if "expires_at" in item else None for item in items]


@pytest.mark.parametrize("deleted", ["every expired item", "only the claim"])
def test_every_item_of_a_released_batch_expires_and_a_new_session_with_its_id_starts_empty(
    retained: Clickstream, storage: Storage, tables: dict[str, str], deleted: str
) -> None:
    old = retained.register(new_session("sess-r"))
    retained.add_events("sess-r", [click("c1")])
    retained.release("release-r")
    finished = run_export(retained, Path(retained.settings.lake_dir), "release-r", expire=True)
    assert finished is not None
    expires_at = finished["expires_at"]

    # After the export: a late click is refused (it would be in no dataset and never expire) ...
    with pytest.raises(BatchExported):
        retained.add_events("sess-r", [click("c2")])
    # ... and a task scheduled now carries the batch's expiry.
    decision = retained.use_for_improvement("sess-r")
    assert decision.task is not None
    assert decision.task.batch_id == old.batch_id
    for table_id in SESSION_TABLES:
        batch = old.batch_id if table_id == "SessionsTable" else None
        assert set(expiries(tables, table_id, batch)) == {expires_at}, table_id  # every item, none without

    # A day later, TTL deletes what expired (all of it, or the claim only: the rest is still stored).
    later_s = expires_at + 1
    client = boto3.client("dynamodb", region_name=LOCAL_REGION)
    table_ids = SESSION_TABLES if deleted == "every expired item" else ("SessionIdsTable",)
    assert apply_ttl(client, tables, later_s, table_ids) >= len(table_ids)
    at_time(storage, later_s)

    again = retained.register(new_session("sess-r"))
    assert again.batch_id != old.batch_id  # a new session, in the collecting batch
    assert json.loads(retained.session_json("sess-r", 1000))["events"] == []
    skipped = retained.use_for_improvement("sess-r")
    assert (skipped.status, skipped.reason) == ("skipped", "no_events")  # not the old batch's task
    assert retained.add_events("sess-r", [click("c1")]).accepted == 1  # the old c1 does not make it a duplicate
    scheduled = retained.use_for_improvement("sess-r")
    assert scheduled.task is not None
    assert (scheduled.task.batch_id, scheduled.task.session_number) == (again.batch_id, again.session_number)
    assert scheduled.task.requested_at > decision.task.requested_at
    task = retained.storage.tasks.get("sess-r")
    assert task is not None
    assert task.batch_id == again.batch_id
    # The new session's items have no expiry until its own batch is exported.
    assert expiries(tables, "SessionIdsTable") + expiries(tables, "ImprovementTasksTable") == [None, None]


# --- erasure after retention (contract 17) --------------------------------------------------------------------


def test_before_the_claims_expire_each_user_of_the_batch_is_recorded_with_its_dataset_once(
    retained: Clickstream, storage: Storage, tables: dict[str, str]
) -> None:
    for n in range(3):
        retained.register(new_session(f"sess-u{n}", user_id="user-a" if n < 2 else "user-b"))
    retained.register(new_session("sess-anonymous", user_id=None))  # no user id: nothing to record
    batch_id = retained.release("release-users").batch_id
    assert run_export(retained, Path(retained.settings.lake_dir), "release-users", expire=True) is not None
    client = boto3.client("dynamodb", region_name=LOCAL_REGION)
    items = client.scan(TableName=tables["UserDatasetsTable"], ConsistentRead=True)["Items"]
    keys = {user: user_key(retained.user_ids.stored(user)) for user in ("user-a", "user-b")}
    assert sorted((item["user_key"]["S"], item["batch_id"]["S"]) for item in items) == sorted(
        (key, batch_id) for key in keys.values()
    )
    assert storage.user_datasets.batches_of(keys["user-a"]) == [batch_id]


def test_a_user_whose_batch_items_expired_is_erased_from_the_dataset_that_keeps_them(
    retained: Clickstream, storage: Storage, tables: dict[str, str]
) -> None:
    """The claims (and the user index) are gone with the items; UserDatasetsTable still names the dataset,
    which is rewritten from its own parts, its counts moved to erased_sessions; then forgotten."""
    for n in range(4):
        retained.register(new_session(f"sess-e{n}", user_id="user-gone" if n % 2 else "user-kept"))
        retained.add_events(f"sess-e{n}", [click("c1")])
    batch_id = retained.release("release-expired").batch_id
    lake_dir = Path(retained.settings.lake_dir)
    finished = run_export(retained, lake_dir, "release-expired", expire=True)
    assert finished is not None
    later_s = finished["expires_at"] + 1
    client = boto3.client("dynamodb", region_name=LOCAL_REGION)
    assert apply_ttl(client, tables, later_s, SESSION_TABLES) > 0
    at_time(storage, later_s)
    later = Clickstream(storage, retained.settings, clock=lambda: later_s * 1000)
    erasure = request_erasure(later, "user-gone")
    assert LocalErasures(InProcessSteps(later)).run(erasure.erasure_id) is not None
    done = storage.erasures.get(erasure.erasure_id)
    assert done is not None
    assert (done.status, done.datasets_rewritten) == ("done", 1)
    lines = dataset_sessions(lake_dir, batch_id)
    assert sorted(line["session_id"] for line in lines) == ["sess-e0", "sess-e2"]
    record = storage.batches.get(batch_id)
    assert record is not None
    assert (record.session_count, record.erased_sessions) == (2, 2)
    assert storage.user_datasets.batches_of(erasure.user_key) == []
    assert storage.user_datasets.batches_of(user_key(retained.user_ids.stored("user-kept"))) == [batch_id]


def test_items_past_their_expiry_that_ttl_has_not_deleted_yet_are_erased_too(
    retained: Clickstream, storage: Storage, tables: dict[str, str]
) -> None:
    """DynamoDB's TTL deletes an expired item up to days after its expiry; every route treats it as gone
    meanwhile, but it is still stored. An erasure then deletes it itself."""
    for n in range(4):
        retained.register(new_session(f"sess-t{n}", user_id="user-late" if n % 2 else "user-stays"))
        retained.add_events(f"sess-t{n}", [click("c1")])
    batch_id = retained.release("release-ttl-lag").batch_id
    finished = run_export(retained, Path(retained.settings.lake_dir), "release-ttl-lag", expire=True)
    assert finished is not None
    later_s = finished["expires_at"] + 1  # expired, and no TTL run: every item is still stored
    at_time(storage, later_s)
    later = Clickstream(storage, retained.settings, clock=lambda: later_s * 1000)
    erasure = request_erasure(later, "user-late")
    assert LocalErasures(InProcessSteps(later)).run(erasure.erasure_id) is not None

    stored = session_items(tables, {"sess-t1", "sess-t3"})
    assert stored == {table: [] for table in stored}  # not one item of the user's sessions is left
    assert [len(items) for items in session_items(tables, {"sess-t0", "sess-t2"}).values()] == [2, 2, 2, 0]
    record = storage.batches.get(batch_id)
    assert record is not None
    assert (record.session_count, record.erased_sessions) == (2, 2)  # counted once, by the rewrite
    lines = dataset_sessions(Path(retained.settings.lake_dir), batch_id)
    assert sorted(line["session_id"] for line in lines) == ["sess-t0", "sess-t2"]
