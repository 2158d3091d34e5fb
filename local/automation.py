"""What runs behind the API in AWS, run locally (contracts 7.5, 12): the outbox reading the batches and
tasks tables' streams (tasks go to the embedded SQS queue), the bus's events logged one JSON line each,
and each released batch exported as the export state machine does it (wait EXPORT_DELAY_SECONDS, plan,
wait for the writes accepted before the fence, write the ranges in parallel, judge, finish, expire the items
when RETENTION_DAYS is set; on failure, let go); each erasure requested is run as the erasure state machine
runs it (local/erasures.py), so `make run` erases a user within seconds.

Everything goes through the template's real functions and the embedded moto's real APIs: the outbox
function puts its events on moto's EventBridge, a rule there delivers them to a queue, and this loop
reads that queue as the export state machine's rule would.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from local.erasures import LocalErasures
from local.streams import StreamRelay

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

    from local.harness import LocalFunctions

log = logging.getLogger("clickstream.local")
EVENTS_QUEUE = "local-clickstream-events"
EXPORT_WORKERS = 4


class LocalAutomation:
    def __init__(
        self, aws_endpoint: str, functions: LocalFunctions, tables: dict[str, str], lake_dir: Path, delay_s: float
    ) -> None:
        self._functions = functions
        self._lake_dir = lake_dir
        self._delay_s = delay_s
        self._outbox = [
            StreamRelay(aws_endpoint, tables[table_id], "OutboxFunction", functions)
            for table_id in ("BatchesTable", "ImprovementTasksTable")
        ]
        self.erasures = LocalErasures(functions)
        # The batches stream read a second time, for the erasure records (the outbox's StartExecution in AWS).
        self._erasure_starts = StreamRelay(aws_endpoint, tables["BatchesTable"], "ErasureStarts", self.erasures)
        session = boto3.session.Session()
        self._sqs: SQSClient = session.client("sqs", endpoint_url=aws_endpoint)
        self._queue_url = self._subscribe(session, aws_endpoint)
        self._exports = ThreadPoolExecutor(2, thread_name_prefix="local-export")
        self._stop = threading.Event()
        self.exports_done = 0

    def _subscribe(self, session: boto3.session.Session, endpoint: str) -> str:
        """A rule on the default bus sending every clickstream event to a queue this loop reads."""
        queue_url = self._sqs.create_queue(QueueName=EVENTS_QUEUE)["QueueUrl"]
        queue_arn = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events = session.client("events", endpoint_url=endpoint)
        events.put_rule(Name="local-clickstream", EventPattern=json.dumps({"source": ["clickstream"]}))
        events.put_targets(Rule="local-clickstream", Targets=[{"Id": "local-events", "Arn": queue_arn}])
        return queue_url

    def pump(self) -> None:
        """One round: relay the stream, then handle the events it produced."""
        for relay in self._outbox:
            relay.pump()
        self._erasure_starts.pump()
        messages = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            event = json.loads(message["Body"])
            print(json.dumps({"event": event["detail-type"], "detail": event["detail"]}), flush=True)
            if event["detail-type"] == "BatchReleased":
                self._exports.submit(self.export, event["detail"])
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])

    def run(self, interval_s: float = 0.2) -> threading.Thread:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.pump()
                except Exception:  # keep serving; the next round retries what is left
                    log.exception("local automation round failed")
                self._stop.wait(interval_s)

        thread = threading.Thread(target=loop, name="local-automation", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
        self._exports.shutdown(wait=False, cancel_futures=True)
        self.erasures.stop()

    def export(self, released: dict[str, Any]) -> dict[str, Any] | None:
        """The export state machine's steps, for one BatchReleased detail."""
        time.sleep(self._delay_s)
        export_id = f"local-export-{uuid.uuid4().hex}"
        plan = self._step({"step": "plan", "release_id": released["release_id"], "export_id": export_id})
        if plan.get("skip"):
            return None
        ranges = json.loads((self._lake_dir / plan["ranges_key"]).read_text(encoding="utf-8"))
        try:
            _sleep_until(plan["job"]["read_after"])  # the machine's WaitForAcceptedWrites
            self._each_range(ranges, {"step": "range", "job": plan["job"]})
            judged = self._step({"step": "judge", "job": plan["job"], "ranges": plan["ranges"]})
            finished = self._step({"step": "finish", "job": plan["job"], "ranges": plan["ranges"], "judged": judged})
        except Exception:
            log.exception("export of batch %s failed", released["batch_id"])
            self._step({"step": "fail", "batch_id": released["batch_id"], "export_id": export_id})
            return None
        self.exports_done += 1
        if finished["expires_at"] is not None:  # retention, as the machine's ExpireRanges map
            _sleep_until(finished["expire_after"])  # WaitForScheduledTasks
            self._each_range(ranges, {"step": "expire", "job": plan["job"], "expires_at": finished["expires_at"]})
        return finished

    def _each_range(self, ranges: list[dict[str, int]], step: dict[str, Any]) -> None:
        with ThreadPoolExecutor(EXPORT_WORKERS, thread_name_prefix="local-range") as pool:
            list(pool.map(lambda number_range: self._step({**step, "range": number_range}), ranges))

    def _step(self, payload: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._functions.invoke("ExportFunction", payload)
        return result


def _sleep_until(at_ms: int) -> None:
    time.sleep(max(0.0, at_ms / 1000 - time.time()))
