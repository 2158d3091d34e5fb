"""The release state machine: the real statemachines/release.asl.json, executed by moto's Step Functions engine.

moto interprets the definition (`execute_state_machine`); its Lambda backend without Docker only echoes, so the
`lambda:invoke` task is routed in-process to the real release handler, which works on the embedded DynamoDB of
the `tables` fixture (the handler reaches it over HTTP through AWS_ENDPOINT_URL_DYNAMODB, which mock_aws does
not intercept). EventBridge is moto's: a rule with the documented event pattern forwards BatchReleased events
to an SQS queue, where the tests read exactly what a subscriber would get.
"""

from __future__ import annotations

import json
import re
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws
from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from local.template import ROOT, Intrinsic, load_template, resources_of_type
from tests.conftest import local_functions
from tests.support import unique
from tests.support.policies import LOG_DELIVERY_ACTIONS, LOG_WRITE_ACTIONS

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_stepfunctions.client import SFNClient

    from clickstream.service import Clickstream

REGION = "us-east-1"
ACCOUNT = "123456789012"
FUNCTION_ID = "BatchReleaseFunction"
MACHINE_ID = "ReleaseStateMachine"
PSEUDO_PARAMETERS = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
OPERATIONS_DOC = ROOT / "docs" / "operations.md"


# --- the definition, as CloudFormation would substitute it ---------------------------------------------


def _resolve(value: Any, template: dict[str, Any]) -> str:
    """The value of a DefinitionSubstitutions entry in a local account (functions named by their logical id)."""
    parameters = template.get("Parameters", {})

    def reference(name: str) -> str:
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in parameters:
            return str(parameters[name]["Default"])
        if name.endswith(".Arn") and template["Resources"][name[:-4]]["Type"] == "AWS::Serverless::Function":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name[:-4]}"
        raise ValueError(f"cannot resolve {name!r} locally")

    if isinstance(value, str):
        return value
    if isinstance(value, Intrinsic) and value.name == "Fn::GetAtt":
        return reference(value.value if isinstance(value.value, str) else ".".join(value.value))
    if isinstance(value, Intrinsic) and value.name == "Ref":
        return reference(value.value)
    if isinstance(value, Intrinsic) and value.name == "Fn::Sub" and isinstance(value.value, str):
        return re.sub(r"\$\{([^}]+)\}", lambda match: reference(match.group(1)), value.value)
    raise ValueError(f"cannot resolve {value!r} locally")


def machine_properties() -> dict[str, Any]:
    properties: dict[str, Any] = load_template()["Resources"][MACHINE_ID]["Properties"]
    return properties


def substitutions() -> dict[str, str]:
    template = load_template()
    return {name: _resolve(value, template) for name, value in machine_properties()["DefinitionSubstitutions"].items()}


def definition() -> str:
    text: str = (ROOT / machine_properties()["DefinitionUri"]).read_text(encoding="utf-8")
    for name, value in substitutions().items():
        text = text.replace(f"${{{name}}}", value)
    assert "${" not in text, "a placeholder of the definition has no DefinitionSubstitutions entry"
    return text


def documented_event_pattern() -> dict[str, Any]:
    """The event pattern docs/operations.md tells subscribers to use (the json block after its marker)."""
    text = OPERATIONS_DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- batch-released-pattern -->\s*```json\n(.*?)```", text, re.DOTALL)
    assert match, "docs/operations.md lost its BatchReleased event pattern"
    pattern: dict[str, Any] = json.loads(match.group(1))
    return pattern


# --- Lambda: the real release handler behind moto's Invoke ----------------------------------------------


@dataclass
class ReleaseFunction:
    """Answers Lambda's Invoke for the release function with its real handler, as the Lambda runtime would:
    an exception becomes a function error whose `errorType` is the exception's class name."""

    arn: str
    events: list[Any] = field(default_factory=list)
    # Lambda service errors (error codes) to answer the next invocations with, before the function runs.
    service_errors: list[str] = field(default_factory=list)

    def invoke(self, function_name: str, body: str, response_headers: dict[str, str]) -> bytes:
        if function_name not in (self.arn, FUNCTION_ID):
            raise LambdaClientError("ResourceNotFoundException", f"Function not found: {function_name}")
        event = json.loads(body) if body else {}
        self.events.append(event)
        if self.service_errors:
            error = LambdaClientError(self.service_errors.pop(0), "injected by the test")
            error.code = 429 if error.error_type == "TooManyRequestsException" else 500
            raise error
        try:
            result = local_functions().invoke(FUNCTION_ID, event)
        except Exception as error:  # the runtime reports any exception as a function error
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()
        return json.dumps(result).encode()


# --- the harness --------------------------------------------------------------------------------------------


@dataclass
class Execution:
    status: str
    output: Any
    error: str | None


@dataclass
class Harness:
    sfn: SFNClient
    sqs: SQSClient
    machine_arn: str
    queue_url: str
    function: ReleaseFunction
    service: Clickstream
    retry_waits: list[float]

    def run(self, execution_input: Any, name: str | None = None) -> Execution:
        started = self.sfn.start_execution(
            stateMachineArn=self.machine_arn, name=name or unique("run"), input=json.dumps(execution_input)
        )
        deadline = time.monotonic() + 30
        while True:
            described = self.sfn.describe_execution(executionArn=started["executionArn"])
            if described["status"] != "RUNNING":
                break
            assert time.monotonic() < deadline, "the execution did not finish"
            time.sleep(0.02)
        output = json.loads(described["output"]) if "output" in described else None
        return Execution(described["status"], output, described.get("error"))

    def announced(self) -> list[dict[str, Any]]:
        """Every event the subscriber's queue received so far (EventBridge envelopes)."""
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
    config: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    with mock_aws(config=config):
        # mock_aws resets every in-process moto backend when it starts, the embedded DynamoDB's included:
        # the tables are created after it.
        request.getfixturevalue("tables")
        service: Clickstream = request.getfixturevalue("service")

        function = ReleaseFunction(arn=substitutions()["ReleaseFunctionArn"])

        def invoke(  # noqa: PLR0917 - the signature of moto's LambdaBackend.invoke
            backend: Any, name: str, qualifier: Any, body: str, headers: Any, response_headers: dict[str, str]
        ) -> bytes:
            return function.invoke(name, body, response_headers)

        monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
        # Retry waits are recorded instead of slept, which keeps the suite fast and shows the backoff.
        retry_waits: list[float] = []
        monkeypatch.setattr(retrier_decl, "time", types.SimpleNamespace(sleep=retry_waits.append))

        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="release-subscriber")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus_arn = substitutions()["ReleaseEventBusArn"]
        events.put_rule(
            Name="batch-released", EventBusName=bus_arn, EventPattern=json.dumps(documented_event_pattern())
        )
        events.put_targets(Rule="batch-released", EventBusName=bus_arn, Targets=[{"Id": "queue", "Arn": queue_arn}])

        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine_arn = sfn.create_state_machine(
            name="release", definition=definition(), roleArn=f"arn:aws:iam::{ACCOUNT}:role/release-state-machine"
        )["stateMachineArn"]
        yield Harness(sfn, sqs, machine_arn, queue_url, function, service, retry_waits)


def details(announced: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert all(event["source"] == "clickstream" and event["detail-type"] == "BatchReleased" for event in announced)
    return [event["detail"] for event in announced]


# --- (a) a release is announced once -----------------------------------------------------------------------


def test_a_batch_with_sessions_is_released_and_announced_once(harness: Harness) -> None:
    batch_id = harness.register(3)

    execution = harness.run({"release_id": "release-a"})

    assert execution.status == "SUCCEEDED"
    release = execution.output["release"]
    assert execution.output == {"released": True, "release": release}
    assert release["release_id"] == "release-a"
    assert release["batch_id"] == batch_id
    assert release["session_count"] == 3
    assert abs(release["released_at"] - time.time() * 1000) < 60_000
    assert harness.function.events == [{"release_id": "release-a"}]
    assert details(harness.announced()) == [release]
    # The batch is frozen: the next session opens a new one.
    assert harness.register(1) != batch_id


def test_without_a_release_id_the_execution_name_names_the_release(harness: Harness) -> None:
    batch_id = harness.register(1)

    execution = harness.run({}, name="release-2026-11-21")

    assert execution.status == "SUCCEEDED"
    assert execution.output["release"]["release_id"] == "release-2026-11-21"
    assert execution.output["release"]["batch_id"] == batch_id
    assert harness.function.events == [{"release_id": "release-2026-11-21"}]
    assert details(harness.announced()) == [execution.output["release"]]


# --- (b) nothing to release -------------------------------------------------------------------------------


def test_with_nothing_collecting_the_execution_succeeds_quietly(harness: Harness) -> None:
    execution = harness.run({"release_id": "release-b"})

    assert (execution.status, execution.output) == ("SUCCEEDED", {"released": False})
    assert harness.function.events == [{"release_id": "release-b"}]  # the function was asked, said NoCollectingBatch
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
    harness.function.service_errors = ["TooManyRequestsException", "ServiceException"]

    execution = harness.run({"release_id": "release-c"})

    assert execution.status == "SUCCEEDED"
    assert execution.output["release"]["batch_id"] == batch_id
    assert execution.output["release"]["session_count"] == 2
    assert harness.function.events == [{"release_id": "release-c"}] * 3
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
    assert len(harness.function.events) == 2
    assert harness.retry_waits == [5]
    assert details(harness.announced()) == [execution.output["release"]]


def test_lambda_retries_are_bounded_and_then_the_execution_fails(harness: Harness) -> None:
    harness.register(1)
    harness.function.service_errors = ["TooManyRequestsException"] * 20

    execution = harness.run({"release_id": "release-c2"})

    assert (execution.status, execution.error) == ("FAILED", "Lambda.TooManyRequestsException")
    assert len(harness.function.events) == 7  # the first attempt and MaxAttempts (6) retries
    assert harness.retry_waits == [2, 4, 8, 16, 32, 60]  # doubling, capped by MaxDelaySeconds
    assert harness.announced() == []


def test_a_malformed_release_id_fails_the_execution_without_retrying(harness: Harness) -> None:
    harness.register(1)

    execution = harness.run({"release_id": ""})

    assert (execution.status, execution.error) == ("FAILED", "InvalidReleaseEvent")
    assert len(harness.function.events) == 1
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
    # Each successful execution announces; the repeat's event is identical, so subscribers dedupe on release_id.
    announced = details(harness.announced())
    assert announced == [first.output["release"], first.output["release"], third.output["release"]]


# --- the template around the definition --------------------------------------------------------------------------


def test_the_template_wires_the_definition_schedule_logging_and_tracing() -> None:
    properties = machine_properties()
    assert Path(ROOT / properties["DefinitionUri"]).is_file()
    assert properties["Tracing"] == {"Enabled": True}
    assert properties["Logging"]["Level"] == "ALL"
    schedule = properties["Events"]["Schedule"]
    assert schedule["Type"] == "ScheduleV2"
    assert schedule["Properties"]["ScheduleExpression"] == Intrinsic("Ref", "ReleaseScheduleExpression")
    parameters = load_template()["Parameters"]
    assert parameters["ReleaseScheduleExpression"]["Default"] == "cron(0 0 * * ? *)"
    assert parameters["ReleaseEventBusName"]["Default"] == "default"
    assert substitutions() == {
        "ReleaseFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_ID}",
        "ReleaseEventBusArn": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default",
    }


def test_the_state_machine_role_holds_only_what_the_release_needs() -> None:
    resources = load_template()["Resources"]
    role_ref = machine_properties()["Role"]
    assert role_ref == Intrinsic("Fn::GetAtt", "ReleaseStateMachineRole.Arn")
    statements = [
        statement
        for policy in resources["ReleaseStateMachineRole"]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    granted: dict[str, Any] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            assert "*" not in action
            granted[action] = statement["Resource"]
    assert granted["lambda:InvokeFunction"] == [
        Intrinsic("Fn::GetAtt", "BatchReleaseFunction.Arn"),
        Intrinsic("Fn::Sub", "${BatchReleaseFunction.Arn}:*"),
    ]
    assert _resolve(granted["events:PutEvents"], load_template()) == substitutions()["ReleaseEventBusArn"]
    services = {action.split(":")[0] for action in granted}
    assert services == {"lambda", "events", "logs", "xray"}
    assert not {action for action in granted if action.startswith("logs:")} - (LOG_DELIVERY_ACTIONS | LOG_WRITE_ACTIONS)


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
    machine = Intrinsic("Ref", MACHINE_ID)
    expected = {
        ("AWS/States", "ExecutionsFailed", machine),
        ("AWS/States", "ExecutionsTimedOut", machine),
        ("AWS/States", "ExecutionsAborted", machine),
        ("AWS/ApiGateway", "5xx", Intrinsic("Ref", "HttpApi")),
    }
    functions = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    ]
    for function_id in functions:
        expected |= {("AWS/Lambda", metric, Intrinsic("Ref", function_id)) for metric in ("Errors", "Throttles")}
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
