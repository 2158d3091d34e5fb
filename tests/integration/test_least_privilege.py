"""The DynamoDB calls the real handlers make are exactly within their functions' policies."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from clickstream.storage.plumbing import Dynamo
from local.apigateway import HttpResult
from tests.support import load_event, new_session_body
from tests.support.policies import EXPECTED_GRANTS

# --- the calls the handlers really make are within their policies --------------------------------


class CallRecorder:
    """(action, resource) of every DynamoDB call, by the function being invoked at the time."""

    def __init__(self, physical_names: dict[str, str]) -> None:
        self._logical_ids = {physical: logical for logical, physical in physical_names.items()}
        self.function = ""
        self.calls: dict[str, set[tuple[str, str]]] = {}

    def record(self, operation: str, arguments: dict[str, Any]) -> None:
        resource = self._logical_ids[arguments["TableName"]]
        if "IndexName" in arguments:
            resource += f"/index/{arguments['IndexName']}"
        action = "dynamodb:" + "".join(part.capitalize() for part in operation.split("_"))
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


def test_every_dynamodb_call_the_handlers_make_is_allowed_by_their_policy(
    recorder: CallRecorder,
    invoke: Callable[[str, Any], Any],
    invoke_http: Callable[[str, dict[str, Any]], HttpResult],
) -> None:
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
    run("CollectionFunction", load_event("mark_irrelevant"))
    page(batch_id)
    page("b-unknown", status=404)
    run("BatchReleaseFunction", load_event("batch_release"))
    run("BatchReleaseFunction", load_event("batch_release"))  # idempotent: read back
    page(batch_id)  # a released batch
    run("CollectionFunction", with_body("register_session", new_session_body("sess-next")))  # opens a batch
    recorder.function = "BatchReleaseFunction"
    assert invoke("BatchReleaseFunction", {"release_id": "release-direct"})["session_count"] == 1

    assert set(recorder.calls) == set(EXPECTED_GRANTS)
    for function_id, calls in recorder.calls.items():
        grants = EXPECTED_GRANTS[function_id]
        denied = {(action, resource) for action, resource in calls if action not in grants.get(resource, set())}
        assert not denied, f"{function_id} makes calls its policy does not allow: {sorted(denied)}"
