"""The export state machine: the real statemachines/export.asl.json, run by moto's Step Functions engine on
a BatchReleased detail, its Lambda tasks routed to the real export handler, the lake a moto S3 bucket
(the Distributed Map's ItemReader reads the plan's ranges from it), DynamoDB the embedded moto."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import duckdb
import pytest

from clickstream import runtime
from clickstream.domain.datasets.layout import dataset_folder, judgments_key, manifest_key
from clickstream.errors import StorageUnavailable
from clickstream.models import NewEvent
from clickstream.service import Clickstream
from clickstream.settings import Settings
from clickstream.storage import Storage
from local.streams import StreamRelay
from local.template import load_template
from tests.conftest import local_functions
from tests.support import unique
from tests.support.domain import all_sessions, new_session
from tests.support.judgments import (
    EXPECTED_HELD_OUT_SESSIONS,
    EXPECTED_PAIRS,
    EXPECTED_ROWS,
    EXPECTED_SESSIONS,
    SESSIONS,
)
from tests.support.stepfunctions import REGION, Engine, Execution, step_functions

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

BUCKET = "clickstream-lake"
MACHINE_ID = "ExportStateMachine"


@dataclass
class Exports:
    engine: Engine
    machine_arn: str
    s3: S3Client
    service: Clickstream
    outbox: StreamRelay

    def released(self, sessions: int, release_id: str) -> dict[str, Any]:
        """A released batch of `sessions` sessions with 0..2 clicks each: the BatchReleased detail."""
        for n in range(sessions):
            registration = self.service.register(new_session(f"{release_id}-s{n}"))
            clicks = [NewEvent(event_id=f"c{k}", object_id="shoe-17") for k in range(n % 3)]
            if clicks:
                self.service.add_events(registration.session_id, clicks)
        return self.service.release(release_id).model_dump()

    def run(self, detail: dict[str, Any]) -> Execution:
        return self.engine.run(self.machine_arn, detail, unique("export"))

    def object(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def exported_sessions(self, batch_id: str) -> list[dict[str, Any]]:
        manifest = json.loads(self.object(manifest_key(batch_id)))
        lines = []
        for part in manifest["parts"]:
            stored = self.object(f"{dataset_folder(batch_id)}/{part['key']}")
            assert hashlib.sha256(stored).hexdigest() == part["sha256"]
            lines += [json.loads(line) for line in gzip.decompress(stored).decode().splitlines()]
        return lines

    def announced(self) -> None:
        self.outbox.pump()


@pytest.fixture
def exports(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Exports]:
    with step_functions(request, monkeypatch, local_functions()) as engine:
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        monkeypatch.setenv("LAKE_BUCKET", BUCKET)
        monkeypatch.setenv("EXPORT_RANGE_SESSIONS", "3")
        runtime.reset()
        settings = Settings.from_environment()
        service = Clickstream(Storage.from_settings(settings), settings)
        tables: dict[str, str] = request.getfixturevalue("tables")
        outbox = StreamRelay(
            request.getfixturevalue("dynamodb").endpoint, tables["BatchesTable"], "OutboxFunction", local_functions()
        )
        yield Exports(engine, engine.create(MACHINE_ID, {"DatasetBucket": BUCKET}), s3, service, outbox)


def test_a_released_batch_is_exported_after_the_delay_in_parallel_ranges(exports: Exports) -> None:
    detail = exports.released(8, "release-e")
    batch_id = detail["batch_id"]
    execution = exports.run(detail)
    assert execution.status == "SUCCEEDED", execution.error
    parameters = load_template()["Parameters"]
    # 900 s for late clicks, then the fence's WRITE_SETTLE_MS (0 in the tests) before the ranges are read
    assert exports.engine.waits == [parameters["ExportDelaySeconds"]["Default"], 0]
    steps = [event["step"] for event in exports.engine.lambdas.events["ExportFunction"]]
    release = exports.service.storage.releases.get_release("release-e")
    assert release is not None
    ranges = -(-release.last_number // 3)  # numbers handed out (some let go), in ranges of 3
    assert steps == ["plan", *["range"] * ranges, "judge", "finish"]
    assert ranges >= 3
    paged = [{"batch_id": batch_id, **session} for session in all_sessions(exports.service, batch_id, 4)]
    assert exports.exported_sessions(batch_id) == paged
    view = exports.service.batch(batch_id)
    assert view.dataset is not None
    assert view.dataset.status == "exported"
    assert view.dataset.manifest == f"s3://{BUCKET}/{manifest_key(batch_id)}"


def test_a_second_trigger_for_the_same_release_exports_nothing_again(exports: Exports) -> None:
    detail = exports.released(4, "release-twice")
    assert exports.run(detail).status == "SUCCEEDED"
    manifest = exports.object(manifest_key(detail["batch_id"]))
    again = exports.run(detail)  # EventBridge delivered BatchReleased twice
    assert again.status == "SUCCEEDED"
    assert [event["step"] for event in exports.engine.lambdas.events["ExportFunction"]][-1] == "plan"
    assert exports.object(manifest_key(detail["batch_id"])) == manifest


def test_a_range_that_fails_once_is_retried_and_the_export_completes(
    exports: Exports, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clickstream.domain.datasets.parts import RangeWriter

    write = RangeWriter.write
    failures = [StorageUnavailable()]

    def once_busy(writer: RangeWriter) -> dict[str, Any]:
        if failures and writer.number_range.index == 1:
            raise failures.pop()
        return write(writer)

    monkeypatch.setattr(RangeWriter, "write", once_busy)
    detail = exports.released(7, "release-retried")
    execution = exports.run(detail)
    assert execution.status == "SUCCEEDED", execution.error
    assert 10 in exports.engine.retry_waits  # the WriteRange retry of StorageUnavailable
    assert len(exports.exported_sessions(detail["batch_id"])) == 7


def test_a_failed_export_lets_go_of_the_batch_and_the_next_run_exports_it(
    exports: Exports, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clickstream.domain.datasets.export import Exporter

    finish = Exporter.finish
    monkeypatch.setattr(Exporter, "finish", lambda self, job, ranges: (_ for _ in ()).throw(ValueError("broken")))
    detail = exports.released(3, "release-fails")
    failed = exports.run(detail)
    assert (failed.status, failed.error) == ("FAILED", "ExportFailed")
    dataset = exports.service.batch(detail["batch_id"]).dataset
    assert dataset is not None
    assert dataset.status == "failed"
    monkeypatch.setattr(Exporter, "finish", finish)
    assert exports.run(detail).status == "SUCCEEDED"
    assert len(exports.exported_sessions(detail["batch_id"])) == 3


def test_the_export_is_announced_once_with_its_manifest_counts_and_report(exports: Exports) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="export-subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="exported", EventPattern=json.dumps({"source": ["clickstream"], "detail-type": ["BatchExported"]})
    )
    events.put_targets(Rule="exported", Targets=[{"Id": "queue", "Arn": queue_arn}])
    detail = exports.released(5, "release-announced")
    exports.run(detail)
    exports.run(detail)
    exports.announced()
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    [announced] = [json.loads(message["Body"])["detail"] for message in messages]
    manifest = json.loads(exports.object(manifest_key(detail["batch_id"])))
    assert announced == {
        "release_id": "release-announced",
        "batch_id": detail["batch_id"],
        "manifest": f"s3://{BUCKET}/{manifest_key(detail['batch_id'])}",
        "judgments": manifest["judgments"]["uri"],
        "session_count": 5,
        "event_count": manifest["event_count"],
        "metrics": manifest["metrics"],
        "experiments": manifest["experiments"],  # none here: []
    }


def test_with_retention_the_exported_batch_items_expire_and_its_records_stay(
    exports: Exports, monkeypatch: pytest.MonkeyPatch, tables: dict[str, str]
) -> None:
    monkeypatch.setenv("RETENTION_DAYS", "2")
    runtime.reset()  # the export handler's service reads RETENTION_DAYS
    detail = exports.released(5, "release-retained")
    batch_id = detail["batch_id"]
    exports.service.use_for_improvement("release-retained-s1")  # a task, among the items that expire
    execution = exports.run(detail)
    assert execution.status == "SUCCEEDED", execution.error
    steps = [event["step"] for event in exports.engine.lambdas.events["ExportFunction"]]
    ranges = steps.count("range")
    assert steps == ["plan", *["range"] * ranges, "judge", "finish", *["expire"] * ranges]
    dataset = exports.service.batch(batch_id).dataset
    assert dataset is not None
    assert dataset.exported_at is not None
    expected = dataset.exported_at // 1000 + 2 * 86_400

    dynamodb = boto3.client("dynamodb", region_name=REGION)

    def expiries(table_id: str) -> list[int | None]:
        items = dynamodb.scan(TableName=tables[table_id])["Items"]
        return [int(item["expires_at"]["N"]) if "expires_at" in item else None for item in items]

    slots = [
        item
        for item in dynamodb.scan(TableName=tables["SessionsTable"])["Items"]
        if item["batch_id"]["S"].startswith(batch_id)
    ]
    assert len(slots) >= 5
    assert {int(item["expires_at"]["N"]) for item in slots} == {expected}  # sessions and let-go tombstones
    assert set(expiries("SessionIdsTable")) == {expected}
    assert set(expiries("EventsTable")) == {expected}  # the clicks of s1, s2, s4
    assert expiries("ImprovementTasksTable") == [expected]
    assert set(expiries("BatchesTable")) == {None}  # batch, release and pointer records stay
    assert exports.service.batch(batch_id).dataset == dataset


def test_without_retention_nothing_expires(exports: Exports, tables: dict[str, str]) -> None:
    detail = exports.released(3, "release-kept")
    assert exports.run(detail).status == "SUCCEEDED"
    assert "expire" not in [event["step"] for event in exports.engine.lambdas.events["ExportFunction"]]
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for table_id in ("SessionsTable", "SessionIdsTable", "EventsTable"):
        assert not [item for item in dynamodb.scan(TableName=tables[table_id])["Items"] if "expires_at" in item]


def test_the_judgments_of_a_batch_registered_through_the_handlers_are_counted_as_worked_out_by_hand(
    exports: Exports, tmp_path: Path
) -> None:
    functions = local_functions()
    for body, events, irrelevant in SESSIONS:
        assert functions.call("POST /session", body=body).status == 200
        added = [{"event_id": f"e{n}", "object_id": o, "event_type": kind} for n, (o, kind) in enumerate(events)]
        if added:
            assert (
                functions.call("POST /session/events", body={"session_id": body["session_id"], "events": added}).status
                == 200
            )
        if irrelevant:
            assert functions.call("POST /session/irrelevant", body={"session_id": body["session_id"]}).status == 200
    detail = exports.service.release("release-judged").model_dump()
    batch_id = detail["batch_id"]
    execution = exports.run(detail)
    assert execution.status == "SUCCEEDED", execution.error

    manifest = json.loads(exports.object(manifest_key(batch_id)))
    stored = exports.object(judgments_key(batch_id))
    assert manifest["judgments"] == {
        "uri": f"s3://{BUCKET}/{judgments_key(batch_id)}",
        "pairs": len(EXPECTED_PAIRS),
        "bytes": len(stored),
        "sha256": hashlib.sha256(stored).hexdigest(),
    }
    click_model = manifest["click_model"]
    assert (click_model["model"], click_model["sessions"]) == ("pbm", EXPECTED_SESSIONS)
    assert click_model["impressions"] == sum(row[5] for row in EXPECTED_ROWS)
    assert click_model["held_out"]["sessions"] == EXPECTED_HELD_OUT_SESSIONS

    lines = [json.loads(line) for line in gzip.decompress(stored).decode("utf-8").splitlines()]
    assert [(line["query"], line["object_id"]) for line in lines] == sorted(EXPECTED_PAIRS)  # sorted, one a pair
    path = tmp_path / "judgments.jsonl.gz"
    path.write_bytes(stored)
    query = "SELECT query, object_id, impressions, clicks, positions, mean_position, ctr FROM read_json_auto($file)"
    rows = duckdb.execute(query, {"file": str(path)}).fetchall()
    found = {(q, o): (i, c, p, round(m, 6)) for q, o, i, c, p, m, _ in rows}
    assert found == {pair: (i, c, p, round(m, 6)) for pair, (i, c, p, m) in EXPECTED_PAIRS.items()}
    assert all(ctr == pytest.approx(c / i, abs=1e-6) for _, _, i, c, _, _, ctr in rows)  # published to 6 places
    table = load_template()["Resources"]["JudgmentsGlueTable"]["Properties"]["TableInput"]
    assert [column["Name"] for column in table["StorageDescriptor"]["Columns"]] == list(lines[0])

    view = exports.service.batch(batch_id)
    assert view.click_model is not None
    assert view.click_model.model_dump() == click_model
    assert view.dataset is not None
    assert view.dataset.judgments is not None
    assert view.dataset.judgments.model_dump() == manifest["judgments"]
