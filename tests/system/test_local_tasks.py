"""`make run` delivers improvement tasks to an embedded SQS queue (contract 9.5), and the README's worker
loop, run as written against it (one round instead of forever), completes them through the client."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import requests

from tests.support import new_session_body
from tests.support.processes import local_server

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

TIMEOUT = 30
README = Path(__file__).parents[2] / "README.md"


def worker_loop() -> str:
    """The README's worker loop: the Python block of its improvement-tasks section."""
    section = README.read_text(encoding="utf-8").split("## Improvement tasks", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match
    return match.group(1)


def queue_client(queue_url: str) -> SQSClient:
    return boto3.client(
        "sqs",
        endpoint_url=queue_url.split("/123456789012/", maxsplit=1)[0],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the embedded moto takes any
    )


def test_the_readme_worker_loop_completes_the_tasks_make_run_delivers(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with local_server(log) as url, requests.Session() as http:
        [queue_url] = re.findall(r"^Improvement tasks queue: (\S+)$", log.read_text(), re.MULTILINE)
        # As TaskVisibilityTimeoutSeconds=1 would: a task kept by the worker comes back within the test.
        sqs = queue_client(queue_url)
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "1"})
        for n in range(3):
            assert http.post(f"{url}/session", json=new_session_body(f"work-{n}"), timeout=TIMEOUT).ok
            clicks = {"session_id": f"work-{n}", "events": [{"event_id": "c1", "object_id": "shoe-17"}]}
            assert http.post(f"{url}/session/events", json=clicks, timeout=TIMEOUT).ok
            scheduled = http.post(
                f"{url}/session/use-for-improvement", json={"session_id": f"work-{n}"}, timeout=TIMEOUT
            )
            assert scheduled.json()["status"] == "scheduled"

        code = (
            worker_loop()
            .replace(
                'QUEUE_URL = "http://127.0.0.1:.../123456789012/local-ImprovementTasksQueue"',
                f"QUEUE_URL = {queue_url!r}",
            )
            .replace('Client("http://127.0.0.1:3000")', f"Client({url!r})")
            .replace(
                '    print("improving with session", task["session_id"], "of batch", task["batch_id"])',
                "    work(task)",
            )
            .replace("while True:", "for _ in range(1):")
            .replace("WaitTimeSeconds=20", "WaitTimeSeconds=1")
        )
        attempts: dict[str, int] = {}

        def work(task: dict[str, Any]) -> None:  # work-1 fails once (transient), work-2 can never succeed
            attempts[task["session_id"]] = attempts.get(task["session_id"], 0) + 1
            if task["session_id"] == "work-1" and attempts["work-1"] == 1:
                raise RuntimeError("the model store is down")
            if task["session_id"] == "work-2":
                raise namespace["CannotImprove"]("no positives in this session")

        namespace: dict[str, Any] = {"work": work}
        deadline = time.monotonic() + TIMEOUT
        while attempts.get("work-1", 0) < 2 and time.monotonic() < deadline:  # the outbox relays in the background
            exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
        done = http.get(f"{url}/improvement/tasks", params={"status": "done"}, timeout=TIMEOUT).json()
        failed = http.get(f"{url}/improvement/tasks", params={"status": "failed"}, timeout=TIMEOUT).json()
        assert sorted(task["session_id"] for task in done["tasks"]) == ["work-0", "work-1"]
        assert [(task["session_id"], task["error"]) for task in failed["tasks"]] == [
            ("work-2", "no positives in this session")
        ]
        assert attempts == {"work-0": 1, "work-1": 2, "work-2": 1}  # the transient failure was received again
        assert http.get(f"{url}/improvement/tasks", timeout=TIMEOUT).json() == {"tasks": [], "next": None}


def test_a_worker_long_polling_the_queue_holds_up_no_call_and_receives_a_task_scheduled_meanwhile(
    tmp_path: Path,
) -> None:
    log = tmp_path / "server.log"
    with local_server(log) as url, requests.Session() as http:
        [queue_url] = re.findall(r"^Improvement tasks queue: (\S+)$", log.read_text(), re.MULTILINE)
        sqs = queue_client(queue_url)
        assert http.post(f"{url}/session", json=new_session_body("polled"), timeout=TIMEOUT).ok
        clicks = {"session_id": "polled", "events": [{"event_id": "c1", "object_id": "shoe-17"}]}
        assert http.post(f"{url}/session/events", json=clicks, timeout=TIMEOUT).ok
        received: list[str] = []

        def long_poll() -> None:  # as the README's worker loop waits on an empty queue
            answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=20)
            received.extend(message["Body"] for message in answer.get("Messages", []))

        worker = threading.Thread(target=long_poll)
        worker.start()
        time.sleep(0.5)  # the poll is waiting on the empty queue now
        # Served while the poll waits: under one lock for every request, each call waited out the 20 s poll.
        # (Timed, not `worker.is_alive()`: the poll ends as soon as the task arrives, which may be at once.)
        started = time.monotonic()
        scheduled = http.post(f"{url}/session/use-for-improvement", json={"session_id": "polled"}, timeout=TIMEOUT)
        scheduling_took = time.monotonic() - started
        assert scheduled.json()["status"] == "scheduled"
        started = time.monotonic()
        assert http.get(f"{url}/batches", timeout=TIMEOUT).ok
        listing_took = time.monotonic() - started
        assert max(scheduling_took, listing_took) < 10, (scheduling_took, listing_took)
        worker.join(timeout=TIMEOUT)
        assert [json.loads(body)["session_id"] for body in received] == ["polled"]  # that very poll
