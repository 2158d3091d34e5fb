"""Retries: 429, 503 and connection failures are retried, honouring Retry-After, at most max_retries times;
every other error is raised at once."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from clickstream_client import (
    ClickstreamError,
    Client,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidRequest,
    NotFound,
    ServerError,
    Unavailable,
)
from fake_api import FakeApi


def test_a_503_is_retried_after_the_time_retry_after_asks(url: str, api: FakeApi, sleeps: list[float]) -> None:
    api.add_batch(1)
    api.script("/batch", 503, times=2, retry_after="7", body={"message": "Service unavailable, retry later"})

    batch = Client(url, sleep=sleeps.append).get_batch("b-0001")

    assert batch["batch_id"] == "b-0001"
    assert sleeps == [7, 7]
    assert [request.status for request in api.requests_to("/batch")] == [503, 503, 200]


def test_the_client_really_waits_for_retry_after(url: str, api: FakeApi) -> None:
    api.add_batch(1)
    api.script("/batch", 503, retry_after="1")

    Client(url).get_batch("b-0001")

    first, second = api.requests_to("/batch")
    assert second.at - first.at >= 1.0


def test_a_429_is_retried_too(url: str, api: FakeApi, sleeps: list[float]) -> None:
    api.add_batch(1, events_per_session=1)
    api.script("/session/use-for-improvement", 429, retry_after="2", body={"message": "Too Many Requests"})

    answer = Client(url, sleep=sleeps.append).use_for_improvement("sess-000001")

    assert answer["status"] == "scheduled"
    assert sleeps == [2]


def test_without_retry_after_the_client_backs_off_increasingly(url: str, api: FakeApi, sleeps: list[float]) -> None:
    api.add_batch(1)
    api.script("/batch", 503, times=4)

    Client(url, sleep=sleeps.append).get_batch("b-0001")

    assert len(api.requests_to("/batch")) == 5
    assert len(sleeps) >= 3
    assert sleeps == sorted(sleeps)
    assert sleeps[-1] > sleeps[0] > 0


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_max_retries_bounds_the_attempts(url: str, api: FakeApi, sleeps: list[float], max_retries: int) -> None:
    api.script("/batch", 503, times=10, retry_after="1", body={"message": "Service unavailable"})

    with pytest.raises(Unavailable) as raised:
        Client(url, max_retries=max_retries, sleep=sleeps.append).get_batch("b-0001")

    assert len(api.requests_to("/batch")) == 1 + max_retries
    assert len(sleeps) == max_retries
    assert raised.value.status == 503
    assert raised.value.body == {"message": "Service unavailable"}
    if max_retries:
        assert f"after {1 + max_retries} attempts" in str(raised.value)


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, InvalidRequest),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (413, InvalidRequest),
        (422, InvalidRequest),
        (500, ServerError),
    ],
)
def test_other_errors_are_not_retried(
    url: str, api: FakeApi, sleeps: list[float], status: int, error_class: type[ClickstreamError]
) -> None:
    # Even with a Retry-After: only 429 and 503 mean "try again".
    api.script("/batch/release", status, times=3, retry_after="1")

    with pytest.raises(error_class):
        Client(url, sleep=sleeps.append).release("r1")

    assert len(api.requests_to("/batch/release")) == 1
    assert sleeps == []


def test_connection_failures_are_retried_then_reported_readably(sleeps: list[float]) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # closed when the block ends: nothing listens there

    client = Client(f"http://127.0.0.1:{port}", max_retries=3, sleep=sleeps.append)
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as raised:
        client.get_batch("b-0001")

    message = str(raised.value)
    assert message.startswith(f"cannot reach http://127.0.0.1:{port}: ")
    assert "refused" in message
    assert message.endswith("(after 4 attempts)")
    assert raised.value.status is None
    assert len(sleeps) >= 2  # backoff between attempts (urllib3 retries the first at once)
    assert time.monotonic() - started < 5


def test_each_retry_is_told_why_and_when_before_it_is_made(url: str, api: FakeApi, sleeps: list[float]) -> None:
    api.add_batch(1)
    api.script("/batch", 503, times=2, retry_after="3", body={"message": "Service unavailable, retry later"})
    told: list[str] = []
    client = Client(url, max_retries=4, sleep=sleeps.append, on_retry=told.append)

    assert client.get_batch("b-0001")["batch_id"] == "b-0001"
    assert told == ["answered 503: attempt 2 of 5 in 3.0 s", "answered 503: attempt 3 of 5 in 3.0 s"]


def test_a_response_that_never_comes_is_retried_then_reported(sleeps: list[float]) -> None:
    # Every route may be repeated, so a POST that timed out is sent again too.
    connections: list[socket.socket] = []
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(5)

        def accept_and_stay_silent() -> None:
            for _ in range(2):
                connections.append(silent.accept()[0])

        listener = threading.Thread(target=accept_and_stay_silent)
        listener.start()
        client = Client(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.2, max_retries=1, sleep=sleeps.append)
        with pytest.raises(ConnectionFailed, match=r"timed out.*\(after 2 attempts\)$"):
            client.release("r1")
        listener.join()
    for connection in connections:
        connection.close()
    assert len(connections) == 2
