"""Every sample event of events/ through its function as deployed, answering what the in-process handler
(the local server's path) answers on the same state: on empty tables (mostly 404s), then along a session's
life (registered, clicked, scheduled, completed, released), where the routes answer 200."""

from __future__ import annotations

import time
from typing import Any

from local.deployed import DeployedFunctions
from local.xray_daemon import XRayDaemon, walk
from tests.conftest import local_functions
from tests.support import EVENTS_DIR
from tests.support.lambda_tier import State, run_samples

SAMPLES = sorted(path.stem for path in EVENTS_DIR.glob("*.json"))

# A session's life, each sample once; a sample that names a batch names the registered session's.
LIFE = [
    "register_session",
    "add_events",
    "get_session",
    "batch_sessions",
    "get_batch",
    "list_batches",
    "use_for_improvement",
    "mark_irrelevant",
    "improvement_tasks",
    "complete_task",
    "batch_release",
    "get_batch",
    "get_report",  # released, not exported yet: 404
    "batch_release_direct",
    "get_experiment",  # no export runs in this life: 404, as in process
    "erase_user",  # 202: the erasure is asked for (no machine runs here: it stays pending)
    "get_erasure",
]


def test_the_life_covers_every_sample_event() -> None:
    assert set(LIFE) == set(SAMPLES)


def test_every_sample_event_on_empty_tables_answers_as_in_process(deployed: DeployedFunctions, state: State) -> None:

    as_deployed = run_samples(deployed.invoke, SAMPLES)
    state.reset()
    assert as_deployed == run_samples(local_functions().invoke, SAMPLES)


def test_a_sessions_life_answers_as_in_process(deployed: DeployedFunctions, state: State) -> None:

    as_deployed = run_samples(deployed.invoke, LIFE)
    state.reset()
    in_process = run_samples(local_functions().invoke, LIFE)
    assert as_deployed == in_process
    statuses = {step["sample"]: step.get("status") for step in as_deployed}
    skipped = ("batch_release_direct", "get_report", "get_experiment")
    assert all(statuses[name] == 200 for name in LIFE if name not in (*skipped, "erase_user")), statuses
    assert statuses["erase_user"] == 202
    assert statuses["get_report"] == 404  # released, its dataset not exported yet
    assert statuses["get_experiment"] == 404
    release = next(step for step in reversed(as_deployed) if step["sample"] == "batch_release_direct")
    assert release["result"]["release_id"] == "release-v1"  # the same release again: idempotent


def test_each_route_is_a_subsegment_with_its_dynamodb_calls(
    deployed: DeployedFunctions, state: State, xray: object
) -> None:
    from local.xray_daemon import XRayDaemon

    assert isinstance(xray, XRayDaemon)
    xray.clear()
    run_samples(deployed.invoke, LIFE)
    documents = wait_for_segments(xray, "## erasure")
    names = {part["name"] for document in documents for part in walk(document)}
    routes = {"register_session", "add_events", "get_session", "mark_irrelevant", "batch_sessions", "batch", "batches"}
    routes |= {"use_for_improvement", "tasks", "complete_task", "release_batch", "handler"}  # route functions' names
    routes |= {"erase_user", "erasure"}
    assert {f"## {route}" for route in routes} | {"## release_directly", "dynamodb"} <= names, names
    handlers = [document for document in documents if document["name"] == "## handler"]
    assert len({handler["trace_id"] for handler in handlers}) == len(handlers) >= 10  # a trace per invocation
    calls = [part for document in documents for part in walk(document) if part["name"] == "dynamodb"]
    assert {"GetItem", "PutItem", "UpdateItem", "Query"} <= {call["aws"]["operation"] for call in calls}
    assert all(call["trace_id"].startswith("1-") for call in calls)


def wait_for_segments(xray: XRayDaemon, name: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while True:  # UDP: the last datagrams may still be on their way
        documents = xray.documents()
        if any(part["name"] == name for document in documents for part in walk(document)) or (
            time.monotonic() > deadline
        ):
            return documents
        time.sleep(0.05)
