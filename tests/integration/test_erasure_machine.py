"""The erasure state machine: the real statemachines/erasure.asl.json run by moto's Step Functions engine,
its Lambda tasks routed to the real ErasureFunction (each call checked against its policy in template.yaml),
the lake a versioned moto S3 bucket, datasets exported by the real export machine. Erased: the user's
sessions in an exported batch, a released one and the collecting one, from every table and from every
version of every object in the bucket; everyone else's data as it was; the batches' counts kept right."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from clickstream import runtime
from clickstream.errors import ExportNotReady, StorageUnavailable
from clickstream.models import NewEvent
from clickstream.records import Erasure
from clickstream.service import Clickstream
from clickstream.settings import Settings
from clickstream.storage import Storage
from local.template import load_template
from tests.conftest import local_functions
from tests.support.domain import all_sessions, new_session
from tests.support.erasure import request_erasure, session_items
from tests.support.stepfunctions import REGION, Engine, Execution, step_functions

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

BUCKET = "clickstream-lake"
USER = "user-erased"
OTHER = "user-kept"


@dataclass
class Machines:
    engine: Engine
    erasure_arn: str
    export_arn: str
    s3: S3Client
    service: Clickstream

    def register(self, session_id: str, user_id: str | None, clicks: int) -> str:
        self.service.register(new_session(session_id, user_id=user_id))
        if clicks:
            self.service.add_events(session_id, [NewEvent(event_id=f"c{n}", object_id="shoe-3") for n in range(clicks)])
        return session_id

    def export(self, release_id: str) -> str:
        released = self.service.release(release_id).model_dump()
        execution = self.engine.run(self.export_arn, released, f"export-{release_id}")
        assert execution.status == "SUCCEEDED", execution.error
        return str(released["batch_id"])

    def erase(self, erasure: Erasure) -> Execution:
        return self.engine.run(self.erasure_arn, {"erasure_id": erasure.erasure_id}, erasure.erasure_id)

    def every_version(self) -> list[bytes]:
        """Every version of every object in the bucket, gunzipped where gzip."""
        contents = []
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET):
            for version in page.get("Versions", []):
                body = self.s3.get_object(Bucket=BUCKET, Key=version["Key"], VersionId=version["VersionId"])["Body"]
                data = body.read()
                contents.append(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
        return contents


@pytest.fixture
def machines(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Machines]:
    with step_functions(request, monkeypatch, local_functions()) as engine:
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        monkeypatch.setenv("LAKE_BUCKET", BUCKET)
        runtime.reset()
        settings = Settings.from_environment()
        service = Clickstream(Storage.from_settings(settings), settings)
        resources = {"DatasetBucket": BUCKET}
        erasure_arn = engine.create("ErasureStateMachine", resources)
        yield Machines(engine, erasure_arn, engine.create("ExportStateMachine", resources), s3, service)


@dataclass
class Population:
    batches: dict[str, str]  # exported, released, collecting -> batch id
    user: set[str]
    others: set[str]
    user_events: int


def populate(machines: Machines) -> Population:
    user: set[str] = set()
    others: set[str] = set()
    for n in range(3):
        user.add(machines.register(f"exp-user-{n}", USER, n + 1))
        others.add(machines.register(f"exp-other-{n}", OTHER if n else None, 2))
    exported = machines.export("release-exported")
    user.add(machines.register("rel-user-0", USER, 2))
    others.add(machines.register("rel-other-0", OTHER, 1))
    machines.service.use_for_improvement("rel-user-0")
    released = machines.service.release("release-released").batch_id
    user.add(machines.register("col-user-0", USER, 1))
    others.add(machines.register("col-other-0", OTHER, 3))
    collecting = machines.service.storage.pointer.get()
    assert collecting is not None
    batches = {"exported": exported, "released": released, "collecting": collecting.batch_id}
    return Population(batches, user, others, user_events=1 + 2 + 3 + 2 + 1)


def test_the_machine_erases_the_user_everywhere_and_keeps_everyone_else(
    machines: Machines, tables: dict[str, str]
) -> None:
    population = populate(machines)
    service = machines.service
    others_before = session_items(tables, population.others)
    paged_before = {kind: all_sessions(service, batch, 2) for kind, batch in population.batches.items()}
    erasure = request_erasure(service, USER)
    waited_before = len(machines.engine.waits)  # the export's
    execution = machines.erase(erasure)
    assert execution.status == "SUCCEEDED", execution.error
    # The two waits, WRITE_SETTLE_MS (0 in the tests) each, then every step once, the datasets per batch.
    assert machines.engine.waits[waited_before:] == [0, 0]
    steps = [event["step"] for event in machines.engine.lambdas.events["ErasureFunction"]]
    assert (steps[:4], steps[-1]) == (["begin", "find", "unclaim", "purge"], "finish")
    assert sorted(steps[4:-1]) == sorted(["account", "rewrite", "versions"] * 3)  # three batches, 4 at a time
    parameters = load_template()["Parameters"]
    definition = json.loads(
        machines.engine.sfn.describe_state_machine(stateMachineArn=machines.erasure_arn)["definition"]
    )
    assert definition["TimeoutSeconds"] == parameters["ErasureDeadlineHours"]["Default"] * 3600

    done = service.storage.erasures.get(erasure.erasure_id)
    assert done is not None
    assert (done.status, done.stored_user_id) == ("done", None)
    assert (done.sessions, done.events, done.tasks, done.datasets_rewritten) == (5, population.user_events, 1, 1)
    assert session_items(tables, population.user) == {table: [] for table in others_before}
    assert session_items(tables, population.others) == others_before  # item for item
    for kind, before in paged_before.items():
        kept = [session for session in before if session["session_id"] not in population.user]
        assert all_sessions(service, population.batches[kind], 2) == kept, kind
    for kind, (remaining, erased) in {"exported": (3, 3), "released": (1, 1)}.items():
        record = service.storage.batches.get(population.batches[kind])
        assert record is not None
        assert (record.session_count, record.erased_sessions) == (remaining, erased), kind
    # No version of any object in the bucket names the user or one of their sessions: the rewritten
    # dataset's older versions are gone, and so is the erasure's work file.
    traces = [USER.encode(), *(session_id.encode() for session_id in population.user)]
    assert not [trace for content in machines.every_version() for trace in traces if trace in content]
    assert "Versions" not in machines.s3.list_object_versions(Bucket=BUCKET, Prefix="erasures/")


def test_a_step_that_keeps_failing_closes_the_erasure_as_failed_and_lifts_the_guard(
    machines: Machines, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clickstream.domain.erasure.purge import Purge

    populate(machines)
    monkeypatch.setattr(Purge, "delete", lambda self, erasure_id, held: (_ for _ in ()).throw(ValueError("broken")))
    erasure = request_erasure(machines.service, USER)
    execution = machines.erase(erasure)
    assert (execution.status, execution.error) == ("FAILED", "ErasureFailed")
    failed = machines.service.storage.erasures.get(erasure.erasure_id)
    assert failed is not None
    assert (failed.status, failed.error, failed.stored_user_id) == ("failed", "ValueError", None)
    assert machines.service.storage.erasures.active_user_keys() == frozenset()  # registrations taken again
    assert request_erasure(machines.service, USER).erasure_id != erasure.erasure_id  # a new request is new


def test_a_busy_table_and_an_export_still_running_are_waited_for(
    machines: Machines, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clickstream.domain.datasets.rewrite import DatasetRewriter
    from clickstream.domain.erasure.purge import Purge

    population = populate(machines)
    purge, rewrite = Purge.delete, DatasetRewriter.rewrite
    busy: list[Exception] = [StorageUnavailable()]
    exporting: list[Exception] = [ExportNotReady("exporting"), ExportNotReady("exporting")]

    def busy_once(self: Purge, erasure_id: str, held: Any) -> int:
        if busy:
            raise busy.pop()
        return purge(self, erasure_id, held)

    def exporting_twice(self: DatasetRewriter, batch_id: str, *arguments: Any) -> Any:
        if batch_id == population.batches["exported"] and exporting:
            raise exporting.pop()
        return rewrite(self, batch_id, *arguments)

    monkeypatch.setattr(Purge, "delete", busy_once)
    monkeypatch.setattr(DatasetRewriter, "rewrite", exporting_twice)
    erasure = request_erasure(machines.service, USER)
    execution = machines.erase(erasure)
    assert execution.status == "SUCCEEDED", execution.error
    assert machines.engine.retry_waits.count(3600) == 2  # the export's end awaited hourly
    assert 10 in machines.engine.retry_waits  # StorageUnavailable retried
    done = machines.service.storage.erasures.get(erasure.erasure_id)
    assert done is not None
    assert (done.status, done.sessions, done.events, done.datasets_rewritten) == ("done", 5, population.user_events, 1)


def test_a_batch_too_large_for_one_rewrite_call_is_rewritten_over_several(
    machines: Machines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ranges of 2 sessions, and a function that always has less time left than its margin: the Rewrite step
    does one range a call, the machine's RewriteDone loop calls it again, and the end is the same."""
    monkeypatch.setenv("EXPORT_RANGE_SESSIONS", "2")
    runtime.reset()
    machines.service = Clickstream(machines.service.storage, Settings.from_environment())
    for n in range(3):
        machines.register(f"exp-user-{n}", USER, n + 1)
        machines.register(f"exp-other-{n}", OTHER, 2)
    batch_id = machines.export("release-large")
    manifest = json.loads(
        machines.s3.get_object(Bucket=BUCKET, Key=f"sessions/batch_id={batch_id}/manifest.json")["Body"].read()
    )
    assert len(manifest["parts"]) == 3  # three ranges

    execution = machines.erase(request_erasure(machines.service, USER))

    assert execution.status == "SUCCEEDED", execution.error
    rewrites = [event for event in machines.engine.lambdas.events["ErasureFunction"] if event["step"] == "rewrite"]
    assert len(rewrites) == 3
    record = machines.service.storage.batches.get(batch_id)
    assert record is not None
    assert (record.session_count, record.erased_sessions, record.dataset.session_count) == (3, 3, 3)
    traces = [USER.encode(), *(f"exp-user-{n}".encode() for n in range(3))]
    assert not [trace for content in machines.every_version() for trace in traces if trace in content]
    assert "Versions" not in machines.s3.list_object_versions(
        Bucket=BUCKET, Prefix=f"exports/batch_id={batch_id}/rewrite"
    )
