"""The release state machine: the real statemachines/release.asl.json, run by moto's Step Functions engine
(tests/support/stepfunctions.py), the `lambda:invoke` task routed to the real release handler over the
embedded DynamoDB. The release is announced by the outbox: the batches table's stream, delivered to the
real outbox function as Lambda's event source does, which puts BatchReleased on moto's EventBridge; a rule
with the documented event pattern forwards it to an SQS queue, where the tests read exactly what a
subscriber would get.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from local.streams import StreamRelay
from local.template import ROOT, Intrinsic, load_template, resources_of_type
from tests.conftest import local_functions
from tests.support import unique
from tests.support.stepfunctions import (
    REGION,
    Engine,
    Execution,
    machine_properties,
    step_functions,
    substitutions,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

    from clickstream.service import Clickstream

FUNCTION_ID = "BatchReleaseFunction"
MACHINE_ID = "ReleaseStateMachine"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"


def documented_event_pattern() -> dict[str, Any]:
    """The event pattern docs/operations.md tells subscribers to use (the json block after its marker)."""
    text = OPERATIONS_DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- batch-released-pattern -->\s*```json\n(.*?)```", text, re.DOTALL)
    assert match, "docs/operations.md lost its BatchReleased event pattern"
    pattern: dict[str, Any] = json.loads(match.group(1))
    return pattern


@dataclass
class Harness:
    engine: Engine
    machine_arn: str
    sqs: SQSClient
    queue_url: str
    outbox: StreamRelay
    service: Clickstream

    @property
    def events(self) -> list[Any]:
        return self.engine.lambdas.events.get(FUNCTION_ID, [])

    @property
    def retry_waits(self) -> list[float]:
        return self.engine.retry_waits

    def run(self, execution_input: Any, name: str | None = None) -> Execution:
        return self.engine.run(self.machine_arn, execution_input, name or unique("run"))

    def announced(self) -> list[dict[str, Any]]:
        """Every event the subscriber's queue received so far (EventBridge envelopes), once the outbox has
        read the batches table's stream."""
        self.outbox.pump()
        received: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return received
            for message in batch:
                received.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def register(self, count: int) -> str:
        from clickstream.models import NewSession

        batch_ids = {
            self.service.register(NewSession(session_id=unique("sess"), search_query="q", search_results=[])).batch_id
            for _ in range(count)
        }
        assert len(batch_ids) == 1
        return batch_ids.pop()


@pytest.fixture
def harness(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with step_functions(request, monkeypatch, local_functions()) as engine:
        service: Clickstream = request.getfixturevalue("service")
        tables: dict[str, str] = request.getfixturevalue("tables")
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="release-subscriber")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="batch-released", EventPattern=json.dumps(documented_event_pattern()))
        events.put_targets(Rule="batch-released", Targets=[{"Id": "queue", "Arn": queue_arn}])
        dynamodb = request.getfixturevalue("dynamodb")
        outbox = StreamRelay(dynamodb.endpoint, tables["BatchesTable"], "OutboxFunction", local_functions())
        yield Harness(engine, engine.create(MACHINE_ID), sqs, queue_url, outbox, service)


def details(announced: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert all(event["source"] == "clickstream" and event["detail-type"] == "BatchReleased" for event in announced)
    return [event["detail"] for event in announced]


# --- (a) a release is announced once -----------------------------------------------------------------------


def test_a_batch_with_sessions_is_released_and_announced_once(harness: Harness) -> None:
    batch_id = harness.register(3)

    execution = harness.run({"release_id": "release-a"})

    assert execution.status == "SUCCEEDED"
    release = execution.output["release"]
    assert execution.output == {"released": True, "release": release}  # the Succeed state passes it on
    assert release["release_id"] == "release-a"
    assert release["batch_id"] == batch_id
    assert release["session_count"] == 3
    assert abs(release["released_at"] - time.time() * 1000) < 60_000
    assert harness.events == [{"release_id": "release-a"}]
    assert details(harness.announced()) == [release]
    # The batch is frozen: the next session opens a new one.
    assert harness.register(1) != batch_id


def test_without_a_release_id_the_execution_name_names_the_release(harness: Harness) -> None:
    batch_id = harness.register(1)

    execution = harness.run({}, name="release-2026-11-21")

    assert execution.status == "SUCCEEDED"
    assert execution.output["release"]["release_id"] == "release-2026-11-21"
    assert execution.output["release"]["batch_id"] == batch_id
    assert harness.events == [{"release_id": "release-2026-11-21"}]
    assert details(harness.announced()) == [execution.output["release"]]


# --- (b) nothing to release -------------------------------------------------------------------------------


def test_with_nothing_collecting_the_execution_succeeds_quietly(harness: Harness) -> None:
    execution = harness.run({"release_id": "release-b"})

    assert (execution.status, execution.output) == ("SUCCEEDED", {"released": False})
    assert harness.events == [{"release_id": "release-b"}]  # the function was asked, said NoCollectingBatch
    assert harness.announced() == []

    # Also after a release, when no session came in since.
    harness.register(1)
    assert harness.run({"release_id": "release-b2"}).output["released"] is True
    harness.announced()
    assert harness.run({"release_id": "release-b3"}).output == {"released": False}
    assert harness.announced() == []


# --- (c) transient Lambda failures are retried with backoff, and only so often ------------------------------


def test_a_transient_lambda_failure_is_retried_and_the_release_completes(harness: Harness) -> None:
    batch_id = harness.register(2)
    harness.engine.lambdas.service_errors = ["TooManyRequestsException", "ServiceException"]

    execution = harness.run({"release_id": "release-c"})

    assert execution.status == "SUCCEEDED"
    assert execution.output["release"]["batch_id"] == batch_id
    assert execution.output["release"]["session_count"] == 2
    assert harness.events == [{"release_id": "release-c"}] * 3
    assert harness.retry_waits == [2, 4]  # IntervalSeconds 2, BackoffRate 2
    assert details(harness.announced()) == [execution.output["release"]]


def test_dynamodb_still_throttling_inside_the_function_is_retried_by_the_state_machine(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clickstream.errors import StorageUnavailable
    from clickstream.storage.releases import Releases

    batch_id = harness.register(1)
    get_release = Releases.get_release
    calls: list[str] = []

    def busy_once(releases: Releases, release_id: str) -> Any:
        calls.append(release_id)
        if len(calls) == 1:
            raise StorageUnavailable()
        return get_release(releases, release_id)

    monkeypatch.setattr(Releases, "get_release", busy_once)

    execution = harness.run({"release_id": "release-c3"})

    assert execution.status == "SUCCEEDED"
    assert execution.output["release"]["batch_id"] == batch_id
    assert len(harness.events) == 2
    assert harness.retry_waits == [5]
    assert details(harness.announced()) == [execution.output["release"]]


def test_lambda_retries_are_bounded_and_then_the_execution_fails(harness: Harness) -> None:
    harness.register(1)
    harness.engine.lambdas.service_errors = ["TooManyRequestsException"] * 20

    execution = harness.run({"release_id": "release-c2"})

    assert (execution.status, execution.error) == ("FAILED", "Lambda.TooManyRequestsException")
    assert len(harness.events) == 7  # the first attempt and MaxAttempts (6) retries
    assert harness.retry_waits == [2, 4, 8, 16, 32, 60]  # doubling, capped by MaxDelaySeconds
    assert harness.announced() == []


def test_a_malformed_release_id_fails_the_execution_without_retrying(harness: Harness) -> None:
    harness.register(1)

    execution = harness.run({"release_id": ""})

    assert (execution.status, execution.error) == ("FAILED", "InvalidReleaseEvent")
    assert len(harness.events) == 1
    assert harness.announced() == []


# --- (d) the same release twice releases once -----------------------------------------------------------------


def test_running_the_same_release_twice_releases_one_batch_once(harness: Harness) -> None:
    batch_id = harness.register(2)
    first = harness.run({"release_id": "release-d"})
    later_batch = harness.register(1)  # a newer batch starts collecting

    second = harness.run({"release_id": "release-d"})

    assert first.status == second.status == "SUCCEEDED"
    assert second.output == first.output  # the same body
    assert first.output["release"]["batch_id"] == batch_id
    assert later_batch != batch_id
    # The newer batch was not released by the repeat: it is still collecting, and the next release takes it.
    assert harness.register(1) == later_batch
    third = harness.run({"release_id": "release-d2"})
    assert third.output["release"]["batch_id"] == later_batch
    assert third.output["release"]["session_count"] == 2
    # Each release is announced once: the outbox announces the settled release record, which the repeat
    # only reads (EventBridge may still deliver twice, so subscribers dedupe on release_id).
    announced = details(harness.announced())
    assert announced == [first.output["release"], third.output["release"]]


# --- the template around the definition --------------------------------------------------------------------------


def test_the_template_wires_the_definition_schedule_logging_and_tracing() -> None:
    properties = machine_properties(MACHINE_ID)
    assert Path(ROOT / properties["DefinitionUri"]).is_file()
    assert properties["Tracing"] == {"Enabled": True}
    assert properties["Logging"]["Level"] == "ALL"
    schedule = properties["Events"]["Schedule"]
    assert schedule["Type"] == "ScheduleV2"
    assert schedule["Properties"]["ScheduleExpression"] == Intrinsic("Ref", "ReleaseScheduleExpression")
    parameters = load_template()["Parameters"]
    assert parameters["ReleaseScheduleExpression"]["Default"] == "cron(0 0 * * ? *)"
    assert parameters["ReleaseEventBusName"]["Default"] == "default"
    assert substitutions(MACHINE_ID) == {
        "ReleaseFunctionArn": f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION_ID}"
    }


def test_alarms_cover_executions_the_api_and_every_function() -> None:
    template = load_template()
    alarms = [alarm["Properties"] for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values()]

    def watched(alarm: dict[str, Any]) -> set[tuple[str, str, Any]]:
        """(namespace, metric, first dimension value) of a plain alarm, or of each metric of a metric-math one."""
        metrics = (
            [alarm]
            if "MetricName" in alarm
            else [q["MetricStat"]["Metric"] for q in alarm["Metrics"] if "MetricStat" in q]
        )
        return {(metric["Namespace"], metric["MetricName"], metric["Dimensions"][0]["Value"]) for metric in metrics}

    covered = set().union(*(watched(alarm) for alarm in alarms))
    expected = {("AWS/ApiGateway", "5xx", Intrinsic("Ref", "HttpApi"))}
    for machine_id in resources_of_type(template, "AWS::Serverless::StateMachine"):
        machine = Intrinsic("Ref", machine_id)
        expected |= {
            ("AWS/States", metric, machine)
            for metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted")
        }
    functions = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    ]
    for function_id in functions:
        # Synchronous functions can be throttled; the outbox's, the export's and the erasure's invokers retry
        # a throttle.
        retried = ("OutboxFunction", "ExportFunction", "ErasureFunction")
        metrics = ("Errors",) if function_id in retried else ("Errors", "Throttles")
        expected |= {("AWS/Lambda", metric, Intrinsic("Ref", function_id)) for metric in metrics}
    assert expected <= covered
    topic_actions = Intrinsic(
        "Fn::If", ["HasAlarmTopic", [Intrinsic("Ref", "AlarmTopicArn")], Intrinsic("Ref", "AWS::NoValue")]
    )
    assert all(alarm["AlarmActions"] == topic_actions for alarm in alarms)


def test_the_sample_direct_event_releases_through_the_handler(
    invoke: Callable[[str, Any], Any], service: Clickstream
) -> None:
    """events/batch_release_direct.json is what the state machine sends."""
    from clickstream.models import NewSession

    registered = service.register(NewSession(session_id=unique("sess"), search_query="q", search_results=[]))
    event = json.loads((ROOT / "events" / "batch_release_direct.json").read_text(encoding="utf-8"))
    assert set(event) == {"release_id"}
    assert invoke(FUNCTION_ID, event)["batch_id"] == registered.batch_id
