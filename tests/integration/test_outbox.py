"""Every release is announced, whichever path made it, and none is lost (contract 7.1): the batches table's
stream, delivered to the real outbox function as Lambda's event source mapping does (local/streams.py),
puts BatchReleased on EventBridge (the embedded moto's); a subscriber's queue shows what was announced.
The template's filter criteria let through exactly the changes the outbox announces."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from clickstream.service import Clickstream
from local.apigateway import HttpResult
from local.dynamodb import EmbeddedAws
from local.streams import StreamRelay
from tests.conftest import local_functions
from tests.support import load_event, unique
from tests.support.datasets import run_export
from tests.support.domain import new_session
from tests.support.streams import Image, all_records, filters_agree


@dataclass
class Subscriber:
    relay: StreamRelay
    queue_url: str
    sqs: Any

    def announced(self) -> list[dict[str, Any]]:
        self.relay.pump()
        received = []
        while messages := self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                received.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return received


@pytest.fixture
def subscriber(dynamodb: EmbeddedAws, tables: dict[str, str]) -> Subscriber:
    session = boto3.session.Session()
    sqs = session.client("sqs", endpoint_url=dynamodb.endpoint)
    events = session.client("events", endpoint_url=dynamodb.endpoint)
    queue_url = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all-clickstream", EventPattern=json.dumps({"source": ["clickstream"]}))
    events.put_targets(Rule="all-clickstream", Targets=[{"Id": "queue", "Arn": queue_arn}])
    relay = StreamRelay(dynamodb.endpoint, tables["BatchesTable"], "OutboxFunction", local_functions())
    return Subscriber(relay, queue_url, sqs)


def released(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert {event["detail-type"] for event in events} <= {"BatchReleased"}
    assert all(event["source"] == "clickstream" for event in events)
    return [event["detail"] for event in events]


def test_a_release_over_http_and_a_direct_one_are_both_announced(
    subscriber: Subscriber,
    service: Clickstream,
    invoke: Callable[[str, Any], Any],
    invoke_http: Callable[[str, dict[str, Any]], HttpResult],
) -> None:
    service.register(new_session())
    over_http = invoke_http("BatchReleaseFunction", load_event("batch_release")).body
    service.register(new_session())
    direct = invoke("BatchReleaseFunction", {"release_id": "release-direct"})
    assert released(subscriber.announced()) == [over_http, direct]
    invoke_http("BatchReleaseFunction", load_event("batch_release"))  # the same release again: no new announcement
    assert subscriber.announced() == []


def test_a_release_acknowledged_while_nothing_announced_is_announced_later(
    subscriber: Subscriber, service: Clickstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The release is in the table's stream whatever happened to the function that made it; the outbox
    retries what it could not put on the bus (the partial batch response), so nothing is lost."""
    from clickstream.errors import StorageUnavailable
    from clickstream.storage.bus import EventBus

    service.register(new_session())
    release = service.release("release-crash").model_dump()  # acknowledged; the caller crashed right after
    put = EventBus.put
    outages = [StorageUnavailable()]

    def down_once(bus: EventBus, detail_type: str, detail: dict[str, Any]) -> None:
        if outages:
            raise outages.pop()
        put(bus, detail_type, detail)

    monkeypatch.setattr(EventBus, "put", down_once)
    assert subscriber.announced() == []  # EventBridge refused it: the record is read again
    assert released(subscriber.announced()) == [release]


def test_changes_that_announce_nothing_are_ignored(subscriber: Subscriber, service: Clickstream) -> None:
    service.register(new_session())  # a pointer, a batch opened
    assert subscriber.announced() == []


def test_an_operator_replays_what_the_outbox_gave_up_on(
    subscriber: Subscriber, service: Clickstream, invoke: Callable[[str, Any], Any], tables: dict[str, str]
) -> None:
    """After the dead-letter queue alarm: the batch's announcements are sent again from its records, the
    same details as the first time, the export's too."""
    service.register(new_session())
    release = service.release("release-replayed")
    lake_dir = Path(service.settings.lake_dir)
    run_export(service, lake_dir, "release-replayed")
    first = subscriber.announced()
    assert [event["detail-type"] for event in first] == ["BatchReleased", "BatchExported"]
    replayed = invoke("OutboxFunction", {"replay": {"batch_ids": [release.batch_id]}})
    assert replayed == {release.batch_id: ["BatchReleased", "BatchExported"]}
    again = subscriber.announced()
    assert [(event["detail-type"], event["detail"]) for event in again] == [
        (event["detail-type"], event["detail"]) for event in first
    ]


def test_a_replay_reports_names_it_does_not_know_and_goes_on(
    subscriber: Subscriber, service: Clickstream, invoke: Callable[[str, Any], Any]
) -> None:
    from pydantic import ValidationError

    service.register(new_session())
    release = service.release("release-known")
    subscriber.announced()
    replay = {"replay": {"batch_ids": ["b-unknown", release.batch_id], "session_ids": ["sess-nobody"]}}
    assert invoke("OutboxFunction", replay) == {
        "b-unknown": "not_found",
        release.batch_id: ["BatchReleased"],
        "sess-nobody": "not_found",
    }
    assert released(subscriber.announced()) == [release.model_dump()]
    with pytest.raises(ValidationError, match="batch_ids or session_ids"):
        invoke("OutboxFunction", {"replay": {"batch_ids": []}})


# --- the template's filter criteria ---------------------------------------------------------------------------


def test_the_stream_filters_pass_exactly_the_changes_the_outbox_announces(
    dynamodb: EmbeddedAws, tables: dict[str, str], service: Clickstream
) -> None:
    """Every change the batches table's stream carried in a release and an export, checked both ways."""
    from tests.support.datasets import run_export

    service.register(new_session())
    service.release("release-filtered")
    run_export(service, Path(service.settings.lake_dir), "release-filtered")
    relay = StreamRelay(dynamodb.endpoint, tables["BatchesTable"], "OutboxFunction", local_functions())
    records = all_records(relay)
    assert len(records) >= 8  # pointer, seal, release, batch record, counts, export claim, export finish
    from clickstream.domain.announcements import exported
    from clickstream.domain.announcements import released as announces_release
    from clickstream.storage.changes import decode_change

    lake = service.lake

    def announces(old: Image, new: Image) -> bool:
        change = decode_change(old, new)
        return announces_release(change) is not None or exported(change, lake) is not None

    passed = filters_agree(records, "BatchesStream", announces)
    assert passed == 2  # the release settled, the dataset exported


# --- the erasure machine started ------------------------------------------------------------------------------


def test_each_erasure_requested_starts_its_state_machine_once(
    dynamodb: EmbeddedAws, tables: dict[str, str], service: Clickstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The erasure record's INSERT, however often the stream delivers it, starts one execution named by the
    erasure id, with the id as its input (ExecutionAlreadyExists is taken as started)."""
    from clickstream import runtime

    sfn = boto3.session.Session().client("stepfunctions", endpoint_url=dynamodb.endpoint)
    machine_arn = sfn.create_state_machine(
        name=unique("erasure"),
        definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/ErasureStateMachine",
    )["stateMachineArn"]
    monkeypatch.setenv("ERASURE_STATE_MACHINE_ARN", machine_arn)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", dynamodb.endpoint)
    runtime.reset()
    requested = service.erase_user("user-gone")
    assert service.erase_user("user-gone").erasure_id == requested.erasure_id  # the same request, one record
    for _ in range(2):  # the stream read twice over, as after a retried batch
        relay = StreamRelay(dynamodb.endpoint, tables["BatchesTable"], "OutboxFunction", local_functions())
        relay.pump()
    executions = sfn.list_executions(stateMachineArn=machine_arn)["executions"]
    assert [execution["name"] for execution in executions] == [requested.erasure_id]
    described = sfn.describe_execution(executionArn=executions[0]["executionArn"])
    assert json.loads(described["input"]) == {"erasure_id": requested.erasure_id}


def test_the_stream_filters_pass_exactly_the_erasure_records_stored(
    dynamodb: EmbeddedAws, tables: dict[str, str], service: Clickstream
) -> None:
    """Every change of the batches table in an erasure's life (its lock, record, the active set, its
    progress and close) and a release beside it: the filters pass the release and the record's INSERT."""
    from clickstream.domain.announcements import erasure_requested, released
    from clickstream.storage.changes import decode_change
    from local.erasures import LocalErasures

    service.register(new_session(user_id="user-gone"))
    service.release("release-beside")
    erasure = service.erase_user("user-gone")
    assert LocalErasures(local_functions()).erase(erasure.erasure_id) is not None
    relay = StreamRelay(dynamodb.endpoint, tables["BatchesTable"], "OutboxFunction", local_functions())
    records = all_records(relay)

    def acts_on(old: Image, new: Image) -> bool:
        change = decode_change(old, new)
        return released(change) is not None or erasure_requested(change) is not None

    assert filters_agree(records, "BatchesStream", acts_on) == 2  # the release settled, the erasure stored
