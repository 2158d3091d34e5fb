"""Least privilege and safe defaults, read from template.yaml itself.

The expected permissions (tests/support/policies.py) are written from the code, not from the template;
tests/integration/test_least_privilege.py checks them against the calls the real handlers make.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.template import ROOT, Intrinsic, load_template, resources_of_type
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
    served = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))["paths"]
    assert routes == sum(len(operations) for operations in served.values())  # every route the code serves


def test_function_policies_grant_exactly_the_dynamodb_calls_the_code_makes() -> None:
    template = load_template()
    functions = resources_of_type(template, "AWS::Serverless::Function")
    assert set(functions) == set(EXPECTED_GRANTS)
    globals_ = template.get("Globals", {}).get("Function", {})
    assert "Policies" not in globals_
    assert "Role" not in globals_
    for function_id, function in functions.items():
        assert function_grants(function) == EXPECTED_GRANTS[function_id], function_id


def test_erasure_requests_read_the_key_only_with_hmac_exactly_as_registration_does() -> None:
    """POST /user/erase takes the raw id: it needs the pseudonymisation key under the same condition, and
    nothing of the sessions' tables (the erasure state machine's own function does the erasing)."""
    functions = resources_of_type(load_template(), "AWS::Serverless::Function")

    def conditional(function_id: str) -> list[Any]:
        [policy] = functions[function_id]["Properties"]["Policies"]
        return [statement for statement in policy["Statement"] if isinstance(statement, Intrinsic)]

    [key] = conditional("ErasureRequestFunction")
    assert key == Intrinsic(
        "Fn::If",
        [
            "UserIdHmacOn",
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": Intrinsic("Ref", "UserIdKeySecret"),
            },
            Intrinsic("Ref", "AWS::NoValue"),
        ],
    )
    assert conditional("CollectionFunction") == [key]
    assert set(EXPECTED_GRANTS["ErasureRequestFunction"]) == {"BatchesTable", "UserIdKeySecret"}


def test_tables_are_retained_recoverable_and_encrypted() -> None:
    template = load_template()
    assert not resources_of_type(template, "AWS::Serverless::SimpleTable")
    tables = resources_of_type(template, "AWS::DynamoDB::Table")
    assert set(tables) == {
        "SessionsTable",
        "SessionIdsTable",
        "EventsTable",
        "BatchesTable",
        "ImprovementTasksTable",
        "UserDatasetsTable",
    }
    for logical_id, table in tables.items():
        properties = table["Properties"]
        assert table.get("DeletionPolicy") == "Retain", logical_id
        assert table.get("UpdateReplacePolicy") == "Retain", logical_id
        assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, logical_id
        assert properties["SSESpecification"]["SSEEnabled"] is True, logical_id


STATES = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
EXPORT_MACHINE_ARN = f"{STATES}:stateMachine:${{AWS::StackName}}-export"
EXPORT_EXECUTIONS = f"{STATES}:execution:${{AWS::StackName}}-export/*"
# What each state machine's role may do beyond logs and traces: action set -> the resources allowed.
MACHINE_GRANTS: dict[str, dict[frozenset[str], set[Any]]] = {
    "ReleaseStateMachine": {
        frozenset({"lambda:InvokeFunction"}): {
            Intrinsic("Fn::GetAtt", "BatchReleaseFunction.Arn"),
            Intrinsic("Fn::Sub", "${BatchReleaseFunction.Arn}:*"),  # its versions and aliases
        },
    },
    "ExportStateMachine": {
        frozenset({"lambda:InvokeFunction"}): {
            Intrinsic("Fn::GetAtt", "ExportFunction.Arn"),
            Intrinsic("Fn::Sub", "${ExportFunction.Arn}:*"),
        },
        # A Distributed Map runs its items as child executions of the machine itself.
        frozenset({"states:StartExecution"}): {Intrinsic("Fn::Sub", EXPORT_MACHINE_ARN)},
        frozenset({"states:DescribeExecution", "states:StopExecution"}): {Intrinsic("Fn::Sub", EXPORT_EXECUTIONS)},
        # The Map's ItemReader reads the plan's ranges.
        frozenset({"s3:GetObject"}): {Intrinsic("Fn::Sub", "${DatasetBucket.Arn}/exports/*")},
    },
}


MACHINE_GRANTS["ErasureStateMachine"] = {
    frozenset({"lambda:InvokeFunction"}): {
        Intrinsic("Fn::GetAtt", "ErasureFunction.Arn"),
        Intrinsic("Fn::Sub", "${ErasureFunction.Arn}:*"),
    },
}


def machine_role(template: dict[str, Any], machine: dict[str, Any]) -> dict[str, Any]:
    assert "Policies" not in machine, "a state machine uses its explicit role, not SAM-generated policies"
    role_ref = machine["Role"]
    assert isinstance(role_ref, Intrinsic)
    assert role_ref.name == "Fn::GetAtt"
    role = template["Resources"][resource_name(role_ref)]
    assert role["Type"] == "AWS::IAM::Role"
    properties: dict[str, Any] = role["Properties"]
    assert "ManagedPolicyArns" not in properties
    [trust] = properties["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Principal"] == {"Service": Intrinsic("Fn::Sub", "states.${AWS::URLSuffix}")}
    return properties


@pytest.mark.parametrize("machine_id", sorted(MACHINE_GRANTS))
def test_state_machine_roles_are_least_privilege(machine_id: str) -> None:
    template = load_template()
    machine = resources_of_type(template, "AWS::Serverless::StateMachine")[machine_id]["Properties"]
    role = machine_role(template, machine)
    log_group = machine["Logging"]["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]
    allowed = MACHINE_GRANTS[machine_id]
    granted: set[frozenset[str]] = set()
    for statement in statements(role["Policies"]):
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource"}, statement
        actions = frozenset(as_list(statement["Action"]))
        resources = as_list(statement["Resource"])
        if actions in allowed:
            assert set(resources) <= allowed[actions], (actions, resources)
            granted.add(actions)
        elif actions <= LOG_WRITE_ACTIONS:
            assert resources == [log_group]
        elif actions <= LOG_DELIVERY_ACTIONS | XRAY_ACTIONS:
            assert resources == ["*"]
        else:
            raise AssertionError(f"{machine_id} may not {sorted(actions)} on {resources}")
    assert granted == set(allowed), f"{machine_id} lacks {set(allowed) - granted}"


def test_only_the_erasure_function_may_delete_object_versions_and_only_in_the_dataset_bucket() -> None:
    """Deleting a version destroys what a versioned bucket keeps for recovery: only the erasure's rewrite
    needs it (the older versions hold the erased user's lines), so no other role of the stack has it."""
    template = load_template()
    holders: dict[str, list[Any]] = {}
    functions = resources_of_type(template, "AWS::Serverless::Function")
    roles = resources_of_type(template, "AWS::IAM::Role")
    documents = [
        (function_id, function["Properties"].get("Policies", [])) for function_id, function in functions.items()
    ]
    documents += [(role_id, role["Properties"].get("Policies", [])) for role_id, role in roles.items()]
    for holder, policies in documents:
        for statement in statements(policies):
            if any(action in ("s3:DeleteObjectVersion", "s3:*", "*") for action in as_list(statement["Action"])):
                holders.setdefault(holder, []).extend(as_list(statement["Resource"]))
    assert holders == {"ErasureFunction": [Intrinsic("Fn::Sub", "${DatasetBucket.Arn}/*")]}
    assert not resources_of_type(template, "AWS::IAM::Policy")  # no policy attached elsewhere


def test_the_buckets_are_private_encrypted_tls_only_and_the_datasets_versioned_and_kept() -> None:
    resources = load_template()["Resources"]
    policies = {
        resource["Properties"]["Bucket"]: resource["Properties"]["PolicyDocument"]["Statement"]
        for resource in resources_of_type(load_template(), "AWS::S3::BucketPolicy").values()
    }
    for bucket_id in ("DatasetBucket", "AthenaResultsBucket"):
        properties = resources[bucket_id]["Properties"]
        [rule] = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
        assert properties["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        [tls] = policies[Intrinsic("Ref", bucket_id)]
        assert (tls["Effect"], tls["Principal"], tls["Action"]) == ("Deny", "*", "s3:*")
        assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert set(tls["Resource"]) == {
            Intrinsic("Fn::GetAtt", f"{bucket_id}.Arn"),
            Intrinsic("Fn::Sub", f"${{{bucket_id}.Arn}}/*"),
        }
    datasets = resources["DatasetBucket"]
    assert datasets["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    assert (datasets["DeletionPolicy"], datasets["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_the_sessions_table_is_queryable_with_no_crawler_and_matches_the_session_object() -> None:
    from clickstream.domain.datasets.layout import dataset_folder
    from clickstream.models import SessionView

    table = load_template()["Resources"]["SessionsGlueTable"]["Properties"]["TableInput"]
    parameters = table["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.batch_id.type"] == "injected"
    location = parameters["storage.location.template"]
    assert location == Intrinsic("Fn::Sub", "s3://${DatasetBucket}/" + dataset_folder("${!batch_id}") + "/")
    assert table["PartitionKeys"] == [{"Name": "batch_id", "Type": "string"}]
    storage = table["StorageDescriptor"]
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    assert [column["Name"] for column in storage["Columns"]] == list(SessionView.model_fields)
    workgroup = load_template()["Resources"]["DatasetsWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert workgroup["EnforceWorkGroupConfiguration"] is True
    assert workgroup["ResultConfiguration"]["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}


def test_the_judgments_table_is_queryable_with_no_crawler_where_the_export_writes_them() -> None:
    from clickstream.domain.datasets.layout import judgments_key

    table = load_template()["Resources"]["JudgmentsGlueTable"]["Properties"]["TableInput"]
    parameters = table["Parameters"]
    assert (parameters["projection.enabled"], parameters["projection.batch_id.type"]) == ("true", "injected")
    folder = judgments_key("${!batch_id}").rsplit("/", 1)[0]
    assert parameters["storage.location.template"] == Intrinsic("Fn::Sub", f"s3://${{DatasetBucket}}/{folder}/")
    assert table["PartitionKeys"] == [{"Name": "batch_id", "Type": "string"}]
    serde = table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
    assert serde == "org.openx.data.jsonserde.JsonSerDe"


def test_the_tasks_queue_is_encrypted_and_dead_letters_after_five_receives_under_an_alarm() -> None:
    resources = load_template()["Resources"]
    queues = resources_of_type(load_template(), "AWS::SQS::Queue")
    assert all(queue["Properties"]["SqsManagedSseEnabled"] is True for queue in queues.values())
    redrive = resources["ImprovementTasksQueue"]["Properties"]["RedrivePolicy"]
    assert redrive == {
        "deadLetterTargetArn": Intrinsic("Fn::GetAtt", "ImprovementTasksDeadLetterQueue.Arn"),
        "maxReceiveCount": 5,
    }
    watched = {
        alarm["Properties"]["Dimensions"][0]["Value"]
        for alarm in resources_of_type(load_template(), "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    assert watched == {
        Intrinsic("Fn::GetAtt", "ImprovementTasksDeadLetterQueue.QueueName"),
        Intrinsic("Fn::GetAtt", "OutboxDeadLetterQueue.QueueName"),
    }
