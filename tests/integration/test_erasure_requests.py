"""Erasure requests (contract 17.3) over the real handlers: `POST /user/erase` answers 202 with one open
erasure per user, `GET /erasure` shows it without the user id, a closed erasure's record keeps only a hash of
it, and registration refuses a user while their erasure runs (409), from a set a container trusts for at
most BATCH_STATE_CACHE_MS. The erasure's own steps are the state machine's; here the store's begin and close
stand for them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from clickstream.domain.pseudonyms import user_key
from clickstream.errors import UserBeingErased
from clickstream.records import ErasureCounts
from clickstream.service import Clickstream
from clickstream.settings import Settings
from clickstream.storage import Storage
from local.apigateway import HttpResult
from local.dynamodb import EmbeddedAws, dynamodb_client
from tests.support import new_session_body, now_ms, sample_event, unique
from tests.support.domain import new_session
from tests.support.late import FakeClock

Invoke = Callable[[str, dict[str, Any]], HttpResult]
USER = "alice@example.com"
ERASURE_ID = re.compile(r"^e-\d{13}-[0-9a-f]{12}$")
REFUSED = "An erasure of this user is running; retry after it is done"
CACHE_MS = 10_000  # the deployed BATCH_STATE_CACHE_MS


def erase(invoke_http: Invoke, body: Any) -> HttpResult:
    return invoke_http("ErasureRequestFunction", sample_event("erase_user", body=body))


def erase_as(invoke_http: Invoke, caller: str) -> HttpResult:
    """An erasure request of USER signed by `caller` (an IAM ARN), as API Gateway's IAM authorization hands it on."""
    event = sample_event("erase_user", body={"user_id": USER})
    event["requestContext"]["authorizer"]["iam"]["userArn"] = caller
    return invoke_http("ErasureRequestFunction", event)


def erasure(invoke_http: Invoke, **query: str) -> HttpResult:
    return invoke_http("ErasureRequestFunction", sample_event("get_erasure", query=query))


def register(invoke_http: Invoke, **overrides: Any) -> HttpResult:
    return invoke_http("CollectionFunction", sample_event("register_session", body=new_session_body(**overrides)))


def requested(invoke_http: Invoke, user_id: str = USER) -> dict[str, Any]:
    result = erase(invoke_http, {"user_id": user_id})
    assert result.status == 202, result.body
    body: dict[str, Any] = result.body
    return body


def batches_items(dynamodb: EmbeddedAws, tables: dict[str, str]) -> str:
    """Every item of the batches table as DynamoDB holds it (the test's own look, not the service's)."""
    return json.dumps(dynamodb_client(dynamodb.endpoint).scan(TableName=tables["BatchesTable"])["Items"])


def stored_id(user_id: str) -> str:
    """The user id as the service stores it under the environment's settings (the raw id, or its pseudonym)."""
    settings = Settings.from_environment()
    return Clickstream(Storage.from_settings(settings), settings).user_ids.stored(user_id)


@pytest.fixture(params=["none", "hmac"])
def hashing(request: pytest.FixtureRequest, tables: dict[str, str]) -> str:
    """Both ways user ids are stored: the erasure is always asked for with the raw id."""
    if request.param == "hmac":
        request.getfixturevalue("hmac_on")
    return str(request.param)


def test_a_request_is_accepted_and_the_same_erasure_answers_while_it_is_open(
    invoke_http: Invoke, storage: Storage
) -> None:
    before = now_ms()
    first = requested(invoke_http)
    assert set(first) == {"erasure_id", "user_id", "status", "requested_at"}
    assert ERASURE_ID.match(first["erasure_id"])
    assert (first["user_id"], first["status"]) == (USER, "pending")
    assert before <= first["requested_at"] <= now_ms()
    assert requested(invoke_http) == first  # asked again while pending

    storage.erasures.begin(first["erasure_id"], now_ms())  # the machine started it
    assert requested(invoke_http) == {**first, "status": "running"}
    other = requested(invoke_http, "bob")
    assert other["erasure_id"] != first["erasure_id"]
    assert other["user_id"] == "bob"


def test_once_closed_a_request_for_the_user_is_a_new_erasure(invoke_http: Invoke, storage: Storage) -> None:
    first = requested(invoke_http)
    storage.erasures.close(first["erasure_id"], "done", now_ms())
    again = requested(invoke_http)
    assert again["erasure_id"] != first["erasure_id"]
    assert again["status"] == "pending"
    assert erasure(invoke_http, erasure_id=first["erasure_id"]).body["status"] == "done"


def test_a_lock_an_interrupted_close_left_does_not_hold_up_a_new_request(
    invoke_http: Invoke, storage: Storage, dynamodb: EmbeddedAws, tables: dict[str, str]
) -> None:
    first = requested(invoke_http)
    client = dynamodb_client(dynamodb.endpoint)
    lock_key = {"pk": {"S": f"erasure-user#{user_key(USER)}"}}
    lock = client.get_item(TableName=tables["BatchesTable"], Key=lock_key)["Item"]
    storage.erasures.close(first["erasure_id"], "done", now_ms())
    client.put_item(TableName=tables["BatchesTable"], Item=lock)  # as if the close had stopped before its delete

    again = requested(invoke_http)
    assert again["erasure_id"] != first["erasure_id"]
    held = client.get_item(TableName=tables["BatchesTable"], Key=lock_key)["Item"]
    assert held["erasure_id"] == {"S": again["erasure_id"]}


def test_the_erasure_shows_its_progress_and_never_the_user(
    hashing: str, invoke_http: Invoke, storage: Storage, dynamodb: EmbeddedAws, tables: dict[str, str]
) -> None:
    erasure_id = requested(invoke_http)["erasure_id"]
    pending = erasure(invoke_http, erasure_id=erasure_id)
    assert pending.status == 200
    assert pending.body == {
        "erasure_id": erasure_id,
        "status": "pending",
        "requested_at": pending.body["requested_at"],
        "started_at": None,
        "completed_at": None,
        "sessions": 0,
        "events": 0,
        "tasks": 0,
        "datasets_rewritten": 0,
        "error": None,
        "requested_by": sample_event("erase_user")["requestContext"]["authorizer"]["iam"]["userArn"],
    }
    stored = stored_id(USER)
    assert (stored == USER) == (hashing == "none")
    assert stored in batches_items(dynamodb, tables)  # kept while open: the datasets' lines are found by it

    storage.erasures.begin(erasure_id, 2_000)
    storage.erasures.record_counts(erasure_id, ErasureCounts(sessions=2, events=5, tasks=1, datasets_rewritten=1))
    storage.erasures.close(erasure_id, "done", 3_000)
    done = erasure(invoke_http, erasure_id=erasure_id)
    assert done.status == 200
    assert {name: done.body[name] for name in ("status", "started_at", "completed_at")} == {
        "status": "done",
        "started_at": 2_000,
        "completed_at": 3_000,
    }
    assert (done.body["sessions"], done.body["events"], done.body["tasks"], done.body["datasets_rewritten"]) == (
        2,
        5,
        1,
        1,
    )
    for shown in (pending, done):
        assert USER not in json.dumps(shown.body)
        assert stored not in json.dumps(shown.body)
    items = batches_items(dynamodb, tables)
    assert erasure_id in items
    assert USER not in items  # neither raw ...
    assert stored not in items  # ... nor as stored: only the hash stays
    assert user_key(stored) in items


def test_who_asked_is_kept_after_the_erasure_while_the_user_id_goes(
    hashing: str, invoke_http: Invoke, storage: Storage, dynamodb: EmbeddedAws, tables: dict[str, str]
) -> None:
    officer, other = "arn:aws:iam::123456789012:user/dpo", "arn:aws:iam::123456789012:role/support"
    first = erase_as(invoke_http, officer)
    assert first.status == 202, first.body
    erasure_id = first.body["erasure_id"]
    assert erasure(invoke_http, erasure_id=erasure_id).body["requested_by"] == officer

    again = erase_as(invoke_http, other)  # while it is open: the same erasure, its first requester
    assert (again.status, again.body) == (202, first.body)
    assert erasure(invoke_http, erasure_id=erasure_id).body["requested_by"] == officer

    storage.erasures.begin(erasure_id, 2_000)
    storage.erasures.close(erasure_id, "done", 3_000)
    done = erasure(invoke_http, erasure_id=erasure_id).body
    assert (done["status"], done["requested_by"]) == ("done", officer)
    items = batches_items(dynamodb, tables)
    assert officer in items  # the requester stays ...
    assert other not in items
    assert USER not in items  # ... the data subject does not
    assert stored_id(USER) not in items

    later = erase_as(invoke_http, other)  # a new erasure once closed: its own requester
    assert later.body["erasure_id"] != erasure_id
    assert erasure(invoke_http, erasure_id=later.body["erasure_id"]).body["requested_by"] == other


@pytest.mark.parametrize(
    "without_caller",
    [{}, {"authorizer": None}, {"authorizer": {}}, {"authorizer": {"iam": None}}, {"authorizer": {"iam": {}}}],
)
def test_a_request_without_an_iam_caller_records_none(invoke_http: Invoke, without_caller: dict[str, Any]) -> None:
    """Locally (no IAM in front) the authorizer may be absent, null or empty: the request is still kept."""
    event = sample_event("erase_user", body={"user_id": USER})
    event["requestContext"].pop("authorizer")
    event["requestContext"].update(without_caller)
    asked = invoke_http("ErasureRequestFunction", event)
    assert asked.status == 202, asked.body
    assert erasure(invoke_http, erasure_id=asked.body["erasure_id"]).body["requested_by"] is None


def test_a_failed_erasure_shows_its_error(invoke_http: Invoke, storage: Storage) -> None:
    erasure_id = requested(invoke_http)["erasure_id"]
    storage.erasures.begin(erasure_id, 2_000)
    storage.erasures.close(erasure_id, "failed", 3_000, error="StorageUnavailable")
    failed = erasure(invoke_http, erasure_id=erasure_id).body
    assert (failed["status"], failed["error"], failed["completed_at"]) == ("failed", "StorageUnavailable", 3_000)


def test_an_unknown_erasure_is_not_found(invoke_http: Invoke) -> None:
    result = erasure(invoke_http, erasure_id="e-1795348800000-0123456789ab")
    assert result.status == 404
    assert result.body == {"message": "Erasure with id=e-1795348800000-0123456789ab not found"}


@pytest.mark.parametrize("query", [{}, {"erasure_id": ""}, {"erasure_id": "e-\x01"}])
def test_a_missing_or_invalid_erasure_id_is_refused_naming_it(invoke_http: Invoke, query: dict[str, str]) -> None:
    result = erasure(invoke_http, **query)
    assert result.status == 422
    assert result.body["message"] == "Invalid request: erasure_id"
    assert [problem["field"] for problem in result.body["errors"]] == ["erasure_id"]


@pytest.mark.parametrize("body", [{}, {"user_id": ""}, {"user_id": 42}, {"user_id": "x" * 257}, {"user": "alice"}])
def test_a_body_without_a_valid_user_id_is_refused_naming_it(invoke_http: Invoke, body: dict[str, Any]) -> None:
    result = erase(invoke_http, body)
    assert result.status == 422
    assert result.body["message"] == "Invalid request: user_id"
    assert "alice" not in json.dumps(result.body)  # the refused value is not echoed


@pytest.mark.parametrize("text", ['{"user_id": "alice"', '{"user_id": "a", "user_id": "b"}', "[]"])
def test_a_body_that_is_not_one_json_object_is_refused(invoke_http: Invoke, text: str) -> None:
    event = sample_event("erase_user")
    event["body"] = text
    result = invoke_http("ErasureRequestFunction", event)
    assert result.status == (422 if text == "[]" else 400)
    assert result.body["errors"][0]["field"] == "body"


def test_registration_is_refused_while_the_users_erasure_runs_and_accepted_once_it_is_done(
    hashing: str, invoke_http: Invoke, storage: Storage
) -> None:
    earlier = register(invoke_http, user_id=USER)
    assert earlier.status == 200
    erasure_id = requested(invoke_http)["erasure_id"]
    assert register(invoke_http, user_id=USER).status == 200  # pending: not started, nothing refused yet
    storage.erasures.begin(erasure_id, now_ms())

    refused_id = unique("refused")
    refused = register(invoke_http, session_id=refused_id, user_id=USER)
    assert (refused.status, refused.body) == (409, {"message": REFUSED})
    assert storage.claims.get(refused_id) is None  # nothing claimed, nothing stored
    assert register(invoke_http, user_id="bob").status == 200  # another user is not concerned
    assert register(invoke_http, user_id=None).status == 200

    storage.erasures.close(erasure_id, "done", now_ms())
    again = register(invoke_http, session_id=refused_id, user_id=USER)
    assert again.status == 200  # erasure is not a ban
    assert storage.claims.get(refused_id) is not None


def test_only_registrations_with_a_user_id_read_the_users_being_erased(
    service: Clickstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[frozenset[str]] = []
    active_user_keys = service.storage.erasures.active_user_keys

    def counted() -> frozenset[str]:
        reads.append(active_user_keys())
        return reads[-1]

    monkeypatch.setattr(service.storage.erasures, "active_user_keys", counted)
    service.register(new_session(user_id=None))
    assert reads == []
    service.register(new_session(user_id=USER))
    assert reads == [frozenset()]  # the tests' cache is off: one read per registration with a user


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(now_ms())


@pytest.fixture
def container(storage: Storage, settings: Settings, clock: FakeClock) -> Clickstream:
    """One container's service with the deployed cache, on a clock the test moves."""
    deployed = settings.model_copy(update={"batch_state_cache_ms": CACHE_MS, "write_settle_ms": 6 * CACHE_MS})
    return Clickstream(storage, deployed, clock=clock, sleep=clock.sleep)


def test_a_cached_not_being_erased_lasts_at_most_the_cache_interval_at_one_read_per_container(
    container: Clickstream, storage_client: Any, clock: FakeClock
) -> None:
    reads: list[str] = []

    def on_get(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key", {}).get("pk", {}).get("S") == "erasures-active":
            reads.append("GetItem")

    storage_client.meta.events.register("provide-client-params.dynamodb.GetItem", on_get)
    container.register(new_session(user_id=USER))  # reads the set: nobody is being erased
    erasure_id = container.erase_user(USER).erasure_id
    container.storage.erasures.begin(erasure_id, clock())  # begins right after that read
    for _ in range(5):
        clock.advance((CACHE_MS - 1) // 5)
        container.register(new_session(user_id=USER))  # within the interval: the cached answer stands
    assert reads == ["GetItem"]

    clock.advance(CACHE_MS - 5 * ((CACHE_MS - 1) // 5))  # the interval is over since the read
    with pytest.raises(UserBeingErased):
        container.register(new_session(user_id=USER))
    assert reads == ["GetItem", "GetItem"]
    container.register(new_session(user_id="bob"))  # the set just read is trusted again
    assert reads == ["GetItem", "GetItem"]
