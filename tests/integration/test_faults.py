"""DynamoDB faults at the storage boundary (contract 4 and 5): throttling, errors, lost answers, crashes.

* Throttling or errors that outlive botocore's retries are a 503 with Retry-After and a body free of
  AWS text, through the real handlers; transient ones are retried by botocore and the call succeeds.
* A write that DynamoDB applied but whose answer was lost (a 500 on a write) is retried by botocore
  into its own result; every protocol step copes with that.
* A crash right after any write of a registration or a release is completed by repeating the call,
  and the state left behind (a claim without a session, a sealed pointer, an unsettled batch) never
  blocks other calls nor loses or duplicates a session.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.retries.standard import ExponentialBackoff

from clickstream.errors import NoCollectingBatch
from clickstream.models import NewEvent, NewSession, Registration, Release
from clickstream.service import Clickstream
from clickstream.settings import Settings
from clickstream.storage import Storage
from local.apigateway import HttpResult
from tests.support import new_session_body, now_ms, sample_event, unique
from tests.support.domain import hand_out_number
from tests.support.faults import (
    CONNECTION_LOST,
    MOVE_WRITES,
    REGISTRATION_WRITES,
    RELEASE_WRITES,
    DynamoFaults,
    SimulatedCrash,
    attach_to_new_clients,
)

Invoke = Callable[[str, dict[str, Any]], HttpResult]

THROTTLING = ("ProvisionedThroughputExceededException", "ThrottlingException")
UNAVAILABLE = (*THROTTLING, "InternalServerError", CONNECTION_LOST)
# Words that would betray AWS internals in a response body.
AWS_WORDS = ("Exception", "Throttl", "Provisioned", "DynamoDB", "dynamodb", "Table", "arn:", "botocore", "injected")
BUSY = {"message": "The service is busy, retry later"}


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(params=[1, 8], ids=["1-shard", "8-shards"])
def settings(tables: dict[str, str], monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Settings:
    """Every test here runs for a batch of one shard and of eight (contract 8.1)."""
    monkeypatch.setenv("BATCH_SHARDS", str(request.param))
    return Settings.from_environment()


@pytest.fixture
def faults(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoFaults]:
    """The fault plan; every DynamoDB client created during the test (the handlers' too) obeys it."""
    injector = DynamoFaults(settings)
    attach_to_new_clients(injector, monkeypatch)
    # botocore's backoff (up to 1 s per throttled attempt) divided by 100: same policy, faster suite.
    backoff = ExponentialBackoff.delay_amount
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: backoff(self, context) / 100)
    yield injector
    injector.close()
    if injector.injected or injector.crashes:
        print(f"\n  faults injected: {dict(injector.injected)}, crashes: {injector.crashes}")
    # Every write was recognised as a protocol step, so the crash points above mean what they say.
    assert not [write for write in injector.writes if write.startswith("unknown")], injector.writes


@pytest.fixture
def storage(settings: Settings, faults: DynamoFaults) -> Storage:
    """conftest's storage, built once the fault hooks are in place."""
    return Storage.from_settings(settings)


# --- helpers ----------------------------------------------------------------------------------------


def new_session(session_id: str) -> NewSession:
    return NewSession.model_validate_json(json.dumps(new_session_body(session_id)))


def new_events(*event_ids: str) -> list[NewEvent]:
    return [NewEvent.model_validate_json(json.dumps({"event_id": e, "object_id": f"obj-{e}"})) for e in event_ids]


def page_all(service: Clickstream, batch_id: str) -> list[dict[str, Any]]:
    """Every session of a batch, paged two at a time (so pages start and end around tombstones)."""
    sessions: list[dict[str, Any]] = []
    after = 0
    while True:
        page = json.loads(service.batch_page_json(batch_id, after, limit=2, events_limit=10))
        sessions.extend(page["sessions"])
        if not page["has_more"]:
            return sessions
        after = page["last_number"]


def check_data(
    service: Clickstream, storage: Storage, releases: list[Release], registrations: list[Registration]
) -> None:
    """Contract 5 over what the test saw: released batches hold exactly their counted sessions, each
    session_id once in all of them, every registration where it was acknowledged."""
    where: dict[str, tuple[str, int]] = {}
    for release in {release.release_id: release for release in releases}.values():
        sessions = page_all(service, release.batch_id)
        numbers = [session["session_number"] for session in sessions]
        assert numbers == sorted(set(numbers)), f"{release.batch_id}: numbers repeat or go back: {numbers}"
        assert len(sessions) == release.session_count, f"{release}: paging found {len(sessions)} sessions"
        record = storage.batches.get(release.batch_id)
        assert record is not None
        assert (record.release_id, record.session_count) == (release.release_id, release.session_count)
        for session in sessions:
            assert session["session_id"] not in where, f"{session['session_id']} is in two places"
            where[session["session_id"]] = (release.batch_id, session["session_number"])
    for registration in registrations:
        slot = (registration.batch_id, registration.session_number)
        assert where.get(registration.session_id) == slot, f"{registration} is not where it was acknowledged"
        stored = json.loads(service.session_json(registration.session_id, 10))
        assert (stored["batch_id"], stored["session_number"]) == slot
        claim = storage.claims.get(registration.session_id)
        assert claim is not None
        assert claim.state == "registered"
    pointer = storage.pointer.get()
    assert pointer is None or pointer.release_id is None, f"a sealed pointer was left behind: {pointer}"


def release_or_none(service: Clickstream, release_id: str) -> Release | None:
    try:
        return service.release(release_id)
    except NoCollectingBatch:
        return None


# --- 503 on faults that outlive the retries ---------------------------------------------------------


ROUTES = {
    "register": ("CollectionFunction", "register_session"),
    "add_events": ("CollectionFunction", "add_events"),
    "mark_irrelevant": ("CollectionFunction", "mark_irrelevant"),
    "get_session": ("CollectionFunction", "get_session"),
    "batch_sessions": ("BatchSessionsFunction", "batch_sessions"),
    "use_for_improvement": ("UseForImprovementFunction", "use_for_improvement"),
    "release": ("BatchReleaseFunction", "batch_release"),
}


def _route_event(route: str, session_id: str, batch_id: str) -> dict[str, Any]:
    name = ROUTES[route][1]
    if route == "register":
        return sample_event(name, body=new_session_body(unique("sess")))
    if route == "add_events":
        return sample_event(name, body={"session_id": session_id, "events": [{"event_id": "e1", "object_id": "o"}]})
    if route in ("mark_irrelevant", "use_for_improvement"):
        return sample_event(name, body={"session_id": session_id})
    if route == "get_session":
        return sample_event(name, query={"session_id": session_id})
    if route == "batch_sessions":
        return sample_event(name, query={"batch_id": batch_id})
    return sample_event(name, body={"release_id": unique("release")})


def assert_busy(result: HttpResult) -> None:
    assert result.status == 503, result.body
    assert int(result.headers["retry-after"]) >= 1
    assert result.body == BUSY
    text = json.dumps(result.body)
    assert not [word for word in AWS_WORDS if word in text]


@pytest.mark.parametrize("route", list(ROUTES))
def test_throttling_on_every_attempt_is_503_with_retry_after_on_every_route(
    invoke_http: Invoke, faults: DynamoFaults, settings: Settings, route: str
) -> None:
    registered = invoke_http("CollectionFunction", sample_event("register_session", body=new_session_body()))
    assert registered.status == 200
    event = _route_event(route, registered.body["session_id"], registered.body["batch_id"])

    before = faults.attempts.total()
    faults.fail("ProvisionedThroughputExceededException")
    assert_busy(invoke_http(ROUTES[route][0], event))
    # botocore retried the first DynamoDB call up to the configured attempts, then gave up: one call only.
    assert faults.attempts.total() - before == settings.dynamodb_max_attempts

    faults.clear()
    assert invoke_http(ROUTES[route][0], event).status == 200  # the same request succeeds once DynamoDB does


@pytest.mark.parametrize("code", UNAVAILABLE)
def test_every_kind_of_persistent_unavailability_is_503(
    invoke_http: Invoke, faults: DynamoFaults, settings: Settings, code: str
) -> None:
    faults.fail(code)
    assert_busy(invoke_http("CollectionFunction", sample_event("register_session", body=new_session_body())))
    assert faults.injected[code] == settings.dynamodb_max_attempts


# --- transient faults are retried by botocore -------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "max_attempts"),
    [*((code, 2) for code in UNAVAILABLE), *((code, 4) for code in THROTTLING)],
)
def test_transient_faults_on_every_call_are_retried_and_everything_succeeds(
    invoke_http: Invoke, faults: DynamoFaults, monkeypatch: pytest.MonkeyPatch, code: str, max_attempts: int
) -> None:
    """Every DynamoDB call fails its first max_attempts - 1 attempts, then succeeds.

    (Three failures on every call are tried with throttling only: for other errors botocore's retry
    quota, 14 of 500 tokens per retry, runs dry over a dozen such calls and the answer is a 503.)
    """
    monkeypatch.setenv("DYNAMODB_MAX_ATTEMPTS", str(max_attempts))
    faults.fail(code, attempts_per_call=max_attempts - 1)
    session_id = unique("sess")

    registered = invoke_http("CollectionFunction", sample_event("register_session", body=new_session_body(session_id)))
    assert registered.status == 200, registered.body
    events = {
        "session_id": session_id,
        "events": [{"event_id": "e1", "object_id": "o"}, {"event_id": "e2", "object_id": "o"}],
    }
    added = invoke_http("CollectionFunction", sample_event("add_events", body=events))
    assert (added.status, added.body["accepted"]) == (200, 2)
    release_id = unique("release")
    released = invoke_http("BatchReleaseFunction", sample_event("batch_release", body={"release_id": release_id}))
    assert (released.status, released.body["session_count"]) == (200, 1)
    assert released.body["batch_id"] == registered.body["batch_id"]
    page = invoke_http(
        "BatchSessionsFunction", sample_event("batch_sessions", query={"batch_id": released.body["batch_id"]})
    )
    assert page.status == 200
    assert [s["session_id"] for s in page.body["sessions"]] == [session_id]
    assert [e["event_id"] for e in page.body["sessions"][0]["events"]] == ["e1", "e2"]

    # Every call (each HTTP attempt is counted) failed max_attempts - 1 times before it went through.
    calls = faults.attempts.total() // max_attempts
    assert faults.injected[code] == calls * (max_attempts - 1)
    assert calls >= 12


# --- a write applied, its answer lost: botocore's retry meets the write itself -----------------------


AMBIGUOUS_STEPS = (*REGISTRATION_WRITES, *RELEASE_WRITES, "put_event")  # MOVE_WRITES: test_a_moved_registration_...


@pytest.mark.parametrize("step", AMBIGUOUS_STEPS)
def test_a_write_applied_whose_answer_was_lost_is_retried_into_the_same_outcome(
    service: Clickstream, storage: Storage, faults: DynamoFaults, settings: Settings, step: str
) -> None:
    """DynamoDB applies the first attempt of `step`, then answers 500; botocore retries it."""
    faults.fail("InternalServerError", steps={step}, attempts_per_call=1, applied=True, times=1)
    started = time.monotonic()
    registrations = [service.register(new_session(unique("sess"))) for _ in range(2)]
    hand_out_number(storage)  # a number handed out and never written: the release tombstones it
    registrations.append(service.register(new_session(unique("sess"))))
    added = service.add_events(registrations[0].session_id, new_events("e1", "e2"))
    release = service.release(unique("release"))
    elapsed = time.monotonic() - started

    assert faults.injected["InternalServerError"] == 1, f"the step {step} never ran"
    assert release.session_count == 3
    check_data(service, storage, [release], registrations)
    stored = json.loads(service.session_json(registrations[0].session_id, 10))
    assert [event["event_id"] for event in stored["events"]] == ["e1", "e2"]
    assert added.accepted + added.duplicates == 2
    # The lost answer costs at most one lease (a claim that looks like someone else's), never a hang.
    assert elapsed < settings.registration_lease_ms / 1000 + 3


# --- a crash between two writes of a registration ---------------------------------------------------


@pytest.mark.parametrize("release_before_retry", [False, True], ids=["retry", "release-then-retry"])
@pytest.mark.parametrize("step", REGISTRATION_WRITES)
def test_a_registration_crashed_after_any_write_is_completed_by_its_retry(
    *,
    service: Clickstream,
    storage: Storage,
    faults: DynamoFaults,
    settings: Settings,
    step: str,
    release_before_retry: bool,
) -> None:
    crashed_id = unique("sess-crashed")
    faults.crash_after(step)
    with pytest.raises(SimulatedCrash):
        service.register(new_session(crashed_id))
    assert faults.crashes == [step]
    crashed_at = time.monotonic()

    # What the crash left behind (a claim, a numbered slot, an opened batch) blocks nobody else.
    others = [service.register(new_session(unique("sess"))) for _ in range(2)]
    releases: list[Release] = []
    if release_before_retry:
        releases.append(service.release(unique("release")))
        assert releases[0].batch_id == others[0].batch_id

    # Two retries at once (a client retrying on two connections): both get the same single registration.
    with ThreadPoolExecutor(2) as pool:
        retried = list(pool.map(lambda _: service.register(new_session(crashed_id)), range(2)))
    waited = time.monotonic() - crashed_at
    assert retried[0] == retried[1]
    assert service.register(new_session(crashed_id)) == retried[0]
    # A claim is taken over only once its lease ran out, and not much later.
    if step != "mark_registered":
        assert waited < settings.registration_lease_ms / 1000 + 2

    if step in ("put_session", "mark_registered"):
        # The session was written before the crash: the retry only confirms where it is.
        assert (retried[0].batch_id, retried[0].session_number) == (others[0].batch_id, 1)
    elif release_before_retry:
        # Its slot (if it had one) was closed by the release: it went to the next batch.
        assert retried[0].batch_id != releases[0].batch_id
    final = release_or_none(service, unique("release"))
    if final is not None:
        releases.append(final)
    check_data(service, storage, releases, [*others, retried[0]])


# --- a crash between two writes of a release ----------------------------------------------------------


@pytest.mark.parametrize("then", ["retry", "register-then-retry", "other-release-then-retry"])
@pytest.mark.parametrize("step", RELEASE_WRITES)
def test_a_release_crashed_after_any_write_is_completed_by_repeating_it(
    *, service: Clickstream, storage: Storage, faults: DynamoFaults, settings: Settings, step: str, then: str
) -> None:
    registered = [service.register(new_session(unique("sess"))) for _ in range(2)]
    hand_out_number(storage)  # number 3 handed out and never written: the release must tombstone it
    registered.append(service.register(new_session(unique("sess"))))
    batch_id = registered[0].batch_id
    release_id = unique("release")

    faults.crash_after(step)
    with pytest.raises(SimulatedCrash):
        service.release(release_id)
    assert faults.crashes == [step]

    later: list[Registration] = []
    other: Release | None = None
    if then == "register-then-retry":
        # A sealed pointer left behind makes registrations wait SEALED_BATCH_WAIT_MS, then hand it over.
        started = time.monotonic()
        later.append(service.register(new_session(unique("sess"))))
        waited = time.monotonic() - started
        assert waited < settings.sealed_batch_wait_ms / 1000 + 2
        if step in ("seal", "bind", "batch_record"):  # the pointer was left sealed: it waited, then took over
            assert waited >= settings.sealed_batch_wait_ms / 1000
        assert later[0].batch_id != batch_id  # the crashed release had sealed (or retired) the old batch
    elif then == "other-release-then-retry":
        # Another release id finishes the crashed hand-over, then finds nothing else to release.
        other = release_or_none(service, unique("release"))
        assert other is None or other.batch_id != batch_id

    release = service.release(release_id)
    assert (release.batch_id, release.session_count) == (batch_id, 3)
    assert service.release(release_id) == release  # and it stays that way
    # Nothing is stuck: no seal is left for the next registrations to wait on.
    pointer = storage.pointer.get()
    assert pointer is None or pointer.release_id is None, f"the retried release left {pointer}"

    later.append(service.register(new_session(unique("sess"))))
    assert later[-1].batch_id != batch_id
    final = service.release(unique("release"))
    assert final.session_count == len(later)
    assert service.release(release_id) == release
    check_data(service, storage, [release, final], [*registered, *later])


def test_a_release_crashed_while_undoing_the_seal_of_an_empty_batch_releases_nothing_empty(
    service: Clickstream, storage: Storage, faults: DynamoFaults
) -> None:
    """An opened batch with no session yet: a release seals it, sees it empty, and crashes before
    unsealing. The next registration must not be stuck behind the seal, and the release id must not
    end up naming an empty batch."""
    storage.pointer.open_batch("b-opened-empty", 0, 8)
    release_id = unique("release")
    faults.crash_after("seal")
    with pytest.raises(SimulatedCrash):
        service.release(release_id)

    registration = service.register(new_session(unique("sess")))
    release = service.release(release_id)
    assert (release.batch_id, release.session_count) == (registration.batch_id, 1)
    check_data(service, storage, [release], [registration])


@pytest.mark.parametrize("fault", ["crash", "lost-answer"])
def test_a_registration_moved_by_a_release_is_completed_after_a_fault_while_moving(
    service: Clickstream, storage: Storage, faults: DynamoFaults, settings: Settings, fault: str
) -> None:
    """A registration numbered just before a release stalled: the release closed its slot, so its retry
    records a number in the next batch (MOVE_WRITES) before writing there. A crash right after that
    write, or its answer lost, is completed by the next retry."""
    first = service.register(new_session(unique("sess")))
    late_id = unique("sess-late")
    place = hand_out_number(storage, settings.batch_shards)
    assert storage.claims.claim(late_id, "stalled", now_ms() - settings.registration_lease_ms - 1, place)
    release = service.release(unique("release"))
    assert release.session_count == 1  # the stalled registration's slot was closed

    if fault == "crash":
        faults.crash_after(*MOVE_WRITES)
        with pytest.raises(SimulatedCrash):
            service.register(new_session(late_id))
        assert faults.crashes == list(MOVE_WRITES)
    else:
        faults.fail("InternalServerError", steps=set(MOVE_WRITES), attempts_per_call=1, applied=True, times=1)
    retried = service.register(new_session(late_id))
    assert retried.batch_id != release.batch_id
    assert service.register(new_session(late_id)) == retried
    final = service.release(unique("release"))
    check_data(service, storage, [release, final], [first, retried])
