"""Pseudonymous user ids (contract 17): the settings, the key's secret in the template, the key read once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pydantic import ValidationError

from clickstream.domain.pseudonyms import FixedKey, UserIds
from clickstream.settings import Settings
from clickstream.storage.secrets import SecretKey
from local.template import Intrinsic, load_template
from tests.support.domain import new_session

TABLES = {name: "t-" + name for name in ("SESSIONS", "SESSION_IDS", "EVENTS", "BATCHES", "TASKS", "USER_DATASETS")}
ENVIRONMENT = {f"{name}_TABLE": table for name, table in TABLES.items()}


def test_hmac_without_a_key_is_refused_naming_the_settings() -> None:
    with pytest.raises(ValidationError, match="USER_ID_HMAC_SECRET_ARN"):
        Settings.from_environment({**ENVIRONMENT, "USER_ID_HASHING": "hmac"})
    with pytest.raises(ValidationError, match="user_id_hashing"):
        Settings.from_environment({**ENVIRONMENT, "USER_ID_HASHING": "sha1"})


def test_the_pseudonym_depends_on_the_id_and_the_key_and_sessions_without_a_user_id_stay_so() -> None:
    one, other = UserIds(FixedKey(b"one")), UserIds(FixedKey(b"other"))
    assert one.stored("u-1") == one.stored("u-1") != one.stored("u-2")
    assert one.stored("u-1") != other.stored("u-1")
    assert one.at_the_door(new_session(user_id=None)).user_id is None
    assert UserIds().at_the_door(new_session(user_id="u-1")).user_id == "u-1"


class CountingSecrets:
    def __init__(self) -> None:
        self.calls = 0

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        self.calls += 1
        return {"SecretString": f"key-of-{SecretId}"}


def test_the_secret_is_read_once_per_container_even_from_many_threads() -> None:
    client = CountingSecrets()
    key = SecretKey(client, "arn:secret")
    threads = [threading.Thread(target=key.key) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert key.key() == b"key-of-arn:secret"
    assert client.calls == 1


def test_the_key_is_a_generated_secret_made_only_with_hmac_and_named_only_where_raw_ids_arrive() -> None:
    """Registration pseudonymises at the door; an erasure request takes the raw id and looks up its pseudonym."""
    template = load_template()
    secret = template["Resources"]["UserIdKeySecret"]
    assert secret["Condition"] == "UserIdHmacOn"
    assert "GenerateSecretString" in secret["Properties"]
    assert "SecretString" not in secret["Properties"]
    named = {
        function_id
        for function_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
        and "USER_ID_HMAC_SECRET_ARN" in resource["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert named == {"CollectionFunction", "ErasureRequestFunction"}
    for function_id in named:
        variables = template["Resources"][function_id]["Properties"]["Environment"]["Variables"]
        assert variables["USER_ID_HMAC_SECRET_ARN"].value[1] == Intrinsic("Ref", "UserIdKeySecret")
        assert variables["USER_ID_HASHING"] == Intrinsic("Ref", "UserIdHashing")
