"""The runtime least-privilege check (local/least_privilege.py): a call a function's policy does not grant
fails as AWS fails it, before it reaches the resource; a granted one goes through."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError

from clickstream.records import StoredEvent
from clickstream.service import Clickstream
from clickstream.settings import Settings
from clickstream.storage import Storage
from clickstream.storage.lake import S3Lake
from clickstream.storage.plumbing import new_client, s
from local.apigateway import HttpResult
from local.dynamodb import EmbeddedAws
from local.lambda_runtime import running_as
from tests.support import load_event, now_ms
from tests.support.domain import unmarked_session
from tests.support.privilege import serving_functions

Invoke = Callable[[str, dict[str, Any]], HttpResult]


def denied(error: ClientError) -> tuple[str, int]:
    return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]


def test_a_write_outside_the_functions_policy_is_refused_as_dynamodb_refuses_it(settings: Settings) -> None:
    client = new_client(settings)
    item = {"pk": s("pointer"), "note": s("never written")}
    with running_as("BatchSessionsFunction"), pytest.raises(ClientError) as refused:
        client.put_item(TableName=settings.batches_table, Item=item)
    assert denied(refused.value) == ("AccessDeniedException", 400)
    message = refused.value.response["Error"]["Message"]
    assert "BatchSessionsFunction is not authorized to perform: dynamodb:PutItem" in message
    assert f":table/{settings.batches_table}" in message
    assert "Item" not in client.get_item(TableName=settings.batches_table, Key={"pk": s("pointer")})  # not applied
    with running_as("BatchSessionsFunction"):  # what it is granted goes through
        assert "Item" not in client.get_item(TableName=settings.batches_table, Key={"pk": s("pointer")})
    with running_as("BatchSessionsFunction"), pytest.raises(ClientError) as on_index:
        client.query(  # the index it may query, on the wrong table
            TableName=settings.sessions_table,
            IndexName="by_created_at",
            KeyConditionExpression="session_id = :id",
            ExpressionAttributeValues={":id": s("sess-x")},
        )
    assert denied(on_index.value) == ("AccessDeniedException", 400)


def test_sqs_eventbridge_and_s3_calls_are_checked_too(
    settings: Settings, dynamodb: EmbeddedAws, tmp_path: Path
) -> None:
    session = boto3.session.Session()
    sqs = session.client("sqs", endpoint_url=dynamodb.endpoint)
    with running_as("CollectionFunction"), pytest.raises(ClientError) as not_sent:
        sqs.send_message(QueueUrl=settings.tasks_queue_url, MessageBody="{}")
    assert denied(not_sent.value) == ("AccessDenied", 403)
    with running_as("OutboxFunction"):
        sqs.send_message(QueueUrl=settings.tasks_queue_url, MessageBody="{}")
    events = session.client("events", endpoint_url=dynamodb.endpoint)
    entry = {"Source": "clickstream", "DetailType": "BatchReleased", "Detail": "{}", "EventBusName": "other-bus"}
    with running_as("OutboxFunction"), pytest.raises(ClientError) as other_bus:
        events.put_events(Entries=[entry])  # type: ignore[list-item]
    assert denied(other_bus.value) == ("AccessDeniedException", 400)
    s3 = session.client("s3", endpoint_url=dynamodb.endpoint)
    s3.create_bucket(Bucket="policy-check-lake")
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("LAKE_BUCKET", "policy-check-lake")
        with running_as("ExportFunction"):
            s3.put_object(Bucket="policy-check-lake", Key="exports/batch_id=b/work", Body=b"x")
            with pytest.raises(ClientError) as elsewhere:
                s3.put_object(Bucket="policy-check-lake", Key="elsewhere/x", Body=b"x")
            assert denied(elsewhere.value) == ("AccessDenied", 403)
            # Without s3:ListBucket, S3 does not say a key is missing: 403, not 404.
            with pytest.raises(ClientError) as missing:
                s3.get_object(Bucket="policy-check-lake", Key="exports/batch_id=b/none")
            assert denied(missing.value) == ("AccessDenied", 403)
            assert s3.get_object(Bucket="policy-check-lake", Key="exports/batch_id=b/work")["Body"].read() == b"x"
            # upload_file runs in s3transfer's threads: the check follows the function there.
            part = tmp_path / "part"
            part.write_bytes(b"part")
            lake = S3Lake(s3, "policy-check-lake")
            lake.put_file("sessions/batch_id=b/part-00000.jsonl.gz", part)
            with pytest.raises(S3UploadFailedError, match="AccessDenied"):
                lake.put_file("elsewhere/part", part)


def test_calls_outside_every_function_are_not_checked(settings: Settings) -> None:
    client = new_client(settings)  # test setup and assertions: no function runs
    client.put_item(TableName=settings.batches_table, Item={"pk": s("setup"), "note": s("written")})
    assert "Item" in client.get_item(TableName=settings.batches_table, Key={"pk": s("setup")})


def test_scheduling_a_session_whose_registration_stopped_before_its_mark_is_no_500(
    service: Clickstream, storage: Storage, invoke_http: Invoke
) -> None:
    """UseForImprovementFunction may not write the session-ids table: it schedules the session (in its slot,
    so registered) without completing the mark, which a collection read or a retried registration does."""
    unmarked_session(service, storage, "sess-unmarked")
    assert storage.events.put("sess-unmarked", StoredEvent("e-1", "shoe-17", "click", now_ms(), None))  # setup
    event = load_event("use_for_improvement")
    event["body"] = json.dumps({"session_id": "sess-unmarked"})
    scheduled = invoke_http("UseForImprovementFunction", event)
    assert scheduled.status == 200, scheduled.body
    assert scheduled.body["status"] == "scheduled"
    claim = storage.claims.get("sess-unmarked")
    assert claim is not None
    assert not claim.is_registered  # left for the collection side
    marked = load_event("mark_irrelevant")
    marked["body"] = json.dumps({"session_id": "sess-unmarked"})
    assert invoke_http("CollectionFunction", marked).status == 200
    claim = storage.claims.get("sess-unmarked")
    assert claim is not None
    assert claim.is_registered


def test_every_entry_point_of_the_domain_is_checked_as_the_function_that_calls_it() -> None:
    served = {method for owner, method in serving_functions() if owner is Clickstream}
    public = {name for name, member in vars(Clickstream).items() if callable(member) and not name.startswith("_")}
    assert served == public
    assert serving_functions()[(Clickstream, "use_for_improvement")] == "UseForImprovementFunction"
