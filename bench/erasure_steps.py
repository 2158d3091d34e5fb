"""The erasure's steps in DynamoDB capacity units and S3 requests (contract 17): what erasing one user costs per
erased session and per affected batch, counted as bench/cost.py counts (dynalite's capacity by item size, index
writes added).

Two batches hold the user's sessions beside other users': the first released and exported, the second still
collecting. Each session has CLICKS clicks, every other one an improvement task. Then the user is erased by
the state machine's steps in order (statemachines/erasure.asl.json; the waits are WRITE_SETTLE_MS, 0 here),
each booked on its own: Begin, Find, Unclaim, Purge, per batch Account, Rewrite and Versions, Finish.
Find, Unclaim and Purge grow with the user's sessions; Account walks every slot of a released batch, so it
grows with the batch; Rewrite and Versions with the batch's ranges (the Erasure: dataset rewrite section).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.child import run_child
from bench.cost import CapacityMeter, index_counts, sparse_index_keys
from bench.erasure import CountingLake
from bench.export import child_environment
from bench.request_counts import RequestCounter, service_dynamodb_client
from local.dynamodb import dynamodb_client, ensure_tables, local_table_names
from tests.support.processes import dynalite_server

if TYPE_CHECKING:
    from clickstream.service import Clickstream

USER = "leaving-user"
CLICKS = 3


def _fill(service: Clickstream, user_sessions: int, others: int, prefix: str) -> str:
    """`user_sessions` of the user's among `others` of other users, with clicks and tasks; the batch id."""
    from clickstream.models import NewEvent
    from tests.support.domain import new_session

    total = user_sessions + others
    theirs = set(range(0, total, total // user_sessions)[:user_sessions])
    batch_id = ""
    for n in range(total):
        session_id = f"{prefix}-{n}"
        body = new_session(session_id, user_id=USER if n in theirs else f"user-{n % 37}")
        batch_id = service.register(body).batch_id
        clicks = [NewEvent(event_id=f"{session_id}-c{k}", object_id=f"shoe-{k}") for k in range(CLICKS)]
        service.add_events(session_id, clicks)
        if n % 2 == 0:
            service.use_for_improvement(session_id)
    return batch_id


@dataclass
class Booked:
    """Books each step's DynamoDB capacity (the meter's routes) and its S3 requests (the counting lake's)."""

    meter: CapacityMeter
    counter: RequestCounter
    lake: CountingLake
    s3: dict[str, Counter[str]] = field(default_factory=dict)
    dynamodb: dict[str, Counter[str]] = field(default_factory=dict)

    def __call__(self, name: str, call: Callable[..., Any], *arguments: Any) -> Any:
        self.meter.route = name
        before = Counter(self.lake.calls)
        with self.counter.counting() as issued:
            answer = call(*arguments)
        self.s3.setdefault(name, Counter()).update(Counter(self.lake.calls) - before)
        self.dynamodb.setdefault(name, Counter()).update(request.operation for request in issued)
        return answer


REMOVED = ("sessions_removed", "events_removed")


def _steps(service: Clickstream, book: Booked, erasure_id: str, labels: dict[str, str]) -> dict[str, Any]:
    """The machine's steps in order, each booked on its own (per batch: by `labels`); Find's and Purge's answers."""
    from clickstream.domain.erasure.steps import DatasetOutcome, PurgeCounts

    steps = service.erasure_steps
    book("Begin", steps.begin, erasure_id)
    found = book("Find", steps.find, erasure_id)
    unclaimed = book("Unclaim", steps.unclaim, erasure_id)["unclaimed"]
    purged = book("Purge", steps.purge, erasure_id)
    datasets = []
    for batch in found["batches"]:
        batch_id, label = batch["batch_id"], labels[batch["batch_id"]]
        accounted = book(f"Account ({label})", steps.account, erasure_id, batch_id, batch["live"])["accounted"]
        # No time limit: one call.
        rewritten = book(f"Rewrite ({label})", steps.rewrite, erasure_id, batch_id, None, accounted)
        versioned = book(f"Versions ({label})", steps.versions, erasure_id, batch_id)
        outcome = {"live": batch["live"], "rewritten": versioned["rewritten"]}
        datasets.append(DatasetOutcome(**outcome, **{name: rewritten[name] for name in REMOVED}))
    book("Finish", steps.finish, erasure_id, PurgeCounts(**purged), datasets)
    return {"sessions": found["sessions"], "batches": len(found["batches"]), "unclaimed": unclaimed, **purged}


def count(user_sessions: int, others: int) -> dict[str, Any]:
    """In the child: the workload, then the erasure's steps counted."""
    from clickstream import runtime
    from clickstream.service import Clickstream
    from tests.support.datasets import run_export

    names = local_table_names()
    ensure_tables(dynamodb_client(os.environ["AWS_ENDPOINT_URL_DYNAMODB"]), names)
    meter = CapacityMeter(index_counts(names), sparse_index_keys(names))
    client = service_dynamodb_client()
    meter.attach(client)
    base = runtime.get_service()
    lake = CountingLake(base.lake)
    service = Clickstream(base.storage, base.settings, lake=lake)
    exported = _fill(service, user_sessions, others, "a")
    service.release("erasure-cost-a")
    assert run_export(service, Path(service.settings.lake_dir), "erasure-cost-a") is not None
    collecting = _fill(service, user_sessions, others, "b")
    book = Booked(meter, RequestCounter(client), lake)
    erasure_id = book("POST /user/erase", service.erase_user, USER).erasure_id
    labels = {exported: "released, exported", collecting: "collecting"}
    answered = _steps(service, book, erasure_id, labels)
    steps = {
        name: {
            "requests": cost.requests,
            "read_units": round(cost.read_units, 1),
            "write_units": round(cost.write_units, 1),
            "s3": dict(sorted(book.s3.get(name, Counter()).items())),
            "dynamodb": dict(sorted(book.dynamodb.get(name, Counter()).items())),
        }
        for name, cost in meter.routes.items()
        if name != "setup"
    }
    # Each claim deleted takes its by_user_key entry with it: a write DynamoDB bills and dynalite does not report.
    steps["Unclaim"]["write_units"] += answered["unclaimed"]
    return {
        "clicks": CLICKS,
        "user_sessions": user_sessions,
        "batch_sessions": user_sessions + others,
        "answered": answered,
        "steps": steps,
    }


def measure(user_sessions: int, others: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as work, dynalite_server(Path(work) / "dynalite.log") as endpoint:
        environment = {**os.environ, **child_environment(endpoint, Path(work) / "lake")}
        figures: dict[str, Any] = run_child(
            "bench.erasure_steps", str(user_sessions), str(others), environment=environment
        )
    return figures


if __name__ == "__main__":  # python -m bench.erasure_steps <user sessions a batch> <other sessions a batch>
    print(json.dumps(count(int(sys.argv[1]), int(sys.argv[2]))), flush=True)
