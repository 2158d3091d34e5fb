"""Least privilege and safe defaults, read from template.yaml itself.

The expected permissions below are written from the code (service.py -> storage.py), not from the
template, so widening a policy or calling DynamoDB in a new way fails here until both agree. A second
test records the DynamoDB calls the real handlers make and checks each one against its function's policy.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from clickstream.storage import Storage
from local.template import Intrinsic, load_template, resources_of_type
from tests.conftest import HttpResult, load_event, new_session_body

Grants = dict[str, set[str]]  # resource ("SessionsTable", "EventsTable/index/by_created_at") -> actions

EVENTS_BY_TIME = "EventsTable/index/by_created_at"

# Which DynamoDB calls each function makes, following its routes through service.py into storage.py:
#   Collection: register (claim/take over/assign/mark the session id; number on the pointer, open a batch,
#     finish a stalled release's hand-over: bind release, batch record, delete or unseal the pointer; put the
#     session, read its slot), add_events (session id, put events), mark_irrelevant (session id, update the
#     session), GET /session (session id, session, first events through the time index).
#   UseForImprovement: session id and session, has_events (Query on the table), put/get the task.
#   BatchSessions: sessions_after (Query), first_events (index Query), batch record and pointer reads.
#   BatchRelease: release record and pointer (get/seal/unseal/delete), bind release, batch record and count,
#     settle: slots (Query), tombstones (conditional put, then a read of the slot when it is taken).
EXPECTED_GRANTS: dict[str, Grants] = {
    "CollectionFunction": {
        "SessionIdsTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        "SessionsTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        "BatchesTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "EventsTable": {"dynamodb:PutItem"},
        EVENTS_BY_TIME: {"dynamodb:Query"},
    },
    "UseForImprovementFunction": {
        "SessionIdsTable": {"dynamodb:GetItem"},
        "SessionsTable": {"dynamodb:GetItem"},
        "EventsTable": {"dynamodb:Query"},
        "ImprovementTasksTable": {"dynamodb:GetItem", "dynamodb:PutItem"},
    },
    "BatchSessionsFunction": {
        "SessionsTable": {"dynamodb:Query"},
        EVENTS_BY_TIME: {"dynamodb:Query"},
        "BatchesTable": {"dynamodb:GetItem"},
    },
    "BatchReleaseFunction": {
        "BatchesTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "SessionsTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"},
    },
}

# Step Functions sets up log delivery with these calls, and X-Ray takes traces with these; none of them
# supports resource-level permissions, so they are the only ones allowed on "*".
LOG_DELIVERY_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
LOG_WRITE_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_name(resource: Any) -> str:
    """`!GetAtt T.Arn` -> "T"; `!Sub "${T.Arn}/index/i"` -> "T/index/i"; anything else is refused."""
    if isinstance(resource, Intrinsic) and resource.name == "Fn::GetAtt":
        target = resource.value if isinstance(resource.value, str) else ".".join(resource.value)
        if target.endswith(".Arn"):
            return target.removesuffix(".Arn")
    if isinstance(resource, Intrinsic) and resource.name == "Fn::Sub" and isinstance(resource.value, str):
        text = resource.value
        if text.startswith("${") and ".Arn}" in text:
            logical_id, rest = text[2:].split(".Arn}", 1)
            return logical_id + rest
    raise AssertionError(f"resource {resource!r} is not a table or index of this template")


def statements(policies: Any) -> Iterator[dict[str, Any]]:
    for policy in as_list(policies):
        assert isinstance(policy, dict), f"policy {policy!r}: only inline statements are reviewable here"
        document = policy.get("PolicyDocument", policy)
        assert set(document) <= {"Version", "Statement"}, f"unexpected policy shape {policy!r}"
        yield from as_list(document["Statement"])


def function_grants(function: dict[str, Any]) -> Grants:
    properties = function["Properties"]
    assert "Role" not in properties, "a function role set by hand escapes this review"
    grants: Grants = {}
    for statement in statements(properties.get("Policies", [])):
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource"}, statement
        actions = set(as_list(statement["Action"]))
        for action in actions:
            assert "*" not in action, f"wildcard action {action}"
        for resource in as_list(statement["Resource"]):
            grants.setdefault(resource_name(resource), set()).update(actions)
    return grants


def test_every_route_requires_iam_auth() -> None:
    template = load_template()
    apis = resources_of_type(template, "AWS::Serverless::HttpApi")
    assert list(apis) == ["HttpApi"]
    auth = apis["HttpApi"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "AWS_IAM"
    assert auth["EnableIamAuthorizer"] is True
    for kind in ("AWS::Serverless::Api", "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Route", "AWS::Lambda::Url"):
        assert not resources_of_type(template, kind), f"{kind} would expose routes outside the IAM-authorised API"
    routes = 0
    for function_id, function in resources_of_type(template, "AWS::Serverless::Function").items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            routes += 1
            properties = event["Properties"]
            assert properties["ApiId"] == Intrinsic("Ref", "HttpApi"), f"{function_id}: route outside HttpApi"
            authorizer = properties.get("Auth", {}).get("Authorizer", "AWS_IAM")
            assert authorizer == "AWS_IAM", f"{function_id} {properties['Path']}: authorizer {authorizer}"
    assert routes == 7


def test_function_policies_grant_exactly_the_dynamodb_calls_the_code_makes() -> None:
    template = load_template()
    functions = resources_of_type(template, "AWS::Serverless::Function")
    assert set(functions) == set(EXPECTED_GRANTS)
    globals_ = template.get("Globals", {}).get("Function", {})
    assert "Policies" not in globals_
    assert "Role" not in globals_
    for function_id, function in functions.items():
        assert function_grants(function) == EXPECTED_GRANTS[function_id], function_id


def test_tables_are_retained_recoverable_and_encrypted() -> None:
    template = load_template()
    assert not resources_of_type(template, "AWS::Serverless::SimpleTable")
    tables = resources_of_type(template, "AWS::DynamoDB::Table")
    assert set(tables) == {"SessionsTable", "SessionIdsTable", "EventsTable", "BatchesTable", "ImprovementTasksTable"}
    for logical_id, table in tables.items():
        properties = table["Properties"]
        assert table.get("DeletionPolicy") == "Retain", logical_id
        assert table.get("UpdateReplacePolicy") == "Retain", logical_id
        assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, logical_id
        assert properties["SSESpecification"]["SSEEnabled"] is True, logical_id


def test_release_state_machine_role_is_least_privilege() -> None:
    template = load_template()
    machines = resources_of_type(template, "AWS::Serverless::StateMachine")
    if "ReleaseStateMachine" not in machines:
        pytest.skip("ReleaseStateMachine is not in template.yaml yet")
    machine = machines["ReleaseStateMachine"]["Properties"]
    assert "Policies" not in machine, "the state machine uses its explicit role, not SAM-generated policies"
    role_ref = machine["Role"]
    assert isinstance(role_ref, Intrinsic)
    assert role_ref.name == "Fn::GetAtt"
    role_id = resource_name(role_ref)
    role = template["Resources"][role_id]
    assert role["Type"] == "AWS::IAM::Role"
    role_properties = role["Properties"]
    assert "ManagedPolicyArns" not in role_properties
    [trust] = role_properties["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Principal"] == {"Service": Intrinsic("Fn::Sub", "states.${AWS::URLSuffix}")}

    substitutions = machine["DefinitionSubstitutions"]
    release_function = {Intrinsic("Fn::GetAtt", "BatchReleaseFunction.Arn")}
    assert substitutions["ReleaseFunctionArn"] in release_function
    release_function.add(Intrinsic("Fn::Sub", "${BatchReleaseFunction.Arn}:*"))  # its versions and aliases
    bus = substitutions["ReleaseEventBusArn"]
    log_group = machine["Logging"]["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]

    granted: set[str] = set()
    for statement in statements(role_properties["Policies"]):
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource"}, statement
        actions = set(as_list(statement["Action"]))
        resources = as_list(statement["Resource"])
        granted |= actions
        if actions == {"lambda:InvokeFunction"}:
            assert set(resources) <= release_function, resources
        elif actions == {"events:PutEvents"}:
            assert resources == [bus]
        elif actions <= LOG_WRITE_ACTIONS:
            assert resources == [log_group]
        elif actions <= LOG_DELIVERY_ACTIONS | XRAY_ACTIONS:
            assert resources == ["*"]
        else:
            raise AssertionError(f"the state machine may not {sorted(actions)} on {resources}")
    assert {"lambda:InvokeFunction", "events:PutEvents"} <= granted


# --- the calls the handlers really make are within their policies --------------------------------


class CallRecorder:
    """(action, resource) of every DynamoDB call, by the function being invoked at the time."""

    def __init__(self, physical_names: dict[str, str]) -> None:
        self._logical_ids = {physical: logical for logical, physical in physical_names.items()}
        self.function = ""
        self.calls: dict[str, set[tuple[str, str]]] = {}

    def record(self, operation: str, arguments: dict[str, Any]) -> None:
        resource = self._logical_ids[arguments["TableName"]]
        if "IndexName" in arguments:
            resource += f"/index/{arguments['IndexName']}"
        action = "dynamodb:" + "".join(part.capitalize() for part in operation.split("_"))
        self.calls.setdefault(self.function, set()).add((action, resource))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch, tables: dict[str, str]) -> CallRecorder:
    recorder = CallRecorder(tables)
    original = Storage._call

    def recording(storage: Storage, operation: str, **arguments: Any) -> dict[str, Any]:
        recorder.record(operation, arguments)
        return original(storage, operation, **arguments)

    monkeypatch.setattr(Storage, "_call", recording)
    return recorder


def with_body(event_name: str, body: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event(event_name))
    event["body"] = json.dumps(body)
    return event


def test_every_dynamodb_call_the_handlers_make_is_allowed_by_their_policy(
    recorder: CallRecorder,
    invoke: Callable[[str, Any], Any],
    invoke_http: Callable[[str, dict[str, Any]], HttpResult],
) -> None:
    def run(function_id: str, event: dict[str, Any], status: int = 200) -> HttpResult:
        recorder.function = function_id
        result = invoke_http(function_id, event)
        assert result.status == status, (function_id, result.body)
        return result

    def page(batch_id: str, status: int = 200) -> None:
        event = copy.deepcopy(load_event("batch_sessions"))
        event["queryStringParameters"] = {"batch_id": batch_id}
        run("BatchSessionsFunction", event, status)

    # Two sessions (one with events), schedules, a page, releases (HTTP and direct), the next batch.
    batch_id = run("CollectionFunction", load_event("register_session")).body["batch_id"]
    run("CollectionFunction", load_event("register_session"))  # the same id again: the first registration
    run("CollectionFunction", with_body("register_session", new_session_body("sess-quiet")))
    run("CollectionFunction", load_event("add_events"))
    run("CollectionFunction", load_event("get_session"))
    run("UseForImprovementFunction", load_event("use_for_improvement"))
    run("UseForImprovementFunction", load_event("use_for_improvement"))  # already pending: read back
    run("UseForImprovementFunction", with_body("use_for_improvement", {"session_id": "sess-quiet"}))
    run("CollectionFunction", load_event("mark_irrelevant"))
    page(batch_id)
    page("b-unknown", status=404)
    run("BatchReleaseFunction", load_event("batch_release"))
    run("BatchReleaseFunction", load_event("batch_release"))  # idempotent: read back
    page(batch_id)  # a released batch
    run("CollectionFunction", with_body("register_session", new_session_body("sess-next")))  # opens a batch
    recorder.function = "BatchReleaseFunction"
    assert invoke("BatchReleaseFunction", {"release_id": "release-direct"})["session_count"] == 1

    assert set(recorder.calls) == set(EXPECTED_GRANTS)
    for function_id, calls in recorder.calls.items():
        grants = EXPECTED_GRANTS[function_id]
        denied = {(action, resource) for action, resource in calls if action not in grants.get(resource, set())}
        assert not denied, f"{function_id} makes calls its policy does not allow: {sorted(denied)}"
