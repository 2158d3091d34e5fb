"""One batch is not one partition (contract 8.1): under DynamoDB's per-partition-key write limit
(tests/support/throttle.py, scaled down to 6 write units a second per key), a batch of eight shards takes
at least five times the registrations a second of a batch of one, and nothing acknowledged is lost;
throttling that outlasts the retries is a 503 with Retry-After, never a 500 or a lost session."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.retries.standard import ExponentialBackoff

from clickstream.errors import StorageUnavailable
from clickstream.models import Registration, Release
from clickstream.service import Clickstream
from clickstream.settings import Settings
from clickstream.storage import Storage
from local.apigateway import HttpResult
from tests.support import load_event, new_session_body, unique
from tests.support.domain import all_sessions, new_session
from tests.support.faults import attach_to_new_clients
from tests.support.throttle import PartitionThrottle

UNITS_PER_KEY_PER_SECOND = 6.0
SECONDS = 4.0
CLIENTS = 16
SESSION_BYTES = 1_500  # about 1.5 KB a session: two write units


@pytest.fixture
def throttle(tables: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> PartitionThrottle:
    simulator = PartitionThrottle(tables, UNITS_PER_KEY_PER_SECOND)
    attach_to_new_clients(simulator, monkeypatch)
    # botocore's backoff divided by 20: the same policy, so throttled calls give up sooner and clients retry.
    backoff = ExponentialBackoff.delay_amount
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: backoff(self, context) / 20)
    return simulator


def sized_session(session_id: str) -> Any:
    padding = SESSION_BYTES - len(str(new_session_body(session_id)))
    return new_session(session_id, search_meta={"padding": "x" * max(0, padding)})


def registrations_per_second(service: Clickstream, seconds: float, prefix: str) -> tuple[float, list[Registration]]:
    """CLIENTS threads registering for `seconds`, each retrying a 503 (StorageUnavailable) as a client would."""
    acknowledged: list[Registration] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(worker: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            session_id = f"{prefix}-{worker}-{n}"
            while time.monotonic() < deadline:
                try:
                    registration = service.register(sized_session(session_id))
                except StorageUnavailable:
                    time.sleep(0.05)
                    continue
                with lock:
                    acknowledged.append(registration)
                break

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))
    return len(acknowledged) / seconds, acknowledged


def release_retrying(service: Clickstream, release_id: str) -> Release:
    """Release as the state machine does: a release that ran out of retries is called again, and resumes."""
    for _ in range(60):
        try:
            return service.release(release_id)
        except StorageUnavailable:
            time.sleep(0.2)
    raise AssertionError("the release never got through the throttling")


def run_with_shards(
    shards: int, throttle: PartitionThrottle, monkeypatch: pytest.MonkeyPatch
) -> tuple[float, Clickstream, list[Registration]]:
    monkeypatch.setenv("BATCH_SHARDS", str(shards))
    settings = Settings.from_environment()
    service = Clickstream(Storage.from_settings(settings), settings)
    rate, acknowledged = registrations_per_second(service, SECONDS, prefix=f"s{shards}")
    return rate, service, acknowledged


def test_eight_shards_take_five_times_the_registrations_of_one_and_lose_nothing(
    throttle: PartitionThrottle, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = {}
    for shards in (1, 8):
        rate, service, acknowledged = run_with_shards(shards, throttle, monkeypatch)
        release = release_retrying(service, unique("release"))
        found = {
            session["session_id"]: session["session_number"] for session in all_sessions(service, release.batch_id, 200)
        }
        batch_of = {registration.batch_id for registration in acknowledged}
        assert batch_of == {release.batch_id}, f"{shards}: one batch, collecting the whole time: {batch_of} {release}"
        assert found == {r.session_id: r.session_number for r in acknowledged}, "every acknowledged session, once"
        assert release.session_count == len(acknowledged)
        figures[shards] = rate
    print(
        f"\n  registrations/s at {UNITS_PER_KEY_PER_SECOND:g} write units/s per key: {figures}, "
        f"{throttle.throttled} writes throttled"
    )
    assert figures[8] >= 5 * figures[1], figures


def test_throttling_that_outlasts_the_retries_is_503_with_retry_after_and_loses_nothing(
    throttle: PartitionThrottle,
    invoke_http: Callable[[str, dict[str, Any]], HttpResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BATCH_SHARDS", "1")
    throttle.rate = 2.0
    bodies = {unique("sess"): None for _ in range(24)}

    def register(session_id: str) -> HttpResult:
        event = load_event("register_session")
        event["body"] = json.dumps(new_session_body(session_id))
        return invoke_http("CollectionFunction", event)

    with ThreadPoolExecutor(8) as pool:
        results = dict(zip(bodies, pool.map(register, bodies), strict=True))
    statuses = {result.status for result in results.values()}
    assert statuses <= {200, 503}, statuses
    assert 503 in statuses, "the simulator must have outlasted the retries at least once"
    for result in results.values():
        if result.status == 503:
            assert int(result.headers["retry-after"]) >= 1
            assert result.body == {"message": "The service is busy, retry later"}

    throttle.rate = 1_000.0  # the table keeps up again: every client retries its 503s, as told to
    for session_id, result in results.items():
        if result.status == 503:
            results[session_id] = register(session_id)
    assert {result.status for result in results.values()} == {200}
    release = invoke_http(
        "BatchReleaseFunction", {**load_event("batch_release"), "body": '{"release_id": "after-throttling"}'}
    )
    assert release.status == 200
    assert release.body["session_count"] == len(results)
