"""The erasure state machine, run locally (contract 17): what local/automation.py does for each erasure
record the batches table's stream shows stored, in place of the outbox's StartExecution (no Step Functions
runs here). The same steps through the real ErasureFunction, the same waits (WRITE_SETTLE_MS), the Rewrite
step retried while the batch's export runs, and any failure closing the erasure as failed.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.streams import Functions

log = logging.getLogger("clickstream.local")
ERASURE_PREFIX = "erasure#"
EXPORT_RETRY_S = 2.0  # the machine retries ExportNotReady hourly; an export here takes seconds
EXPORT_RETRIES = 150  # five minutes


def erasures_stored(event: dict[str, Any]) -> list[str]:
    """The erasure ids whose records a stream event shows stored (INSERT), as the template's filter passes."""
    ids = []
    for record in event.get("Records", []):
        new = record.get("dynamodb", {}).get("NewImage") or {}
        if record.get("eventName") == "INSERT" and new.get("pk", {}).get("S", "").startswith(ERASURE_PREFIX):
            ids.append(new["erasure_id"]["S"])
    return ids


class LocalErasures:
    """Stands in for the outbox's start of the erasure machine (a stream reader, like a function) and runs
    each erasure's steps in a thread of its own."""

    def __init__(self, functions: Functions, workers: int = 2, export_retries: int = EXPORT_RETRIES) -> None:
        self._functions = functions
        self._export_retries = export_retries
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="local-erasure")
        self._started: set[str] = set()  # one run per erasure, as the execution's name makes it in AWS
        self.erasures_done = 0

    def invoke(self, function_id: str, event: dict[str, Any]) -> dict[str, Any]:
        for erasure_id in erasures_stored(event):
            if erasure_id not in self._started:
                self._started.add(erasure_id)
                self._pool.submit(self.erase, erasure_id)
        return {"batchItemFailures": []}

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def erase(self, erasure_id: str) -> dict[str, Any] | None:
        """The machine: its states in order, any failure caught (closed as failed, with the error's name)."""
        try:
            finished = self.run(erasure_id)
        except Exception as error:
            log.exception("erasure %s failed", erasure_id)
            return self._step("fail", erasure_id, error=type(error).__name__)
        self.erasures_done += finished is not None
        return finished

    def run(self, erasure_id: str) -> dict[str, Any] | None:
        """The machine's states in order, a failure raised; None when the erasure was closed already."""
        begun = self._step("begin", erasure_id)
        if not begun["open"]:
            return None
        time.sleep(begun["wait_seconds"])  # WaitForRegistrations
        found = self._step("find", erasure_id)
        self._step("unclaim", erasure_id)
        time.sleep(begun["wait_seconds"])  # WaitForWrites
        purged = self._step("purge", erasure_id)
        datasets = [self._dataset(erasure_id, batch) for batch in found["batches"]]
        return self._step("finish", erasure_id, purged=purged, datasets=datasets)

    def _dataset(self, erasure_id: str, batch: dict[str, Any]) -> dict[str, Any]:
        """The Datasets map's item: account, rewrite (each retried while the batch settles or exports; the
        rewrite called again while it says it is not done: RewriteDone), versions; its outcome."""
        accounted = self._retrying("account", erasure_id, **batch)["accounted"]
        while not (rewritten := self._retrying("rewrite", erasure_id, **batch, accounted=accounted))["done"]:
            pass
        versioned = self._step("versions", erasure_id, batch_id=batch["batch_id"])
        return {
            "live": batch["live"],
            "sessions_removed": rewritten["sessions_removed"],
            "events_removed": rewritten["events_removed"],
            "rewritten": versioned["rewritten"],
        }

    def _retrying(self, step: str, erasure_id: str, **payload: Any) -> dict[str, Any]:
        """A step retried on ExportNotReady, as the machine's Retry does (here every EXPORT_RETRY_S)."""
        for attempt in range(self._export_retries + 1):
            try:
                return self._step(step, erasure_id, **payload)
            except Exception as error:
                if type(error).__name__ != "ExportNotReady" or attempt == self._export_retries:
                    raise
                time.sleep(EXPORT_RETRY_S)
        raise AssertionError("unreachable")  # the last attempt returned or raised

    def _step(self, step: str, erasure_id: str, **payload: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._functions.invoke(
            "ErasureFunction", {"step": step, "erasure_id": erasure_id, **payload}
        )
        return result
