"""Unit tests of the input models and the JSON codec: what is accepted, what is refused and why."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from clickstream.codec import MalformedJson, encode_json, parse_body
from clickstream.models import NewEvent, NewEvents, NewSession, ReleaseRequest
from clickstream.settings import Settings
from tests.support import new_session_body


def error_fields(error: ValidationError) -> list[str]:
    return [".".join(str(part) for part in problem["loc"]) for problem in error.errors()]


def test_a_minimal_embedding_studio_session_is_accepted_with_defaults() -> None:
    session = NewSession.model_validate({"session_id": "s", "search_query": "q", "search_results": []})
    assert session.is_payload_search is False
    assert session.created_at is None
    assert session.sort_by is None


def test_unknown_fields_are_ignored_for_client_compatibility() -> None:
    session = NewSession.model_validate(new_session_body("s", client_version="2.1"))
    assert "client_version" not in session.model_dump()


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"session_id": 5}, "session_id"),
        ({"session_id": "tab\there"}, "session_id"),
        ({"session_id": "del\x7f"}, "session_id"),
        ({"session_id": "c1\x85"}, "session_id"),
        ({"session_id": "lone\ud800"}, "session_id"),
        ({"search_query": ["a"]}, "search_query"),
        ({"search_query": None}, "search_query"),
        ({"created_at": 1.5}, "created_at"),
        ({"created_at": True}, "created_at"),
        ({"created_at": -1}, "created_at"),
        ({"user_id": ""}, "user_id"),
        ({"search_results": [{"object_id": "o"}] * 1001}, "search_results"),
        ({"search_results": [{"object_id": "o", "rank": "1"}]}, "search_results.0.rank"),
        ({"search_results": [{"object_id": "o", "rank": True}]}, "search_results.0.rank"),
        ({"search_results": [{"object_id": "o", "rank": 2**53 + 1}]}, "search_results.0.rank"),
        ({"search_results": [{"object_id": "o", "rank": float("inf")}]}, "search_results.0.rank"),
        ({"sort_by": {"order": "asc"}}, "sort_by.field"),
        ({"experiment": "ranker-v7"}, "experiment"),
        ({"experiment": {"variant": "b"}}, "experiment.id"),
        ({"experiment": {"id": "ranker-v7"}}, "experiment.variant"),
        ({"experiment": {"id": "ranker-v7", "variant": ""}}, "experiment.variant"),
        ({"experiment": {"id": "r" * 257, "variant": "b"}}, "experiment.id"),
        ({"experiment": {"id": "ranker-v7", "variant": "new\nline"}}, "experiment.variant"),
        ({"experiment": {"id": "ranker-v7", "variant": 2}}, "experiment.variant"),
        ({"search_results": [{"object_id": "o", "team": ""}]}, "search_results.0.team"),
        ({"search_results": [{"object_id": "o", "team": 1}]}, "search_results.0.team"),
    ],
)
def test_session_fields_are_strict(override: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        NewSession.model_validate(new_session_body(**{"session_id": "s", **override}))
    assert field in error_fields(raised.value)


def test_an_experiment_and_teams_are_optional_and_their_unknown_members_ignored() -> None:
    plain = NewSession.model_validate(new_session_body("s"))
    assert plain.experiment is None
    assert all(result.team is None for result in plain.search_results)
    tagged = NewSession.model_validate(
        new_session_body(
            "s",
            experiment={"id": "ranker-v7", "variant": "b", "started": "monday"},
            search_results=[{"object_id": "o", "team": "a"}],
        )
    )
    assert tagged.experiment is not None
    assert tagged.experiment.model_dump() == {"id": "ranker-v7", "variant": "b"}
    assert tagged.search_results[0].team == "a"


@pytest.mark.parametrize("rank", [1, 0, -3, 2**53, 1.0, 2.5, -0.5, 1e300, None])
def test_a_rank_keeps_its_json_type(rank: int | float | None) -> None:
    results = [{"object_id": "o", "rank": rank}]
    dumped = NewSession.model_validate(new_session_body(search_results=results)).search_results[0].model_dump()
    assert encode_json(dumped["rank"]) == encode_json(rank)  # 1 stays 1, 1.0 stays 1.0


def test_identifiers_accept_printable_unicode_up_to_256_characters() -> None:
    assert NewSession.model_validate(new_session_body("séance-日本-🔎" * 1)).session_id == "séance-日本-🔎"
    assert len(ReleaseRequest(release_id="r" * 256).release_id) == 256
    with pytest.raises(ValidationError):
        ReleaseRequest(release_id="r" * 257)


def test_events_default_to_clicks_and_a_call_carries_one_to_a_thousand() -> None:
    assert NewEvent(event_id="e", object_id="o").event_type == "click"
    with pytest.raises(ValidationError) as raised:
        NewEvents.model_validate({"session_id": "s", "events": []})
    assert error_fields(raised.value) == ["events"]
    events = [{"event_id": f"e{n}", "object_id": "o"} for n in range(1001)]
    with pytest.raises(ValidationError):
        NewEvents.model_validate({"session_id": "s", "events": events})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ('{"a": NaN}', "NaN is not valid JSON"),
        ('{"a": Infinity}', "Infinity is not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (b'{"a": "\xff"}', "not UTF-8"),
    ],
)
def test_bodies_that_are_not_one_unambiguous_json_document_are_refused(text: str | bytes, reason: str) -> None:
    with pytest.raises(MalformedJson, match=reason):
        parse_body(text)


def test_stored_json_is_compact_utf8_and_refuses_lone_surrogates() -> None:
    assert encode_json({"q": "café", "n": [1, 2.5]}) == '{"q":"café","n":[1,2.5]}'
    with pytest.raises(ValueError, match="surrogate"):
        encode_json({"q": json.loads('"\\ud800"')})


def test_settings_come_from_upper_case_environment_names() -> None:
    environment = {
        "SESSIONS_TABLE": "s-table",
        "SESSION_IDS_TABLE": "i-table",
        "EVENTS_TABLE": "e-table",
        "BATCHES_TABLE": "b-table",
        "TASKS_TABLE": "t-table",
        "USER_DATASETS_TABLE": "u-table",
        "TIMESTAMP_PAST_MS": "1000",
    }
    settings = Settings.from_environment(environment)
    assert (settings.sessions_table, settings.timestamp_past_ms, settings.timestamp_future_ms) == (
        "s-table",
        1000,
        300_000,
    )
    with pytest.raises(ValidationError):
        Settings.from_environment({**environment, "TIMESTAMP_PAST_MS": "-1"})
    with pytest.raises(ValidationError):
        Settings.from_environment({})


def test_an_event_id_must_fit_the_time_index_key() -> None:
    assert NewEvent(event_id="🔎" * 250, object_id="o").event_id == "🔎" * 250  # 1000 bytes
    with pytest.raises(ValidationError) as raised:
        NewEvent(event_id="🔎" * 251, object_id="o")
    assert error_fields(raised.value) == ["event_id"]
