"""Erasing a user: the client's erase_user, get_erasure and wait_for_erasure, and `clickstream erase` /
`clickstream erasure`, against the fake API's erasures (pending -> running -> done, or failed)."""

from __future__ import annotations

import json
import re

import pytest

from clickstream_client import Client, InvalidRequest, NotFound, WaitTimedOut, cli
from fake_api import FakeApi

ERASURE_ID = re.compile(r"^e-\d{13}-[0-9a-f]{12}$")
COUNTS = ("sessions", "events", "tasks", "datasets_rewritten")


@pytest.fixture
def client(url: str, sleeps: list[float]) -> Client:
    return Client(url, sleep=sleeps.append)


def a_user_with_data(api: FakeApi) -> None:
    """Two sessions of user-7 (three events, one task; the first in an exported batch, the second in the
    collecting one), beside one session of another user."""
    for session_id, user_id in (("s-1", "user-7"), ("s-other", "user-8")):
        api.register_session(
            {}, {"session_id": session_id, "search_query": "q", "search_results": [], "user_id": user_id}
        )
    api.add_events({}, {"session_id": "s-1", "events": [{"event_id": "e1", "object_id": "o"}]})
    api.add_events({}, {"session_id": "s-other", "events": [{"event_id": "e1", "object_id": "o"}]})
    api.use_for_improvement({}, {"session_id": "s-1"})
    api.release({}, {"release_id": "r-1"})
    api.exported("b-0001", judgments=None)
    api.register_session({}, {"session_id": "s-2", "search_query": "q", "search_results": [], "user_id": "user-7"})
    events = [{"event_id": f"e{number}", "object_id": "o"} for number in range(2)]
    api.add_events({}, {"session_id": "s-2", "events": events})


def test_an_erasure_is_accepted_pending_and_the_same_while_under_way(client: Client, api: FakeApi) -> None:
    asked = client.erase_user("user-7")

    assert set(asked) == {"erasure_id", "user_id", "status", "requested_at"}
    assert ERASURE_ID.match(asked["erasure_id"])
    assert (asked["user_id"], asked["status"]) == ("user-7", "pending")
    assert api.requests_to("/user/erase")[-1].status == 202
    assert client.erase_user("user-7") == asked
    assert client.erase_user("user-8")["erasure_id"] != asked["erasure_id"]


def test_an_erasure_moves_from_pending_to_done_with_what_it_erased(client: Client, api: FakeApi) -> None:
    a_user_with_data(api)
    erasure_id = client.erase_user("user-7")["erasure_id"]

    seen = [client.get_erasure(erasure_id) for _ in range(5)]

    assert [erasure["status"] for erasure in seen] == ["pending", "running", "running", "running", "done"]
    done = seen[-1]
    assert "user_id" not in done
    assert {name: done[name] for name in COUNTS} == {"sessions": 2, "events": 3, "tasks": 1, "datasets_rewritten": 1}
    assert done["requested_at"] <= done["started_at"] <= done["completed_at"]
    assert done["error"] is None
    with pytest.raises(NotFound):
        client.get_session("s-1")
    assert client.get_session("s-other")["user_id"] == "user-8"
    assert client.get_batch("b-0001")["erased_sessions"] == 1
    # Done: asking again is a new erasure (erasure is not a ban).
    assert client.erase_user("user-7")["erasure_id"] != erasure_id


def test_unknown_and_malformed_erasures_are_typed_errors(client: Client, api: FakeApi) -> None:
    with pytest.raises(NotFound) as unknown:
        client.get_erasure("e-0000000000000-000000000000")
    assert unknown.value.status == 404
    with pytest.raises(InvalidRequest) as no_id:
        client.get_erasure("")
    assert [problem["field"] for problem in no_id.value.field_errors] == ["erasure_id"]
    with pytest.raises(InvalidRequest) as no_user:
        client.erase_user("")
    assert [problem["field"] for problem in no_user.value.field_errors] == ["user_id"]


def test_wait_for_erasure_polls_until_done_and_tells_each_read(
    client: Client, api: FakeApi, sleeps: list[float]
) -> None:
    a_user_with_data(api)
    erasure_id = client.erase_user("user-7")["erasure_id"]
    told: list[str] = []

    done = client.wait_for_erasure(
        erasure_id, poll_seconds=7.5, on_progress=lambda erasure: told.append(erasure["status"])
    )

    assert done["status"] == "done"
    assert done["sessions"] == 2
    assert told == ["pending", "running", "running", "running", "done"]
    assert sleeps == [7.5] * 4
    assert len(api.requests_to("/erasure")) == 5


def test_wait_for_erasure_returns_a_failed_erasure(client: Client, api: FakeApi) -> None:
    a_user_with_data(api)
    api.erasures.outcome = "ExportNotReady"

    failed = client.wait_for_erasure(client.erase_user("user-7")["erasure_id"], poll_seconds=1)

    assert (failed["status"], failed["error"]) == ("failed", "ExportNotReady")
    assert client.get_session("s-1")["user_id"] == "user-7"


def test_wait_for_erasure_gives_up_after_its_timeout(url: str, api: FakeApi) -> None:
    running = {"erasure_id": "e-1", "status": "running", **dict.fromkeys(COUNTS, 0)}
    api.script("/erasure", 200, times=100, body=running)

    with Client(url) as client, pytest.raises(WaitTimedOut) as timed_out:
        client.wait_for_erasure("e-1", poll_seconds=0.02, timeout=0.1)

    assert timed_out.value.body == running
    assert str(timed_out.value) == "erasure e-1 is still running after 0.1 s"
    assert 2 <= len(api.requests_to("/erasure")) <= 6


def test_wait_for_erasure_refuses_a_poll_of_no_time(client: Client) -> None:
    with pytest.raises(ValueError, match="poll_seconds"):
        client.wait_for_erasure("e-1", poll_seconds=0)


# The command line


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_erase_prints_the_erasure_without_waiting(url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "--url", url, "erase", "user-7")

    assert (status, err) == (0, "")
    asked = json.loads(out)
    assert (asked["user_id"], asked["status"]) == ("user-7", "pending")
    assert api.requests_to("/erasure") == []


def test_erase_wait_shows_progress_and_exits_0_when_done(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    a_user_with_data(api)

    status, out, err = run(capsys, "--url", url, "erase", "user-7", "--wait", "--poll", "0.1")

    assert status == 0
    done = json.loads(out)
    assert done["status"] == "done"
    erasure_id = done["erasure_id"]
    assert err.splitlines() == [
        f"{erasure_id}: pending (sessions 0, events 0, tasks 0, datasets_rewritten 0)",
        f"{erasure_id}: running (sessions 0, events 0, tasks 0, datasets_rewritten 0)",
        f"{erasure_id}: running (sessions 2, events 3, tasks 1, datasets_rewritten 0)",
        f"{erasure_id}: running (sessions 2, events 3, tasks 1, datasets_rewritten 1)",
        f"{erasure_id}: done (sessions 2, events 3, tasks 1, datasets_rewritten 1)",
    ]


def test_erase_wait_prints_a_change_once_however_often_it_polls(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    # A user without sessions: the counts stay 0 while it runs.
    status, _, err = run(capsys, "--url", url, "erase", "nobody", "--wait", "--poll", "0.1")

    assert status == 0
    assert len(api.requests_to("/erasure")) == 5
    assert [line.split(" ")[1] for line in err.splitlines()] == ["pending", "running", "done"]


def test_erase_wait_exits_1_when_the_erasure_failed(url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    a_user_with_data(api)
    api.erasures.outcome = "States.Timeout"

    status, out, err = run(capsys, "--url", url, "erase", "user-7", "--wait", "--poll", "0.1")

    assert status == 1
    failed = json.loads(out)
    assert (failed["status"], failed["error"]) == ("failed", "States.Timeout")
    assert err.splitlines()[-1] == f"error: erasure {failed['erasure_id']} failed: States.Timeout; erase the user again"


def test_erase_of_a_malformed_user_id_is_one_line_per_field(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "--url", url, "erase", "bad\tid", "--wait")

    assert (status, out) == (1, "")
    assert err.splitlines() == [
        "error: 422 Invalid request",
        "  user_id: String should have 1 to 256 printable characters",
    ]


def test_erasure_shows_one_or_exits_1_for_an_unknown_one(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    erasure_id = api.erase_user({}, {"user_id": "user-7"})["erasure_id"]

    status, out, _ = run(capsys, "--url", url, "erasure", erasure_id)
    assert status == 0
    shown = json.loads(out)
    assert (shown["erasure_id"], shown["status"]) == (erasure_id, "pending")
    assert "user_id" not in shown

    status, out, err = run(capsys, "--url", url, "erasure", "e-0000000000000-000000000000")
    assert (status, out) == (1, "")
    assert err == "error: 404 Erasure with id=e-0000000000000-000000000000 not found\n"


def test_erase_wait_interrupted_says_the_erasure_goes_on(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Client, "wait_for_erasure", interrupted)

    status, out, err = run(capsys, "--url", url, "erase", "user-7", "--wait")

    (erasure_id,) = api.erasures.by_id
    assert (status, out) == (130, "")
    assert err == f"stopped waiting; the erasure goes on: clickstream erasure {erasure_id}\n"
