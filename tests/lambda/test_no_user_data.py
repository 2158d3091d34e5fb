"""Traces and logs carry ids, never user data (contract 13.3): a session whose every user-given field holds a
marker goes through every route (answers 200, 404, 409 and 422 alike) and the pipeline after its release;
the marker is then searched in every X-Ray datagram the functions sent, in everything they printed (their
log streams) and in the error cause a failed invocation hands Lambda for X-Ray."""

from __future__ import annotations

import json
from typing import Any

from local.deployed import DeployedFunctions
from local.runtime_api import InvocationError
from local.xray_daemon import XRayDaemon, walk
from tests.support import sample_event
from tests.support.lambda_tier import State, function_of, run_pipeline

MARKER = "ZQXLEAK"  # in every user-given field; ids (session, event, release) never hold it


def marked_session(session_id: str) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "search_query": f"red {MARKER} shoes",
        "search_results": [{"object_id": "shoe-17", "rank": 1.0, "meta": {"brand": f"{MARKER}-brand"}}],
        "search_meta": {"engine": f"{MARKER}-meta"},
        "payload_filter": {"must": [{"field": "color", "match": f"{MARKER}-filter"}]},
        "sort_by": {"field": "price", "order": "asc"},
        "user_id": f"user-{MARKER}",
    }


def marked_events(session_id: str, *event_ids: str) -> dict[str, Any]:
    events = [
        {"event_id": event_id, "object_id": "shoe-17", "event_type": "click", "meta": {"note": f"{MARKER}-event"}}
        for event_id in event_ids
    ]
    return {"session_id": session_id, "events": events}


def requests_on_every_route(
    batch_id: str, erasure_id: str
) -> list[tuple[str, dict[str, Any] | str | None, dict[str, str] | None]]:
    """(sample event, body, query) for each route, user data wherever a route takes it, errors included (a
    body given as text is sent as it is)."""
    oversized = {**marked_session("sess-big"), "search_meta": {"padding": MARKER * 200_000}}
    invalid_session = {**marked_session("sess-bad"), "search_results": f"{MARKER} not a list"}
    invalid_events = {**marked_events("sess-leak", "e-bad"), "events": [{"event_id": "e-bad", "meta": MARKER}]}
    return [
        ("register_session", marked_session("sess-leak"), None),
        ("register_session", {**marked_session("sess-leak"), "search_query": f"again {MARKER}"}, None),
        ("register_session", invalid_session, None),  # 422
        ("register_session", oversized, None),  # 413
        ("register_session", '{"session_id": "sess-broken", "search_query": "' + MARKER, None),  # 400
        ("add_events", marked_events("sess-leak", "e-1", "e-2"), None),
        ("add_events", marked_events("sess-leak", "e-1", "e-3"), None),  # one duplicate
        ("add_events", marked_events("sess-nobody", "e-1"), None),  # 404
        ("add_events", invalid_events, None),  # 422
        ("get_session", None, {"session_id": "sess-leak"}),
        ("get_session", None, {"session_id": "sess-nobody"}),  # 404
        ("batch_sessions", None, {"batch_id": batch_id, "after_number": "0", "limit": "10", "events_limit": "10"}),
        ("get_batch", None, {"batch_id": batch_id}),
        ("list_batches", None, {"limit": "5"}),
        ("use_for_improvement", {"session_id": "sess-leak"}, None),
        ("improvement_tasks", None, {"status": "pending", "limit": "10"}),
        ("mark_irrelevant", {"session_id": "sess-leak"}, None),
        ("complete_task", {"session_id": "sess-leak", "status": "done"}, None),
        ("complete_task", {"session_id": "sess-leak", "status": "failed"}, None),  # 409
        ("batch_release", {"release_id": "release-leak"}, None),
        ("add_events", marked_events("sess-leak", "e-late"), None),  # after the release
        ("erase_user", {"user_id": f"user-{MARKER}"}, None),  # still pending: the same erasure (202)
        ("erase_user", {"user_id": f"{MARKER}\u0007"}, None),  # 422
        ("get_erasure", None, {"erasure_id": erasure_id}),  # its record holds the user id: never shown
        ("get_erasure", None, {"erasure_id": "e-1795348800000-0123456789ab"}),  # 404
    ]


def leaks(texts: list[str]) -> list[str]:
    return [text[max(0, text.find(MARKER) - 1500) : text.find(MARKER) + 200] for text in texts if MARKER in text]


def test_no_trace_and_no_log_line_carries_user_data(
    deployed: DeployedFunctions, state: State, xray: XRayDaemon
) -> None:
    xray.clear()
    for instance_output in (deployed.instance(function_id).output for function_id in deployed.function_ids):
        instance_output.clear()
    registered = deployed.invoke_http("CollectionFunction", sample_event("register_session", body=marked_session("s0")))
    erasure = deployed.invoke_http(
        "ErasureRequestFunction", sample_event("erase_user", body={"user_id": f"user-{MARKER}"})
    )
    statuses, answers = [erasure.status], []
    for name, body, query in requests_on_every_route(registered.body["batch_id"], erasure.body["erasure_id"]):
        event = sample_event(name, body=None if isinstance(body, str) else body, query=query)
        if isinstance(body, str):
            event["body"] = body
        answer = deployed.invoke_http(function_of(event), event)
        statuses.append(answer.status)
        answers.append(json.dumps(answer.body))
    assert {200, 202, 400, 404, 409, 413, 422} <= set(statuses), statuses
    # The user data was there to leak: get_session and batch_sessions show it, an erasure request echoes its id.
    assert len(leaks(answers)) == 3
    error_causes = []
    try:
        deployed.invoke("BatchReleaseFunction", {"release_id": f"{MARKER} not an id!"})
    except InvocationError as error:
        error_causes.append(str(error.error) + str(error.headers))
    assert error_causes, "an invalid direct release fails"
    pipeline = run_pipeline(deployed.invoke, state, "release-leak")
    assert sum(step["result"]["sessions"] for step in pipeline if step.get("step") == "range") == 2, pipeline
    assert pipeline[-1]["result"]["parts"] >= 1, pipeline

    datagrams = [datagram.decode() for datagram in xray.settled()]
    names = {part["name"] for document in xray.documents() for part in walk(document)}
    assert {"## register_session", "## add_events", "## handler", "## lambda_handler", "dynamodb"} <= names, names
    assert leaks(datagrams) == []
    assert leaks(deployed.output()) == []
    assert leaks(error_causes) == []
