"""The DynamoDB calls the real handlers make are exactly within their functions' policies."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clickstream import runtime
from clickstream.storage.plumbing import Dynamo
from local.apigateway import HttpResult
from local.erasures import LocalErasures
from tests.conftest import local_functions
from tests.support import load_event, new_session_body, sample_event
from tests.support.policies import EXPECTED_GRANTS

# --- the calls the handlers really make are within their policies --------------------------------


class CallRecorder:
    """(action, resource) of every DynamoDB call, by the function being invoked at the time."""

    def __init__(self, physical_names: dict[str, str]) -> None:
        self._logical_ids = {physical: logical for logical, physical in physical_names.items()}
        self.function = ""
        self.calls: dict[str, set[tuple[str, str]]] = {}

    def record(self, operation: str, arguments: dict[str, Any]) -> None:
        action = "dynamodb:" + "".join(part.capitalize() for part in operation.split("_"))
        for table in arguments.get("RequestItems") or [arguments["TableName"]]:  # BatchWriteItem: its tables
            resource = self._logical_ids[table]
            if "IndexName" in arguments:
                resource += f"/index/{arguments['IndexName']}"
            self.calls.setdefault(self.function, set()).add((action, resource))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch, tables: dict[str, str]) -> CallRecorder:
    recorder = CallRecorder(tables)
    original = Dynamo.call

    def recording(dynamo: Dynamo, operation: str, **arguments: Any) -> dict[str, Any]:
        recorder.record(operation, arguments)
        return original(dynamo, operation, **arguments)

    monkeypatch.setattr(Dynamo, "call", recording)
    return recorder


def with_body(event_name: str, body: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event(event_name))
    event["body"] = json.dumps(body)
    return event


# Grants only a race uses (each has its own test in test_faults/test_registration); the run above is
# sequential, so it cannot reach them.
RACE_ONLY_GRANTS = {
    # a registration that finds a release stalled finishes it: the sealed pointer goes
    "CollectionFunction": {("dynamodb:DeleteItem", "BatchesTable")},
    # a tombstone that loses to another settle's tombstone reads the slot to tell which it lost to
    "BatchReleaseFunction": {("dynamodb:GetItem", "SessionsTable")},
    # an erasure request clears the user's lock an erasure's close left behind when it stopped half-way
    "ErasureRequestFunction": {("dynamodb:DeleteItem", "BatchesTable")},
}


def export_with_retention(invoke: Callable[[str, Any], Any], lake_dir: Path, release_id: str) -> None:
    """Every step of the export state machine, through the export handler, retention included."""
    plan = invoke("ExportFunction", {"step": "plan", "release_id": release_id, "export_id": "export-1"})
    ranges = json.loads((lake_dir / plan["ranges_key"]).read_text(encoding="utf-8"))
    job = plan["job"]
    for number_range in ranges:
        assert invoke("ExportFunction", {"step": "range", "job": job, "range": number_range})["sessions"] >= 0
    judged = invoke("ExportFunction", {"step": "judge", "job": job, "ranges": plan["ranges"]})
    finished = invoke("ExportFunction", {"step": "finish", "job": job, "ranges": plan["ranges"], "judged": judged})
    assert finished["expires_at"] is not None
    for number_range in ranges:
        expire = {"step": "expire", "job": job, "range": number_range, "expires_at": finished["expires_at"]}
        assert invoke("ExportFunction", expire)["slots"] >= 1


def erasure_requests(run: Callable[[str, dict[str, Any], int], HttpResult]) -> str:
    """An erasure asked for, asked again (the open one is read back), read, and an unknown one."""
    erasure_id: str = run("ErasureRequestFunction", load_event("erase_user"), 202).body["erasure_id"]
    run("ErasureRequestFunction", load_event("erase_user"), 202)
    run("ErasureRequestFunction", sample_event("get_erasure", query={"erasure_id": erasure_id}), 200)
    run("ErasureRequestFunction", load_event("get_erasure"), 404)
    return erasure_id


def test_every_dynamodb_call_the_handlers_make_is_allowed_by_their_policy(
    recorder: CallRecorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    invoke: Callable[[str, Any], Any],
    invoke_http: Callable[[str, dict[str, Any]], HttpResult],
) -> None:
    monkeypatch.setenv("RETENTION_DAYS", "30")
    runtime.reset()
    lake_dir = tmp_path / "lake"  # the tables fixture's LAKE_DIR

    def run(function_id: str, event: dict[str, Any], status: int = 200) -> HttpResult:
        recorder.function = function_id
        result = invoke_http(function_id, event)
        assert result.status == status, (function_id, result.body)
        return result

    def page(batch_id: str, status: int = 200) -> None:
        event = copy.deepcopy(load_event("batch_sessions"))
        event["queryStringParameters"] = {"batch_id": batch_id}
        run("BatchSessionsFunction", event, status)

    # Two sessions (one with events), schedules, a page, releases (HTTP and direct), the next batch.
    batch_id = run("CollectionFunction", load_event("register_session")).body["batch_id"]
    run("CollectionFunction", load_event("register_session"))  # the same id again: the first registration
    run("CollectionFunction", with_body("register_session", new_session_body("sess-quiet")))
    run("CollectionFunction", load_event("add_events"))
    run("CollectionFunction", load_event("get_session"))
    run("UseForImprovementFunction", load_event("use_for_improvement"))
    run("UseForImprovementFunction", load_event("use_for_improvement"))  # already pending: read back
    run("UseForImprovementFunction", with_body("use_for_improvement", {"session_id": "sess-quiet"}))
    run("UseForImprovementFunction", load_event("improvement_tasks"))
    run("UseForImprovementFunction", load_event("complete_task"))
    run("UseForImprovementFunction", load_event("complete_task"))  # the same report again: read back
    run("CollectionFunction", load_event("mark_irrelevant"))
    page(batch_id)
    page("b-unknown", status=404)
    run("BatchReleaseFunction", load_event("batch_release"))
    run("BatchReleaseFunction", load_event("batch_release"))  # idempotent: read back
    page(batch_id)  # a released batch
    tagged = with_body(
        "register_session", new_session_body("sess-next", experiment={"id": "ranker-v7", "variant": "b"})
    )
    run("CollectionFunction", tagged)  # opens a batch
    clicks = {"session_id": "sess-next", "events": [{"event_id": "e-next", "object_id": "shoe-17"}]}
    run("CollectionFunction", with_body("add_events", clicks))
    run("BatchSessionsFunction", sample_event("list_batches", query={}))
    erasure_id = erasure_requests(run)
    recorder.function = "BatchReleaseFunction"
    direct = invoke("BatchReleaseFunction", {"release_id": "release-direct"})
    assert direct["session_count"] == 1
    recorder.function = "ExportFunction"
    export_with_retention(invoke, lake_dir, "release-direct")  # with the report page (earlier releases)
    run("BatchSessionsFunction", sample_event("get_report", query={"batch_id": direct["batch_id"]}))
    assert run("BatchSessionsFunction", load_event("get_experiment")).body["batches"]  # the export named it
    recorder.function = "OutboxFunction"  # Lambda reads its streams; a replay reads the records
    replayed = invoke("OutboxFunction", {"replay": {"batch_ids": [batch_id], "session_ids": ["sess-abc123"]}})
    assert replayed == {batch_id: ["BatchReleased"], "sess-abc123": []}  # its task is done: not sent again
    # The erasure of the sample events' user: sessions in a released batch and in the exported one (its
    # dataset rewritten, its report page too), a task, events, the dataset retention recorded for the user.
    recorder.function = "ErasureFunction"
    erased = LocalErasures(local_functions()).run(erasure_id)
    assert erased is not None
    assert (erased["status"], erased["tasks"], erased["datasets_rewritten"]) == ("done", 1, 1)

    assert_calls_match_grants(recorder)


def assert_calls_match_grants(recorder: CallRecorder) -> None:
    """Every function made only calls its policy grants, and uses every DynamoDB grant (but the race-only)."""
    assert set(recorder.calls) == set(EXPECTED_GRANTS)
    for function_id, calls in recorder.calls.items():
        grants = EXPECTED_GRANTS[function_id]
        denied = {(action, resource) for action, resource in calls if action not in grants.get(resource, set())}
        assert not denied, f"{function_id} makes calls its policy does not allow: {sorted(denied)}"
        granted = {(action, resource) for resource, actions in grants.items() for action in actions}
        unused = {(action, resource) for action, resource in granted if action.startswith("dynamodb:")} - calls
        assert unused == RACE_ONLY_GRANTS.get(function_id, set()), f"{function_id} is granted more than it uses"
