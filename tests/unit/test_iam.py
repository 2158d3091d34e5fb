"""The policy evaluation behind the runtime least-privilege check (local/iam.py, local/least_privilege.py)."""

from __future__ import annotations

import pytest

from local.iam import function_policy
from local.least_privilege import requested
from local.template import load_template, resources_of_type

ARN = "arn:aws:{service}:us-east-1:123456789012:{resource}"


@pytest.fixture(autouse=True)
def local_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("SESSIONS_TABLE", "sessions-t")
    monkeypatch.setenv("EVENTS_TABLE", "events-t")
    monkeypatch.setenv("LAKE_BUCKET", "lake-b")
    monkeypatch.setenv("EVENT_BUS_NAME", "bus-e")
    monkeypatch.setenv("TASKS_QUEUE_URL", "http://127.0.0.1:1/123456789012/tasks-q")


def allowed(function_id: str, service: str, operation: str, **params: object) -> bool:
    policy = function_policy(function_id)
    return all(policy.allows(action, resource) for action, resource in requested(service, operation, params))


def test_every_functions_policy_resolves_to_local_arns() -> None:
    for function_id in resources_of_type(load_template(), "AWS::Serverless::Function"):
        assert function_policy(function_id).statements, function_id


def test_tables_and_indexes_are_granted_one_by_one_under_the_names_the_environment_gives() -> None:
    assert allowed("CollectionFunction", "dynamodb", "PutItem", TableName="events-t")
    assert not allowed("CollectionFunction", "dynamodb", "PutItem", TableName="EventsTable")  # another table
    assert not allowed("CollectionFunction", "dynamodb", "Query", TableName="events-t")  # only its index
    assert allowed("CollectionFunction", "dynamodb", "Query", TableName="events-t", IndexName="by_created_at")
    assert not allowed("CollectionFunction", "dynamodb", "Query", TableName="sessions-t", IndexName="by_created_at")
    assert not allowed("UseForImprovementFunction", "dynamodb", "UpdateItem", TableName="SessionIdsTable")
    writes: dict[str, object] = {"RequestItems": {"events-t": []}}
    assert not allowed("CollectionFunction", "dynamodb", "BatchWriteItem", **writes)


def test_s3_keys_match_the_prefixes_and_wildcards_span_slashes() -> None:
    key = "sessions/batch_id=b-1/part-00000.jsonl.gz"
    assert allowed("ExportFunction", "s3", "PutObject", Bucket="lake-b", Key=key)
    assert allowed("ExportFunction", "s3", "UploadPart", Bucket="lake-b", Key=key)  # multipart: s3:PutObject
    assert not allowed("ExportFunction", "s3", "GetObject", Bucket="lake-b", Key=key)  # only exports/ is read
    assert allowed("ExportFunction", "s3", "HeadObject", Bucket="lake-b", Key="exports/batch_id=b-1/ranges.json")
    assert not allowed("ExportFunction", "s3", "PutObject", Bucket="other-b", Key=key)
    assert not allowed("ExportFunction", "s3", "ListObjectsV2", Bucket="lake-b")
    assert not allowed("CollectionFunction", "s3", "PutObject", Bucket="lake-b", Key=key)


def test_queues_and_buses_are_named_by_their_urls_and_names() -> None:
    assert allowed("OutboxFunction", "sqs", "SendMessage", QueueUrl="http://127.0.0.1:1/123456789012/tasks-q")
    assert not allowed("OutboxFunction", "sqs", "ReceiveMessage", QueueUrl="http://127.0.0.1:1/123456789012/tasks-q")
    assert not allowed("OutboxFunction", "sqs", "SendMessage", QueueUrl="http://127.0.0.1:1/123456789012/other-q")
    assert allowed("OutboxFunction", "events", "PutEvents", Entries=[{"EventBusName": "bus-e"}])
    assert not allowed("OutboxFunction", "events", "PutEvents", Entries=[{"EventBusName": "bus-e"}, {}])  # default
    assert not allowed("ExportFunction", "events", "PutEvents", Entries=[{"EventBusName": "bus-e"}])


def test_services_without_a_grant_are_denied() -> None:
    assert not allowed("OutboxFunction", "cloudwatch", "PutMetricData", Namespace="Clickstream")
    arn = ARN.format(service="states", resource="stateMachine:local-export")
    assert not allowed("ExportFunction", "stepfunctions", "StartExecution", stateMachineArn=arn)
