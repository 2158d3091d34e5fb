"""An erasure's rewrite of an exported dataset (contract 17), over the template's tables and a lake folder.

The proof: the dataset rewritten without one user equals, byte for byte, a fresh export of the batch whose
DynamoDB holds that user's sessions as erased tombstones (an independent recomputation: the export reads
DynamoDB, the rewrite reads only the parts); every other user's line is the one exported before; nothing
the lake holds, gunzipped, names the user, their sessions, events or queries; a second run changes nothing.
"""

from __future__ import annotations

import gzip
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mypy_boto3_dynamodb.client import DynamoDBClient

from clickstream.domain.datasets.layout import dataset_folder, judgments_key, manifest_key
from clickstream.errors import ExportNotReady
from clickstream.models import NewEvent
from clickstream.records import Place
from clickstream.service import Clickstream
from clickstream.settings import Settings
from clickstream.storage import Storage
from clickstream.storage.batch_records import batch_key
from tests.support import now_ms
from tests.support.datasets import check_parts, dataset_sessions, manifest, planned_ranges, run_export
from tests.support.domain import hand_out_number, new_session

USER = "alice-7f3a"  # the user erased; every trace of them below carries "alice"
USER_AT = (0, 3, 7, 8, 9, 10)  # the registrations that are theirs: some ranges hold none, one only theirs
OTHERS = ("bob", "carol", None)
DAY_MS = 86_400_000


@pytest.fixture(params=[1, 8], ids=["1-shard", "8-shards"])
def shards(request: pytest.FixtureRequest) -> int:
    shard_count: int = request.param
    return shard_count


def service_over(
    storage: Storage, settings: Settings, lake: Path, shards: int, clock: Callable[[], int] = now_ms, **changes: Any
) -> Clickstream:
    """The service over the template's tables, exporting into `lake` in ranges of 4 numbers."""
    configured = settings.model_copy(
        update={"batch_shards": shards, "export_range_sessions": 4, "lake_dir": str(lake), **changes}
    )
    return Clickstream(storage, configured, clock=clock)


@pytest.fixture
def exporting(storage: Storage, settings: Settings, tmp_path: Path, shards: int) -> Clickstream:
    return service_over(storage, settings, tmp_path / "lake", shards)


def lake_of(service: Clickstream) -> Path:
    return Path(service.settings.lake_dir)


def fill_batch(service: Clickstream, storage: Storage, sessions: int = 19) -> str:
    """Sessions of three users and some without one, with clicks, experiments (one only the erased user's) and
    searches without results; a number nobody wrote in the middle."""
    batch_id = ""
    for n in range(sessions):
        if n == 6:
            hand_out_number(storage, service.settings.batch_shards)  # a gap: tombstoned by the release
        user = USER if n in USER_AT else OTHERS[n % 3]
        mine = user == USER
        session_id = f"alice-sess-{n:02d}" if mine else f"other-{n:02d}"
        experiment = {"id": "exp-alice" if mine and n % 8 == 0 else "exp-shared", "variant": ("control", "b")[n % 2]}
        body = new_session(
            session_id,
            user_id=user,
            search_query={"text": f"alice secret query {n}"} if mine else {"text": "shoes", "n": n % 3},
            search_results=[] if n % 5 == 0 else [{"object_id": "shoe-17"}, {"object_id": "shoe-3"}],
            experiment=experiment if n % 3 != 2 else None,
        )
        batch_id = service.register(body).batch_id
        clicks = [
            NewEvent(event_id=f"{session_id}-ev{k}", object_id=("shoe-3", "shoe-17")[k % 2], created_at=now_ms() + k)
            for k in range(n % 4 + (n % 7 == 0))
        ]
        if clicks:
            service.add_events(session_id, clicks)
    return batch_id


def exported(service: Clickstream, storage: Storage, release_id: str = "release-r") -> str:
    batch_id = fill_batch(service, storage)
    service.release(release_id)
    assert run_export(service, lake_of(service), release_id) is not None
    return batch_id


def part_lines(lake: Path, batch_id: str) -> list[bytes]:
    """Every line of the dataset's parts as stored, in part order (the manifest's)."""
    folder = lake / dataset_folder(batch_id)
    lines = []
    for part in manifest(lake, batch_id)["parts"]:
        lines += gzip.decompress((folder / part["key"]).read_bytes()).splitlines(keepends=True)
    return lines


def every_file(lake: Path) -> dict[str, bytes]:
    return {str(path.relative_to(lake)): path.read_bytes() for path in sorted(lake.rglob("*")) if path.is_file()}


def traces(lake: Path) -> list[str]:
    """The files of the lake that, gunzipped, hold anything of the erased user (id, sessions, events, queries)."""
    found = []
    for name, data in every_file(lake).items():
        text = gzip.decompress(data) if name.endswith(".gz") else data
        if any(word in text for word in (USER.encode(), b"alice-sess", b"alice secret query", b"exp-alice")):
            found.append(name)
    return found


def exported_again_without_user(
    service: Clickstream, storage: Storage, storage_client: DynamoDBClient, lines: list[bytes], lake: Path
) -> None:
    """The independent recomputation: the user's slots (`lines`: the dataset's before) made erased tombstones
    in DynamoDB and the batch exported afresh into another lake (the record set back so an export takes it)."""
    shards = service.settings.batch_shards
    batch_id = json.loads(lines[0])["batch_id"]
    for line in lines:
        session = json.loads(line)
        if session["user_id"] == USER:
            storage.sessions.erase(Place(batch_id, session["session_number"], shards), "e-fresh")
    storage_client.update_item(
        TableName=service.settings.batches_table,
        Key=batch_key(batch_id),
        UpdateExpression="SET dataset_status = :failed",
        ExpressionAttributeValues={":failed": {"S": "failed"}},
    )
    fresh = service_over(storage, service.settings, lake, shards)
    record = storage.batches.get(batch_id)
    assert record is not None
    assert run_export(fresh, lake, record.release_id, "export-fresh") is not None


def test_the_rewritten_dataset_is_a_fresh_export_of_the_remaining_sessions(
    exporting: Clickstream, storage: Storage, storage_client: DynamoDBClient, tmp_path: Path
) -> None:
    batch_id = exported(exporting, storage)
    lake = lake_of(exporting)
    before = part_lines(lake, batch_id)
    assert traces(lake)  # the user is in the dataset, its lists, judgments and report page
    rewritten = exporting.rewriter.rewrite(batch_id, exporting.user_ids.stored(USER), "e-1")

    users = [json.loads(line)["user_id"] for line in before]
    assert (rewritten.sessions_removed, users.count(USER)) == (6, 6)
    assert rewritten.events_removed == sum(len(json.loads(line)["events"]) for line in before if USER.encode() in line)
    assert [line for line in before if json.loads(line)["user_id"] != USER] == part_lines(lake, batch_id)
    assert all(session["user_id"] != USER for session in dataset_sessions(lake, batch_id))  # DuckDB's reading
    assert traces(lake) == []
    check_parts(lake, batch_id)
    folder = lake / dataset_folder(batch_id)
    assert {path.name for path in folder.glob("part-*")} == {part["key"] for part in manifest(lake, batch_id)["parts"]}
    assert manifest_key(batch_id) in rewritten.replaced_keys
    assert judgments_key(batch_id) in rewritten.replaced_keys

    fresh_lake = tmp_path / "fresh"
    exported_again_without_user(exporting, storage, storage_client, before, fresh_lake)
    ours, theirs = manifest(lake, batch_id), manifest(fresh_lake, batch_id)
    for member in ("session_count", "event_count", "erased_sessions", "parts", "metrics", "experiments", "click_model"):
        assert ours[member] == theirs[member], member
    assert ours["erased_sessions"] == 6
    assert {**ours["judgments"], "uri": ""} == {**theirs["judgments"], "uri": ""}
    assert (lake / judgments_key(batch_id)).read_bytes() == (fresh_lake / judgments_key(batch_id)).read_bytes()
    for part in ours["parts"]:
        key = f"{dataset_folder(batch_id)}/{part['key']}"
        assert (lake / key).read_bytes() == (fresh_lake / key).read_bytes(), key
    assert "exp-alice" not in {entry["id"] for entry in ours["experiments"]}


def test_the_batch_record_says_what_the_dataset_holds_now(exporting: Clickstream, storage: Storage) -> None:
    batch_id = exported(exporting, storage)
    assert exporting.batch(batch_id).experiments is not None
    exporting.rewriter.rewrite(batch_id, exporting.user_ids.stored(USER), "e-1")
    view = exporting.batch(batch_id)
    document = manifest(lake_of(exporting), batch_id)
    assert view.dataset is not None
    assert (view.dataset.status, view.dataset.session_count) == ("exported", document["session_count"])
    assert (view.dataset.event_count, view.dataset.parts) == (document["event_count"], len(document["parts"]))
    record = storage.batches.get(batch_id)
    assert record is not None
    assert json.loads(record.dataset.metrics or "") == document["metrics"]
    assert [entry.id for entry in view.experiments or []] == ["exp-shared"]
    # The items are still in DynamoDB: the erasure's account step recounts the batch (not the rewrite).
    assert (view.session_count, view.erased_sessions) == (19, 0)


def test_a_rewrite_run_again_changes_nothing(exporting: Clickstream, storage: Storage) -> None:
    batch_id = exported(exporting, storage)
    first = exporting.rewriter.rewrite(batch_id, exporting.user_ids.stored(USER), "e-1")
    files = every_file(lake_of(exporting))
    record = storage.batches.get(batch_id)
    again = exporting.rewriter.rewrite(batch_id, exporting.user_ids.stored(USER), "e-1")
    assert (again.sessions_removed, again.events_removed, again.done) == (0, 0, True)
    assert first.replaced_keys
    assert again.replaced_keys == []  # recorded already: it stops at once, writing nothing
    assert every_file(lake_of(exporting)) == files
    assert storage.batches.get(batch_id) == record
    assert storage.batches.hold_rewrite(batch_id, "e-2", now_ms(), now_ms() - 60_000)  # the hold was let go


def test_parts_without_the_user_are_not_uploaded_again(exporting: Clickstream, storage: Storage) -> None:
    batch_id = exported(exporting, storage)
    lake = lake_of(exporting)
    folder = lake / dataset_folder(batch_id)
    stamps = {path.name: path.stat().st_mtime_ns for path in folder.glob("part-*")}
    holding = {
        part["key"]
        for part in manifest(lake, batch_id)["parts"]
        if USER.encode() in gzip.decompress((folder / part["key"]).read_bytes())
    }
    exporting.rewriter.rewrite(batch_id, exporting.user_ids.stored(USER), "e-1")
    removed = {name for name in stamps if not (folder / name).exists()}
    changed = {
        name for name, stamp in stamps.items() if name not in removed and (folder / name).stat().st_mtime_ns != stamp
    }
    assert changed | removed == holding
    assert removed  # one range held only the user's sessions: its part is gone, not left empty
    assert 0 < len(holding) < len(stamps)


def test_a_dataset_being_exported_is_rewritten_only_once_it_exists(exporting: Clickstream, storage: Storage) -> None:
    fill_batch(exporting, storage)
    release = exporting.release("release-x")
    assert exporting.exporter.plan("release-x", "export-a").job is not None  # exporting now
    with pytest.raises(ExportNotReady):
        exporting.rewriter.rewrite(release.batch_id, exporting.user_ids.stored(USER), "e-1")


def test_a_batch_never_exported_has_nothing_to_rewrite(exporting: Clickstream, storage: Storage) -> None:
    fill_batch(exporting, storage)
    release = exporting.release("release-n")
    rewritten = exporting.rewriter.rewrite(release.batch_id, exporting.user_ids.stored(USER), "e-1")
    assert (rewritten.sessions_removed, rewritten.events_removed, rewritten.replaced_keys) == (0, 0, [])
    assert not lake_of(exporting).exists() or traces(lake_of(exporting)) == []


def test_two_erasures_never_rewrite_one_dataset_at_once(exporting: Clickstream, storage: Storage) -> None:
    batch_id = exported(exporting, storage)
    assert storage.batches.hold_rewrite(batch_id, "e-other", now_ms(), now_ms() - 60_000)
    with pytest.raises(ExportNotReady, match="another erasure"):
        exporting.rewriter.rewrite(batch_id, exporting.user_ids.stored(USER), "e-1")
    stale = service_over(storage, exporting.settings, lake_of(exporting), 1, clock=lambda: now_ms() + DAY_MS)
    assert stale.rewriter.rewrite(batch_id, exporting.user_ids.stored(USER), "e-1").sessions_removed == 6


def delete_items(client: DynamoDBClient, tables: dict[str, str]) -> int:
    """What DynamoDB's TTL does once retention expires the batch: every session, claim, event and task gone."""
    deleted = 0
    for logical in ("SessionsTable", "SessionIdsTable", "EventsTable", "ImprovementTasksTable"):
        name = tables[logical]
        keys = [key["AttributeName"] for key in client.describe_table(TableName=name)["Table"]["KeySchema"]]
        for item in client.scan(TableName=name)["Items"]:
            client.delete_item(TableName=name, Key={key: item[key] for key in keys})
            deleted += 1
    return deleted


def test_a_dataset_whose_items_expired_is_rewritten_from_its_parts_and_accounted(
    storage: Storage, settings: Settings, storage_client: DynamoDBClient, tables: dict[str, str], tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    exporting = service_over(storage, settings, lake, 8, retention_days=1)
    batch_id = exported(exporting, storage)
    before = part_lines(lake, batch_id)
    assert delete_items(storage_client, tables) > 40
    later = service_over(storage, settings, lake, 8, retention_days=1, clock=lambda: now_ms() + 2 * DAY_MS)
    rewritten = later.rewriter.rewrite(batch_id, later.user_ids.stored(USER), "e-1")
    assert rewritten.sessions_removed == 6
    assert [line for line in before if json.loads(line)["user_id"] != USER] == part_lines(lake, batch_id)
    assert traces(lake) == []
    view = later.batch(batch_id)
    assert (view.session_count, view.erased_sessions) == (13, 6)  # accounted once: no walk can count them now
    assert later.rewriter.rewrite(batch_id, later.user_ids.stored(USER), "e-1").sessions_removed == 0
    assert (later.batch(batch_id).session_count, later.batch(batch_id).erased_sessions) == (13, 6)
    shutil.rmtree(lake / "exports")  # the work files expire after 30 days (template lifecycle): not needed
    other = later.rewriter.rewrite(batch_id, "bob", "e-2")
    assert other.sessions_removed == len([line for line in before if json.loads(line)["user_id"] == "bob"])
    assert (later.batch(batch_id).session_count, later.batch(batch_id).erased_sessions) == (
        13 - other.sessions_removed,
        6 + other.sessions_removed,
    )
    check_parts(lake, batch_id)


def test_an_erasure_beside_an_export_never_fails_its_finish_check(exporting: Clickstream, storage: Storage) -> None:
    batch_id = fill_batch(exporting, storage)
    exporting.release("release-e")
    claim = storage.claims.get("alice-sess-03")
    assert claim is not None
    assert claim.place is not None
    plan = exporting.exporter.plan("release-e", "export-e")
    assert plan.job is not None
    storage.sessions.erase(claim.place, "e-beside")  # after settle counted it, before the ranges read it
    time.sleep(max(0.0, plan.job.read_after / 1000 - time.time()))
    for number_range in planned_ranges(lake_of(exporting), plan):
        exporting.exporter.write_range(plan.job, number_range)
    exporting.exporter.finish(plan.job, plan.ranges, exporting.exporter.judge(plan.job, plan.ranges))
    document = manifest(lake_of(exporting), batch_id)
    assert (document["session_count"], document["erased_sessions"]) == (18, 1)
    assert "alice-sess-03" not in {session["session_id"] for session in dataset_sessions(lake_of(exporting), batch_id)}


def test_settle_counts_the_sessions_erased_before_the_release(exporting: Clickstream, storage: Storage) -> None:
    batch_id = fill_batch(exporting, storage)
    for session_id in ("alice-sess-00", "alice-sess-08"):
        claim = storage.claims.get(session_id)
        assert claim is not None
        assert claim.place is not None
        storage.sessions.erase(claim.place, "e-early")
    release = exporting.release("release-s")
    assert release.session_count == 17
    view = exporting.batch(batch_id)
    assert (view.session_count, view.erased_sessions) == (17, 2)
    [listed] = [batch for batch in exporting.list_batches(5, None).batches if batch.batch_id == batch_id]
    assert listed.erased_sessions == 2
    assert run_export(exporting, lake_of(exporting), "release-s") is not None
    assert manifest(lake_of(exporting), batch_id)["erased_sessions"] == 2
