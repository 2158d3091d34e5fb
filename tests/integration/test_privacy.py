"""Pseudonymous user ids (UserIdHashing=hmac, contract 17) and a user's sessions found without a scan."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clickstream.domain.pseudonyms import PSEUDONYM_PREFIX, user_key
from clickstream.service import Clickstream
from clickstream.settings import Settings
from clickstream.storage import Storage
from local.apigateway import HttpResult
from local.dynamodb import EmbeddedAws, dynamodb_client
from local.secrets import LOCAL_ONLY_HMAC_KEY
from tests.support import new_session_body, sample_event, unique
from tests.support.datasets import dataset_sessions, run_export
from tests.support.domain import new_session

Invoke = Callable[[str, dict[str, Any]], HttpResult]
RAW_USER = "alice@example.com"


def expected_pseudonym(user_id: str, key: str = LOCAL_ONLY_HMAC_KEY) -> str:
    """Worked out apart from the service: HMAC-SHA256 of the id under the secret's string."""
    return PSEUDONYM_PREFIX + hmac.new(key.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def register(invoke_http: Invoke, **overrides: Any) -> str:
    body = new_session_body(**overrides)
    result = invoke_http("CollectionFunction", sample_event("register_session", body=body))
    assert result.status == 200, result.body
    return str(body["session_id"])


def read_session(invoke_http: Invoke, session_id: str) -> dict[str, Any]:
    result = invoke_http("CollectionFunction", sample_event("get_session", query={"session_id": session_id}))
    assert result.status == 200, result.body
    session: dict[str, Any] = result.body
    return session


def raw_items(endpoint: str, table: str) -> str:
    """Every item of the table as DynamoDB returns it (a test's look at what is stored, not the service's)."""
    return json.dumps(dynamodb_client(endpoint).scan(TableName=table)["Items"])


def test_with_hmac_no_raw_user_id_is_returned_stored_or_logged(
    hmac_on: str, invoke_http: Invoke, tables: dict[str, str], dynamodb: EmbeddedAws, capfd: pytest.CaptureFixture[str]
) -> None:
    first = register(invoke_http, user_id=RAW_USER)
    second = register(invoke_http, user_id=RAW_USER)
    pseudonym = expected_pseudonym(RAW_USER)
    assert read_session(invoke_http, first)["user_id"] == pseudonym
    assert read_session(invoke_http, second)["user_id"] == pseudonym  # the same user, the same pseudonym
    stored = raw_items(dynamodb.endpoint, tables["SessionsTable"]) + raw_items(
        dynamodb.endpoint, tables["SessionIdsTable"]
    )
    assert pseudonym in stored
    assert user_key(pseudonym) in stored  # the claims' index key
    logged = capfd.readouterr()
    assert RAW_USER not in stored + logged.out + logged.err


def test_with_hmac_the_dataset_holds_the_pseudonym(hmac_on: str, storage: Storage, tmp_path: Path) -> None:
    service = Clickstream(storage, Settings.from_environment().model_copy(update={"lake_dir": str(tmp_path / "l")}))
    session_id = service.register(new_session(user_id=RAW_USER)).session_id
    batch_id = service.release("release-privacy").batch_id
    run_export(service, tmp_path / "l", "release-privacy")
    [line] = dataset_sessions(tmp_path / "l", batch_id)
    assert (line["session_id"], line["user_id"]) == (session_id, expected_pseudonym(RAW_USER))
    parts = b"".join(path.read_bytes() for path in (tmp_path / "l").rglob("*") if path.is_file())
    assert RAW_USER.encode() not in parts


def test_another_key_gives_other_pseudonyms(tables: dict[str, str], storage: Storage, settings: Settings) -> None:
    keyed = settings.model_copy(update={"user_id_hashing": "hmac", "user_id_hmac_key": "another-local-key"})
    service = Clickstream(storage, keyed)
    session_id = service.register(new_session(user_id=RAW_USER)).session_id
    stored = json.loads(service.session_json(session_id, 0))["user_id"]
    assert stored == expected_pseudonym(RAW_USER, "another-local-key") != expected_pseudonym(RAW_USER)


def test_without_hashing_user_ids_are_stored_as_sent(
    invoke_http: Invoke, tables: dict[str, str], dynamodb: EmbeddedAws
) -> None:
    session_id = register(invoke_http, user_id=RAW_USER)
    assert read_session(invoke_http, session_id)["user_id"] == RAW_USER
    claim = dynamodb_client(dynamodb.endpoint).get_item(
        TableName=tables["SessionIdsTable"], Key={"session_id": {"S": session_id}}
    )["Item"]
    assert claim["user_key"] == {"S": user_key(RAW_USER)}


def test_a_users_sessions_are_listed_page_by_page_from_the_index_without_a_scan(
    service: Clickstream, storage_client: Any, dynamodb: EmbeddedAws, tables: dict[str, str]
) -> None:
    operations: list[str] = []
    storage_client.meta.events.register("before-call.dynamodb", lambda model, **_: operations.append(model.name))
    users = {"user-a": [unique("a") for _ in range(5)], "user-b": [unique("b") for _ in range(3)]}
    for user_id, session_ids in users.items():
        for session_id in session_ids:
            service.register(new_session(session_id, user_id=user_id))
    anonymous = service.register(new_session(user_id=None)).session_id
    operations.clear()
    listed: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page, after = service.storage.claims.user_sessions(service.user_ids.key_of("user-a"), 2, after)
        listed.extend(page)
        pages += 1
        if after is None:
            break
    assert listed == sorted(users["user-a"])
    assert pages == 3
    assert set(operations) == {"Query"}  # the index, never a Scan
    assert service.storage.claims.user_sessions(service.user_ids.key_of("nobody"), 10) == ([], None)
    claim = dynamodb_client(dynamodb.endpoint).get_item(
        TableName=tables["SessionIdsTable"], Key={"session_id": {"S": anonymous}}
    )["Item"]
    assert "user_key" not in claim  # no user, nothing in the sparse index
