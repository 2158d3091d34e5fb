"""Every route through its real Lambda handler, driven by the sample events in events/."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from local.apigateway import HttpResult
from tests.support import load_event, new_session_body, now_ms, sample_event, unique

Invoke = Callable[[str, dict[str, Any]], HttpResult]


def with_body(event_name: str, body: Any) -> dict[str, Any]:
    return sample_event(event_name, body=body)


def with_query(event_name: str, **query: Any) -> dict[str, Any]:
    return sample_event(event_name, query={name: str(value) for name, value in query.items()})


def register(invoke_http: Invoke, **overrides: Any) -> dict[str, Any]:
    result = invoke_http("CollectionFunction", with_body("register_session", new_session_body(**overrides)))
    assert result.status == 200, result.body
    body: dict[str, Any] = result.body
    return body


def test_sample_events_drive_a_session_through_its_life(invoke_http: Invoke) -> None:
    registered = invoke_http("CollectionFunction", load_event("register_session"))
    assert registered.status == 200
    assert registered.body["session_id"] == "sess-abc123"
    assert registered.body["session_number"] == 1
    batch_id = registered.body["batch_id"]

    added = invoke_http("CollectionFunction", load_event("add_events"))
    assert (added.status, added.body) == (200, {"session_id": "sess-abc123", "accepted": 2, "duplicates": 0})

    fetched = invoke_http("CollectionFunction", load_event("get_session"))
    assert fetched.status == 200
    assert fetched.body["batch_id"] == batch_id
    assert fetched.body["search_query"] == "red running shoes"
    assert [event["event_id"] for event in fetched.body["events"]] == ["evt-1", "evt-2"]

    page = invoke_http("BatchSessionsFunction", with_query("batch_sessions", batch_id=batch_id))
    assert page.status == 200
    assert page.body["last_number"] == 1
    assert page.body["has_more"] is False
    assert page.body["sessions"][0]["session_id"] == "sess-abc123"

    scheduled = invoke_http("UseForImprovementFunction", load_event("use_for_improvement"))
    assert scheduled.status == 200
    assert scheduled.body["status"] == "scheduled"
    assert scheduled.body["task"]["status"] == "pending"
    assert "reason" not in scheduled.body

    marked = invoke_http("CollectionFunction", load_event("mark_irrelevant"))
    assert (marked.status, marked.body) == (200, {"session_id": "sess-abc123", "is_irrelevant": True})

    listed = invoke_http("UseForImprovementFunction", load_event("improvement_tasks"))
    assert listed.status == 200
    assert listed.body == {"tasks": [scheduled.body["task"]], "next": None}

    completed = invoke_http("UseForImprovementFunction", load_event("complete_task"))
    assert completed.status == 200
    assert completed.body["status"] == "done"
    assert completed.body["completed_at"] >= scheduled.body["task"]["requested_at"]

    released = invoke_http("BatchReleaseFunction", load_event("batch_release"))
    assert released.status == 200
    assert released.body["batch_id"] == batch_id
    assert released.body["session_count"] == 1
    assert released.body["release_id"] == "release-v1"

    batch = invoke_http("BatchSessionsFunction", with_query("get_batch", batch_id=batch_id))
    assert batch.status == 200
    assert (batch.body["status"], batch.body["release_id"]) == ("released", "release-v1")
    batches = invoke_http("BatchSessionsFunction", load_event("list_batches"))
    assert batches.status == 200
    assert [listed["batch_id"] for listed in batches.body["batches"]] == [batch_id]


def test_direct_release_event_returns_the_release_and_raises_typed_error_when_empty(
    invoke: Callable[[str, Any], Any], invoke_http: Invoke
) -> None:
    batch_id = register(invoke_http)["batch_id"]
    released = invoke("BatchReleaseFunction", load_event("batch_release_direct"))
    assert released["batch_id"] == batch_id
    assert released["session_count"] == 1
    assert invoke("BatchReleaseFunction", load_event("batch_release_direct")) == released

    from clickstream.errors import NoCollectingBatch

    with pytest.raises(NoCollectingBatch):
        invoke("BatchReleaseFunction", {"release_id": "release-v2"})


@pytest.mark.parametrize("event", [{}, {"release_id": ""}, {"release_id": 7}, ["release-v1"], {"release_id": "a\x00"}])
def test_direct_release_rejects_a_malformed_event_with_a_clear_error(
    invoke: Callable[[str, Any], Any], event: Any
) -> None:
    with pytest.raises(ValueError, match="release_id") as raised:
        invoke("BatchReleaseFunction", event)
    assert type(raised.value).__name__ == "InvalidReleaseEvent"


def test_unknown_session_is_404_with_the_spec_message(invoke_http: Invoke) -> None:
    for event_name in ("use_for_improvement", "mark_irrelevant"):
        result = invoke_http(
            "UseForImprovementFunction" if event_name == "use_for_improvement" else "CollectionFunction",
            with_body(event_name, {"session_id": "sess-missing"}),
        )
        assert (result.status, result.body) == (404, {"message": "Session with id=sess-missing not found"})
    result = invoke_http("CollectionFunction", with_query("get_session", session_id="sess-missing"))
    assert result.status == 404
    events = with_body("add_events", {"session_id": "sess-missing", "events": [{"event_id": "e", "object_id": "o"}]})
    assert invoke_http("CollectionFunction", events).status == 404


def test_unknown_batch_is_404(invoke_http: Invoke) -> None:
    result = invoke_http("BatchSessionsFunction", with_query("batch_sessions", batch_id="b-unknown"))
    assert (result.status, result.body) == (404, {"message": "Batch with id=b-unknown not found"})


def test_release_with_nothing_collecting_is_404(invoke_http: Invoke) -> None:
    result = invoke_http("BatchReleaseFunction", with_body("batch_release", {"release_id": unique("release")}))
    assert (result.status, result.body) == (404, {"message": "There is no collecting batch"})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"search_query": "q", "search_results": []}, "session_id"),
        ({"session_id": "s", "search_results": []}, "search_query"),
        ({"session_id": "s", "search_query": 5, "search_results": []}, "search_query"),
        ({"session_id": "", "search_query": "q", "search_results": []}, "session_id"),
        ({"session_id": "a\u0007b", "search_query": "q", "search_results": []}, "session_id"),
        ({"session_id": "x" * 257, "search_query": "q", "search_results": []}, "session_id"),
        ({"session_id": "s", "search_query": "q", "search_results": [{"rank": 1}]}, "search_results[0].object_id"),
        ({"session_id": "s", "search_query": "q", "search_results": [], "created_at": "1"}, "created_at"),
        ({"session_id": "s", "search_query": "q", "search_results": [], "is_payload_search": 1}, "is_payload_search"),
        (
            {"session_id": "s", "search_query": "q", "search_results": [], "sort_by": {"field": "p", "order": "up"}},
            "sort_by.order",
        ),
    ],
)
def test_invalid_session_bodies_are_422_naming_the_field(invoke_http: Invoke, body: dict[str, Any], field: str) -> None:
    result = invoke_http("CollectionFunction", with_body("register_session", body))
    assert result.status == 422, result.body
    assert field in [error["field"] for error in result.body["errors"]]
    assert field in result.body["message"]


def test_timestamps_outside_the_window_are_422_naming_the_field(invoke_http: Invoke) -> None:
    stale = now_ms() - 13 * 3_600_000
    result = invoke_http("CollectionFunction", with_body("register_session", new_session_body(created_at=stale)))
    assert result.status == 422
    assert result.body["errors"][0]["field"] == "created_at"

    session_id = register(invoke_http)["session_id"]
    future = now_ms() + 10 * 60_000
    events = {
        "session_id": session_id,
        "events": [{"event_id": "e1", "object_id": "o"}, {"event_id": "e2", "object_id": "o", "created_at": future}],
    }
    result = invoke_http("CollectionFunction", with_body("add_events", events))
    assert result.status == 422
    assert result.body["errors"][0]["field"] == "events[1].created_at"


def test_malformed_json_is_400_and_wrong_content_type_is_415(invoke_http: Invoke) -> None:
    event = load_event("register_session")
    event["body"] = '{"session_id": '
    result = invoke_http("CollectionFunction", event)
    assert result.status == 400
    assert result.body["errors"][0]["field"] == "body"

    event = load_event("register_session")
    event["headers"]["content-type"] = "text/plain"
    assert invoke_http("CollectionFunction", event).status == 415
    event["headers"]["content-type"] = "application/x-www-form-urlencoded"
    event["body"] = "session_id=abc"
    assert invoke_http("CollectionFunction", event).status == 415


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"after_number": "-1"}, "after_number"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"events_limit": "1001"}, "events_limit"),
    ],
)
def test_out_of_range_paging_parameters_are_422(invoke_http: Invoke, query: dict[str, str], field: str) -> None:
    result = invoke_http("BatchSessionsFunction", with_query("batch_sessions", batch_id="b-x", **query))
    assert result.status == 422
    assert result.body["errors"][0]["field"] == field


def test_missing_batch_id_is_422(invoke_http: Invoke) -> None:
    event = copy.deepcopy(load_event("batch_sessions"))
    del event["queryStringParameters"]
    result = invoke_http("BatchSessionsFunction", event)
    assert result.status == 422
    assert result.body["errors"][0]["field"] == "batch_id"


def test_handlers_publish_the_service_metrics(invoke_http: Invoke, capsys: pytest.CaptureFixture[str]) -> None:
    def published() -> dict[str, float]:
        values: dict[str, float] = {}
        for line in capsys.readouterr().out.splitlines():
            if line.startswith('{"_aws"'):
                document = json.loads(line)
                for directive in document["_aws"]["CloudWatchMetrics"]:
                    for metric in directive["Metrics"]:
                        values[metric["Name"]] = values.get(metric["Name"], 0) + sum(document[metric["Name"]])
        return values

    session_id = register(invoke_http)["session_id"]
    assert published()["SessionsRegistered"] == 1
    register(invoke_http, session_id=session_id)  # a repeat is not a new registration
    assert "SessionsRegistered" not in published()
    events = {
        "session_id": session_id,
        "events": [{"event_id": "e1", "object_id": "o"}, {"event_id": "e2", "object_id": "o"}],
    }
    invoke_http("CollectionFunction", with_body("add_events", events))
    assert published()["EventsAccepted"] == 2
    invoke_http("UseForImprovementFunction", with_body("use_for_improvement", {"session_id": session_id}))
    assert published()["SessionsScheduled"] == 1
    payload_id = register(invoke_http, is_payload_search=True)["session_id"]
    capsys.readouterr()
    invoke_http("UseForImprovementFunction", with_body("use_for_improvement", {"session_id": payload_id}))
    assert published()["SessionsSkipped"] == 1
    invoke_http("BatchReleaseFunction", with_body("batch_release", {"release_id": unique("release")}))
    assert published()["BatchesReleased"] == 1


def test_a_session_comes_back_as_sent_with_embeddingstudios_defaults_filled_in(invoke_http: Invoke) -> None:
    sent = new_session_body(
        search_query={"text": "shoes", "weights": [1, 1.0, 0.5]},
        search_results=[
            {"object_id": "a", "rank": 1},
            {"object_id": "b", "rank": 1.5, "meta": {"price": 10, "ratio": 1.0}},
            {"object_id": "c", "rank": 2.0},
            {"object_id": "d"},
        ],
        search_meta={"latency_ms": 38, "": {"deep": [[]]}},
        sort_by={"field": "price"},
    )
    registered = register(invoke_http, **sent)
    fetched = invoke_http("CollectionFunction", with_query("get_session", session_id=registered["session_id"]))
    session = fetched.body  # parsed by json, which keeps 1 an int and 1.0 a float
    results = session["search_results"]
    assert [(result["rank"], type(result["rank"])) for result in results] == [
        (1, int),
        (1.5, float),
        (2.0, float),
        (None, type(None)),
    ]
    assert [result["meta"] for result in results] == [None, {"price": 10, "ratio": 1.0}, None, None]
    assert type(results[1]["meta"]["ratio"]) is float
    assert session["search_query"] == sent["search_query"]
    assert [type(weight) for weight in session["search_query"]["weights"]] == [int, float, float]
    assert session["search_meta"] == sent["search_meta"]
    assert session["sort_by"] == {"field": "price", "order": "asc", "force_not_payload": False}
