"""Improvement tasks reach their worker (contract 9): every task that becomes pending is delivered to the
template's SQS queue by the outbox (the tasks table's stream, delivered to the real outbox function as
Lambda's event source mapping does), the worker completes it through the real handler, and workers that
poll list tasks oldest first. The worker here reads what a real worker reads: SQS messages."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from clickstream.models import NewEvent
from clickstream.service import Clickstream
from clickstream.settings import Settings
from clickstream.storage import Storage
from local.apigateway import HttpResult
from local.dynamodb import EmbeddedAws
from local.queues import local_queue_name
from local.streams import StreamRelay
from tests.conftest import local_functions
from tests.support import now_ms, sample_event
from tests.support.domain import new_session
from tests.support.streams import all_records, filters_agree

Invoke = Callable[[str, dict[str, Any]], HttpResult]


@dataclass
class Worker:
    """An improvement worker on the tasks queue, and the outbox that fills it."""

    outbox: StreamRelay
    sqs: Any
    queue_url: str
    dead_letter_url: str

    def receive(self, queue_url: str | None = None, *, delete: bool = True) -> list[dict[str, Any]]:
        """The outbox's pending work relayed, then every message on the queue (deleted, unless told)."""
        self.outbox.pump()
        url = queue_url or self.queue_url
        bodies = []
        while messages := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages"
        ):
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                if delete:
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if not delete:
                break
        return bodies


@pytest.fixture
def worker(dynamodb: EmbeddedAws, tables: dict[str, str]) -> Worker:
    sqs = boto3.session.Session().client("sqs", endpoint_url=dynamodb.endpoint)
    urls = {
        queue_id: sqs.get_queue_url(QueueName=local_queue_name(queue_id))["QueueUrl"]
        for queue_id in ("ImprovementTasksQueue", "ImprovementTasksDeadLetterQueue")
    }
    outbox = StreamRelay(dynamodb.endpoint, tables["ImprovementTasksTable"], "OutboxFunction", local_functions())
    return Worker(outbox, sqs, urls["ImprovementTasksQueue"], urls["ImprovementTasksDeadLetterQueue"])


def clicked_session(service: Clickstream, session_id: str) -> str:
    service.register(new_session(session_id))
    service.add_events(session_id, [NewEvent(event_id="c1", object_id="shoe-17")])
    return session_id


def call(invoke_http: Invoke, event_name: str, *, body: Any = None, query: dict[str, str] | None = None) -> HttpResult:
    return invoke_http("UseForImprovementFunction", sample_event(event_name, body=body, query=query))


def schedule(invoke_http: Invoke, session_id: str) -> dict[str, Any]:
    result = call(invoke_http, "use_for_improvement", body={"session_id": session_id})
    assert result.status == 200, result.body
    task: dict[str, Any] = result.body["task"]
    return task


def complete(invoke_http: Invoke, **body: Any) -> HttpResult:
    return call(invoke_http, "complete_task", body=body)


# --- delivery ---------------------------------------------------------------------------------------------


def test_a_scheduled_task_is_delivered_once_with_the_task_object(
    worker: Worker, service: Clickstream, invoke_http: Invoke
) -> None:
    task = schedule(invoke_http, clicked_session(service, "sess-t1"))
    assert task == {**task, "status": "pending", "completed_at": None, "error": None}
    assert worker.receive() == [task]
    assert schedule(invoke_http, "sess-t1") == task  # already pending: the same task, no new delivery
    assert worker.receive() == []


def test_a_crash_right_after_the_task_is_stored_still_delivers_it(
    worker: Worker, service: Clickstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduling call fails after its write (the caller sees an error); the stream still has the task."""
    from clickstream.domain.telemetry import Silent

    clicked_session(service, "sess-crash")

    def crash(*_: Any, **__: Any) -> None:
        raise RuntimeError("the function died here")

    monkeypatch.setattr(Silent, "count", crash)
    with pytest.raises(RuntimeError, match="died"):
        service.use_for_improvement("sess-crash")
    stored = service.storage.tasks.get("sess-crash")
    assert stored is not None
    [delivered] = worker.receive()
    assert (delivered["session_id"], delivered["requested_at"]) == ("sess-crash", stored.requested_at)


def test_a_task_sqs_refused_is_sent_again_until_delivered(
    worker: Worker, service: Clickstream, invoke_http: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clickstream.errors import StorageUnavailable
    from clickstream.storage.queue import TaskQueue

    send = TaskQueue.send
    outages = [StorageUnavailable()]

    def down_once(queue: TaskQueue, task: dict[str, Any]) -> None:
        if outages:
            raise outages.pop()
        send(queue, task)

    monkeypatch.setattr(TaskQueue, "send", down_once)
    task = schedule(invoke_http, clicked_session(service, "sess-retry"))
    assert worker.receive() == []  # the record failed: Lambda hands it over again
    assert worker.receive() == [task]


def test_a_task_received_five_times_and_never_completed_goes_to_the_dead_letter_queue(
    worker: Worker, service: Clickstream, invoke_http: Invoke
) -> None:
    task = schedule(invoke_http, clicked_session(service, "sess-poison"))
    for _ in range(5):  # the worker crashes on it each time: received, never deleted
        assert worker.receive(delete=False) == [task]
    assert worker.receive() == []
    assert worker.receive(worker.dead_letter_url) == [task]


# --- completion -------------------------------------------------------------------------------------------


def test_completing_is_idempotent_and_the_other_status_is_refused(
    worker: Worker, service: Clickstream, invoke_http: Invoke
) -> None:
    task = schedule(invoke_http, clicked_session(service, "sess-done"))
    [message] = worker.receive()
    done = complete(invoke_http, session_id="sess-done", status="done", requested_at=message["requested_at"])
    assert done.status == 200
    assert done.body == {**task, "status": "done", "completed_at": done.body["completed_at"], "error": None}
    assert done.body["completed_at"] >= task["requested_at"]
    again = complete(invoke_http, session_id="sess-done", status="done")  # a duplicate delivery, completed again
    assert (again.status, again.body) == (200, done.body)
    other = complete(invoke_http, session_id="sess-done", status="failed", error="too late")
    assert other.status == 409
    assert "already done" in other.body["message"]
    assert service.storage.tasks.get("sess-done").status == "done"  # type: ignore[union-attr]


def test_a_failed_task_keeps_its_error(service: Clickstream, invoke_http: Invoke) -> None:
    schedule(invoke_http, clicked_session(service, "sess-failed"))
    failed = complete(invoke_http, session_id="sess-failed", status="failed", error="model rejected: no positives")
    assert (failed.status, failed.body["status"], failed.body["error"]) == (
        200,
        "failed",
        "model rejected: no positives",
    )


def test_no_task_to_complete_is_404(service: Clickstream, invoke_http: Invoke) -> None:
    unknown = complete(invoke_http, session_id="sess-nobody", status="done")
    assert (unknown.status, unknown.body) == (404, {"message": "No improvement task for session with id=sess-nobody"})
    clicked_session(service, "sess-unscheduled")
    assert complete(invoke_http, session_id="sess-unscheduled", status="done").status == 404


def test_after_done_the_session_is_scheduled_again_as_a_new_task_and_a_new_delivery(
    worker: Worker, service: Clickstream, invoke_http: Invoke
) -> None:
    first = schedule(invoke_http, clicked_session(service, "sess-again"))
    assert worker.receive() == [first]
    assert complete(invoke_http, session_id="sess-again", status="done").status == 200
    time.sleep(0.002)  # a later requested_at
    second = schedule(invoke_http, "sess-again")
    assert second["requested_at"] > first["requested_at"]
    assert second["status"] == "pending"
    assert worker.receive() == [second]
    # The first task's message, delivered late, completes nothing: the task it names was replaced.
    stale = complete(invoke_http, session_id="sess-again", status="done", requested_at=first["requested_at"])
    assert stale.status == 409
    assert "replaced" in stale.body["message"]
    assert service.storage.tasks.get("sess-again").status == "pending"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"session_id": "s", "status": "maybe"}, "status"),
        ({"session_id": "s"}, "status"),
        ({"status": "done"}, "session_id"),
        ({"session_id": "s", "status": "done", "error": "no"}, "error"),
        ({"session_id": "s", "status": "failed", "error": "x" * 1001}, "error"),
        ({"session_id": "s", "status": "failed", "error": 7}, "error"),
        ({"session_id": "s", "status": "done", "requested_at": "yesterday"}, "requested_at"),
    ],
)
def test_a_bad_completion_is_422_naming_the_field(
    tables: dict[str, str], invoke_http: Invoke, body: dict[str, Any], field: str
) -> None:
    refused = complete(invoke_http, **body)
    assert refused.status == 422, refused.body
    assert field in {problem["field"] for problem in refused.body["errors"]}


# --- polling ----------------------------------------------------------------------------------------------


def test_polling_lists_every_pending_task_once_oldest_first(
    storage: Storage, settings: Settings, invoke_http: Invoke
) -> None:
    """Tasks spread over the index's buckets come back merged in time order, page after page."""
    now = [now_ms() - 60_000]

    def tick() -> int:  # a distinct requested_at for each task, in scheduling order
        now[0] += 7
        return now[0]

    scheduler = Clickstream(storage, settings, clock=tick)
    expected = [scheduler.use_for_improvement(clicked_session(scheduler, f"sess-p{n:02d}")).task for n in range(40)]
    listed: list[dict[str, Any]] = []
    after: str | None = None
    pages = 0
    while True:
        query = {"status": "pending", "limit": "7", **({"after": after} if after else {})}
        page = call(invoke_http, "improvement_tasks", query=query)
        assert page.status == 200, page.body
        listed += page.body["tasks"]
        pages += 1
        after = page.body["next"]
        if after is None:
            break
    assert listed == [task.model_dump() for task in expected if task is not None]
    assert pages == 6  # 40 tasks, 7 a page


def test_polling_by_status_and_bad_queries(service: Clickstream, invoke_http: Invoke) -> None:
    for n in range(3):
        service.use_for_improvement(clicked_session(service, f"sess-s{n}"))
    complete(invoke_http, session_id="sess-s1", status="failed", error="boom")
    pending = call(invoke_http, "improvement_tasks", query={"status": "pending"}).body["tasks"]
    failed = call(invoke_http, "improvement_tasks", query={"status": "failed"}).body["tasks"]
    assert [task["session_id"] for task in pending] == ["sess-s0", "sess-s2"]
    assert [(task["session_id"], task["error"]) for task in failed] == [("sess-s1", "boom")]
    assert call(invoke_http, "improvement_tasks", query={"status": "done"}).body == {"tasks": [], "next": None}
    for query, field in [
        ({"status": "lost"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"after": "yesterday"}, "after"),
    ]:
        refused = call(invoke_http, "improvement_tasks", query=query)
        assert refused.status == 422, (query, refused.body)
        assert field in {problem["field"] for problem in refused.body["errors"]}


# --- the template's filter criteria -------------------------------------------------------------------------


def test_the_tasks_stream_filters_pass_exactly_the_tasks_the_outbox_delivers(
    dynamodb: EmbeddedAws, tables: dict[str, str], service: Clickstream, invoke_http: Invoke
) -> None:
    """Scheduled, scheduled again while pending, completed, scheduled again, expired: checked both ways."""
    from clickstream.domain.announcements import task_pending
    from clickstream.storage.changes import decode_change

    schedule(invoke_http, clicked_session(service, "sess-f"))
    schedule(invoke_http, "sess-f")
    complete(invoke_http, session_id="sess-f", status="done")
    time.sleep(0.002)
    schedule(invoke_http, "sess-f")
    task = service.storage.tasks.get("sess-f")
    assert task is not None
    service.storage.tasks.expire("sess-f", task.batch_id, 1_900_000_000)
    relay = StreamRelay(dynamodb.endpoint, tables["ImprovementTasksTable"], "OutboxFunction", local_functions())
    records = all_records(relay)
    # moto also streams a keys-only INSERT when an update creates an item (DynamoDB streams one record);
    # both ways of checking below pass it by.
    changes = [record["eventName"] for record in records if "status" in record["dynamodb"].get("NewImage", {})]
    assert changes == ["INSERT", "MODIFY", "MODIFY", "MODIFY"]  # scheduled, done, scheduled again, expiry set
    passed = filters_agree(records, "TasksStream", lambda old, new: task_pending(decode_change(old, new)) is not None)
    assert passed == 2  # the first scheduling, and the one after done


# --- upgrading a stack from before the sharded index ---------------------------------------------------------


def test_the_upgrade_indexes_and_delivers_the_tasks_stored_before_the_sharded_index(
    worker: Worker, tables: dict[str, str], invoke_http: Invoke
) -> None:
    from ops.upgrade_tasks import upgrade

    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    legacy = [("sess-old-1", "pending", 1_795_000_000_001), ("sess-old-2", "done", 1_795_000_000_002)]
    for session_id, status, requested_at in legacy:  # as the previous version stored them
        item = {
            "session_id": {"S": session_id},
            "batch_id": {"S": "b-old"},
            "session_number": {"N": "1"},
            "status": {"S": status},
            "requested_at": {"N": str(requested_at)},
        }
        dynamodb.put_item(TableName=tables["ImprovementTasksTable"], Item=item)
    worker.receive()  # the stream saw them as stored (old tasks were never delivered): start clean
    assert call(invoke_http, "improvement_tasks", query={}).body == {"tasks": [], "next": None}

    counts = upgrade(dynamodb, worker.sqs, tables["ImprovementTasksTable"], worker.queue_url)
    assert counts == {"indexed": 2, "delivered": 1}
    [delivered] = worker.receive()
    assert (delivered["session_id"], delivered["status"]) == ("sess-old-1", "pending")
    pending = call(invoke_http, "improvement_tasks", query={}).body["tasks"]
    done = call(invoke_http, "improvement_tasks", query={"status": "done"}).body["tasks"]
    assert ([task["session_id"] for task in pending], [task["session_id"] for task in done]) == (
        ["sess-old-1"],
        ["sess-old-2"],
    )
    assert upgrade(dynamodb, worker.sqs, tables["ImprovementTasksTable"], worker.queue_url) == {
        "indexed": 0,
        "delivered": 0,
    }


def test_a_session_id_of_256_four_byte_characters_is_scheduled_and_listed(
    service: Clickstream, invoke_http: Invoke
) -> None:
    """The index's sort key stays under DynamoDB's 1,024 bytes whatever the session_id (it holds a hash)."""
    from clickstream.storage.tasks import queue_order

    longest = "\U0001d11e" * 256  # 1,024 bytes in UTF-8
    task = schedule(invoke_http, clicked_session(service, longest))
    assert len(queue_order(task["requested_at"], longest).encode("utf-8")) == 46
    listed = call(invoke_http, "improvement_tasks", query={"limit": "1"}).body
    assert [listed_task["session_id"] for listed_task in listed["tasks"]] == [longest]
