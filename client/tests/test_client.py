"""The client's methods against the fake API: what each returns, how iterators page, which error is raised."""

from __future__ import annotations

import pytest

from clickstream_client import (
    ClickstreamError,
    Client,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    ServerError,
)
from fake_api import FakeApi


@pytest.fixture
def client(url: str) -> Client:
    return Client(url)


def test_a_session_registered_with_events_reads_back(client: Client, api: FakeApi) -> None:
    registered = client.register_session(
        session_id="sess-1", search_query="café ☕", search_results=[{"object_id": "o1", "rank": 1.0, "meta": {}}]
    )
    assert registered == {"session_id": "sess-1", "batch_id": "b-0001", "session_number": 1}

    events = [{"event_id": "e1", "object_id": "o1"}, {"event_id": "e2", "object_id": "o1"}]
    assert client.add_events("sess-1", iter(events)) == {"session_id": "sess-1", "accepted": 2, "duplicates": 0}
    assert client.add_events("sess-1", events[:1]) == {"session_id": "sess-1", "accepted": 0, "duplicates": 1}
    assert client.mark_irrelevant("sess-1") == {"session_id": "sess-1", "is_irrelevant": True}

    session = client.get_session("sess-1", events_limit=1)
    assert session["search_query"] == "café ☕"
    assert session["batch_id"] == "b-0001"
    assert session["is_irrelevant"] is True
    assert [event["event_id"] for event in session["events"]] == ["e1"]


def test_query_values_reach_the_api_unchanged(client: Client, api: FakeApi) -> None:
    odd_id = "sess a+b/c?d&e=é"
    client.register_session(session_id=odd_id, search_query="q", search_results=[])

    assert client.get_session(odd_id)["session_id"] == odd_id
    assert api.requests_to("/session")[-1].query == {"session_id": odd_id, "events_limit": "1000"}


def test_iter_sessions_visits_every_session_once_in_order(client: Client, api: FakeApi) -> None:
    batch_id = api.add_batch(25, release_id="r1", events_per_session=3)

    sessions = list(client.iter_sessions(batch_id, page_size=10, events_limit=2))

    assert [session["session_number"] for session in sessions] == list(range(1, 26))
    assert all(len(session["events"]) == 2 for session in sessions)
    pages = api.requests_to("/batch/sessions")
    assert [page.query["after_number"] for page in pages] == ["0", "10", "20"]
    assert {page.query["limit"] for page in pages} == {"10"}


def test_iter_sessions_starts_after_the_given_number(client: Client, api: FakeApi) -> None:
    batch_id = api.add_batch(7)

    numbers = [session["session_number"] for session in client.iter_sessions(batch_id, after_number=4, page_size=2)]

    assert numbers == [5, 6, 7]


def test_iter_sessions_of_an_empty_page_ends(client: Client, api: FakeApi) -> None:
    batch_id = api.add_batch(3)

    assert list(client.iter_sessions(batch_id, after_number=3)) == []


def test_iter_sessions_refuses_to_loop_when_the_api_promises_more_but_sends_none(client: Client, api: FakeApi) -> None:
    batch_id = api.add_batch(1)
    stuck: dict[str, object] = {"batch_id": batch_id, "last_number": None, "has_more": True, "sessions": []}
    api.script("/batch/sessions", 200, body=stuck)

    with pytest.raises(ClickstreamError, match="more sessions but returned none"):
        list(client.iter_sessions(batch_id))


def test_iter_sessions_of_an_unknown_batch_raises_not_found(client: Client, api: FakeApi) -> None:
    with pytest.raises(NotFound) as raised:
        list(client.iter_sessions("b-nope"))

    assert raised.value.status == 404
    assert raised.value.body == {"message": "Batch with id=b-nope not found"}
    assert str(raised.value) == "404 Batch with id=b-nope not found"


def test_list_batches_pages_newest_first_to_the_end(client: Client, api: FakeApi) -> None:
    for number in range(4):
        api.add_batch(1, release_id=f"r{number}")
    api.add_batch(2)  # still collecting

    batches = list(client.list_batches(page_size=2))

    assert [batch["batch_id"] for batch in batches] == ["b-0005", "b-0004", "b-0003", "b-0002", "b-0001"]
    assert batches[0]["status"] == "collecting"
    assert batches[1] | {"opened_at": 0, "released_at": 0} == {
        "batch_id": "b-0004",
        "status": "released",
        "opened_at": 0,
        "release_id": "r3",
        "released_at": 0,
        "session_count": 1,
        "erased_sessions": 0,
        "dataset": None,
        "metrics": None,
        "click_model": None,
    }
    assert [request.query.get("before") for request in api.requests_to("/batches")] == [None, "b-0004", "b-0002"]


def test_get_batch_and_release(client: Client, api: FakeApi) -> None:
    batch_id = api.add_batch(3)
    assert client.get_batch(batch_id)["status"] == "collecting"

    released = client.release("release-1")

    assert released["batch_id"] == batch_id
    assert released["session_count"] == 3
    assert client.release("release-1") == released
    assert client.get_batch(batch_id)["status"] == "released"
    with pytest.raises(NotFound, match="There is no collecting batch"):
        client.release("release-2")


def test_get_experiment_asks_for_the_id_and_raises_not_found_for_an_unknown_one(client: Client, api: FakeApi) -> None:
    api.experiments["ranker v7/β"] = {"id": "ranker v7/β", "batches": ["b-0001"]}

    assert client.get_experiment("ranker v7/β")["batches"] == ["b-0001"]
    assert api.requests_to("/experiment")[-1].query == {"experiment_id": "ranker v7/β"}
    with pytest.raises(NotFound, match="never-run"):
        client.get_experiment("never-run")


def test_use_for_improvement_schedules_or_says_why_not(client: Client, api: FakeApi) -> None:
    api.add_batch(2, events_per_session=1)
    client.register_session(session_id="quiet", search_query="q", search_results=[])
    client.register_session(session_id="payload", search_query="q", search_results=[], is_payload_search=True)

    scheduled = client.use_for_improvement("sess-000001")
    assert scheduled["status"] == "scheduled"
    assert scheduled["task"]["status"] == "pending"
    assert client.use_for_improvement("quiet") == {"session_id": "quiet", "status": "skipped", "reason": "no_events"}
    assert client.use_for_improvement("payload")["reason"] == "payload_search"
    with pytest.raises(NotFound):
        client.use_for_improvement("missing")


def test_tasks_are_listed_by_status_across_pages_and_completed_once(client: Client, api: FakeApi) -> None:
    api.add_batch(5, events_per_session=1)
    for number in range(1, 6):
        client.use_for_improvement(f"sess-{number:06d}")

    done = client.complete_task("sess-000002", "done")
    assert done["status"] == "done"
    assert done["completed_at"] is not None
    assert client.complete_task("sess-000002", "done") == done
    failed = client.complete_task("sess-000003", "failed", error="diverged")
    assert failed["error"] == "diverged"

    pending = list(client.iter_tasks(page_size=2))
    assert [task["session_id"] for task in pending] == ["sess-000001", "sess-000004", "sess-000005"]
    assert len(api.requests_to("/improvement/tasks")) == 2
    assert [task["session_id"] for task in client.iter_tasks("done")] == ["sess-000002"]

    with pytest.raises(Conflict) as conflict:
        client.complete_task("sess-000002", "failed")
    assert conflict.value.status == 409
    with pytest.raises(NotFound):
        client.complete_task("sess-000004-nope", "done")


def test_complete_task_sends_error_only_when_given(client: Client, api: FakeApi) -> None:
    api.add_batch(1, events_per_session=1)
    client.use_for_improvement("sess-000001")

    client.complete_task("sess-000001", "done")

    assert api.requests_to("/improvement/tasks/complete")[-1].body == {"session_id": "sess-000001", "status": "done"}


def test_a_validation_error_carries_the_field_problems(client: Client, api: FakeApi) -> None:
    with pytest.raises(InvalidRequest) as raised:
        client.register_session(session_id="s", search_query="q")

    error = raised.value
    assert error.status == 422
    assert error.field_errors == [{"field": "search_results", "message": "Field required", "type": "value_error"}]
    assert str(error) == "422 Invalid request"


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(400, InvalidRequest), (413, InvalidRequest), (415, InvalidRequest), (403, Forbidden), (500, ServerError)],
)
def test_error_statuses_map_to_their_exception(
    client: Client, api: FakeApi, status: int, error_class: type[ClickstreamError]
) -> None:
    api.script("/session", status, body={"message": "Nope", "request_id": "req-1"})

    with pytest.raises(error_class) as raised:
        client.get_session("s")

    assert raised.value.status == status
    assert raised.value.message == "Nope (request id req-1)"


def test_a_response_that_is_not_json_still_raises_a_readable_error(client: Client, api: FakeApi) -> None:
    api.script("/batch", 502, body="<html>Bad Gateway</html>")

    with pytest.raises(ServerError) as raised:
        client.get_batch("b")

    assert raised.value.status == 502
    assert raised.value.body is None
    assert str(raised.value) == "502 <html>Bad Gateway</html>"


def test_base_url_must_be_http(url: str) -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        Client("127.0.0.1:3000")


def test_a_trailing_slash_on_the_base_url_is_harmless(url: str, api: FakeApi) -> None:
    api.add_batch(1)
    with Client(url + "/") as client:
        assert client.get_batch("b-0001")["batch_id"] == "b-0001"
    assert api.requests[-1].path == "/batch"


PAGE = "<!DOCTYPE html><html><body><p>caf\u00e9 \u2615 &lt;script&gt;</p></body></html>"


def test_get_report_returns_the_page_as_text_and_not_found_until_exported(client: Client, api: FakeApi) -> None:
    batch_id = api.add_batch(2, release_id="r1")
    with pytest.raises(NotFound, match="not exported yet"):
        client.get_report(batch_id)
    api.report_pages[batch_id] = PAGE

    assert client.get_report(batch_id) == PAGE
    assert api.requests_to("/batch/report")[-1].query == {"batch_id": batch_id}
    with pytest.raises(NotFound, match="Batch with id=b-none not found"):
        client.get_report("b-none")
