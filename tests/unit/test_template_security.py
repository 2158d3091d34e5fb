"""Least privilege and safe defaults, read from template.yaml itself.

The expected permissions (tests/support/policies.py) are written from the code, not from the template;
tests/integration/test_least_privilege.py checks them against the calls the real handlers make.
"""

from __future__ import annotations

import pytest

from local.template import Intrinsic, load_template, resources_of_type
from tests.support.policies import (
    EXPECTED_GRANTS,
    LOG_DELIVERY_ACTIONS,
    LOG_WRITE_ACTIONS,
    XRAY_ACTIONS,
    as_list,
    function_grants,
    resource_name,
    statements,
)


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
