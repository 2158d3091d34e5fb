"""Hostile input over real HTTP (contract 4): never a 5xx, always a JSON error that names the field, never a leak.

Every error response in this module goes through `refused`, which also checks that the body carries no
stack trace, AWS error text, table name or ARN.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from clickstream import runtime
from local.dynamodb import EmbeddedAws, local_table_names
from local.server import MAX_BODY_BYTES
from local.template import ROOT
from tests.conftest import local_functions, serve_locally, use_fresh_tables
from tests.support import new_session_body, unique

JSON = {"Content-Type": "application/json"}
TIMEOUT = 60

# What must never reach a caller: stack traces, AWS/botocore error text, table names, ARNs.
LEAK_MARKERS = (
    "Traceback",
    'File "',
    "botocore",
    "boto3",
    "ClientError",
    "An error occurred (",
    "Exception",
    "arn:",
    "amazonaws.com",
    "x-amz",
)


@pytest.fixture(scope="module")
def api(dynamodb: EmbeddedAws, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One local server (fresh tables) for the whole module; each test uses its own ids."""
    with pytest.MonkeyPatch.context() as environment:
        use_fresh_tables(dynamodb, environment, tmp_path_factory.mktemp("lake"))
        yield from serve_locally(local_functions())
        runtime.reset()


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def refused(response: requests.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """Assert an error response: the status, a JSON body with a message (naming `field`), and no leak."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("application/json")
    text = response.text
    for marker in (*LEAK_MARKERS, *local_table_names()):
        assert marker not in text, f"{marker!r} leaked in {text[:500]}"
    body: dict[str, Any] = response.json()
    assert isinstance(body["message"], str)
    assert body["message"]
    if field is not None:
        fields = [problem["field"] for problem in body.get("errors", [])]
        assert field in fields or field in body["message"], (field, body)
    return body


def post(http: requests.Session, url: str, body: str | bytes, headers: dict[str, str] | None = None) -> Any:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return http.post(url, data=data, headers=JSON if headers is None else headers, timeout=TIMEOUT)


def session_json(session_id: str, **members: str) -> str:
    """A `POST /session` body as raw JSON text, so members can hold what json.dumps would not write."""
    fields = {"session_id": json.dumps(session_id), "search_query": '"q"', "search_results": "[]", **members}
    return "{" + ",".join(f'"{name}": {value}' for name, value in fields.items()) + "}"


def register(http: requests.Session, api: str, **overrides: Any) -> dict[str, Any]:
    response = http.post(f"{api}/session", json=new_session_body(**overrides), timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- size ---------------------------------------------------------------------------------------------


def test_a_session_bigger_than_one_dynamodb_item_is_413_and_not_stored(api: str, http: requests.Session) -> None:
    session_id = unique("big")
    results = [{"object_id": f"obj-{n}", "meta": {"note": "x" * 400}} for n in range(1000)]
    body = refused(
        http.post(f"{api}/session", json=new_session_body(session_id, search_results=results), timeout=TIMEOUT),
        413,
    )
    assert "session" in body["message"]
    assert "too large" in body["message"]
    refused(http.get(f"{api}/session", params={"session_id": session_id}, timeout=TIMEOUT), 404)


def test_a_repeated_registration_returns_the_first_whatever_the_repeat_carries(
    api: str, http: requests.Session
) -> None:
    first = register(http, api, session_id=unique("again"), search_query="first")
    session_id = first["session_id"]
    oversized = [{"object_id": f"obj-{n}", "meta": {"note": "x" * 400}} for n in range(1000)]  # a 413 if new
    repeats = [
        new_session_body(session_id, search_results=oversized),
        new_session_body(session_id, search_query="second", created_at=1),  # outside the time window
        new_session_body(session_id, search_query="third", is_payload_search=True),
    ]
    for repeat in repeats:
        response = http.post(f"{api}/session", json=repeat, timeout=TIMEOUT)
        assert (response.status_code, response.json()) == (200, first)
    stored = http.get(f"{api}/session", params={"session_id": session_id}, timeout=TIMEOUT).json()
    assert (stored["search_query"], len(stored["search_results"]), stored["is_payload_search"]) == ("first", 2, False)


def test_a_session_just_under_the_item_limit_is_stored_and_read_back_whole(api: str, http: requests.Session) -> None:
    session_id = unique("large")
    results = [{"object_id": f"obj-{n}", "meta": {"note": "y" * 250}} for n in range(1000)]
    register(http, api, session_id=session_id, search_results=results)
    fetched = http.get(f"{api}/session", params={"session_id": session_id}, timeout=TIMEOUT)
    assert fetched.status_code == 200
    assert fetched.json()["search_results"] == [{**result, "rank": None, "team": None} for result in results]


def test_an_event_too_large_to_store_is_413_naming_it(api: str, http: requests.Session) -> None:
    session_id = register(http, api)["session_id"]
    events = [{"event_id": "e-1", "object_id": "o"}, {"event_id": "e-2", "object_id": "o", "meta": {"n": "z" * 5000}}]
    response = http.post(f"{api}/session/events", json={"session_id": session_id, "events": events}, timeout=TIMEOUT)
    assert "events[1]" in refused(response, 413)["message"]


def test_more_than_1000_search_results_is_422(api: str, http: requests.Session) -> None:
    results = [{"object_id": f"o{n}"} for n in range(1001)]
    response = http.post(f"{api}/session", json=new_session_body(search_results=results), timeout=TIMEOUT)
    refused(response, 422, "search_results")


def test_a_body_over_10_mb_is_413(api: str, http: requests.Session) -> None:
    body = b'{"session_id": "s", "search_query": "' + b"q" * MAX_BODY_BYTES + b'", "search_results": []}'
    try:
        response = post(http, f"{api}/session", body)
    except requests.ConnectionError:  # the server may answer and close before the whole body is sent
        pytest.fail("the server dropped the connection instead of answering 413")
    refused(response, 413)


def test_huge_json_bodies_under_10_mb_are_refused_with_4xx(api: str, http: requests.Session) -> None:
    many_results = json.dumps(new_session_body(search_results=[{"object_id": "o"}] * 300_000))
    refused(post(http, f"{api}/session", many_results), 422, "search_results")
    long_id = json.dumps({"session_id": "s" * 5_000_000, "search_query": "q", "search_results": []})
    refused(post(http, f"{api}/session", long_id), 422, "session_id")
    wide_meta = json.dumps(new_session_body(search_meta={f"k{n}": n for n in range(300_000)}))
    refused(post(http, f"{api}/session", wide_meta), 413)
    many_events = json.dumps({"session_id": "s", "events": [{"event_id": "e", "object_id": "o"}] * 200_000})
    refused(post(http, f"{api}/session/events", many_events), 422, "events")


# --- nesting -------------------------------------------------------------------------------------------


def nested(depth: int) -> str:
    """An object nested `depth` levels deep (the outermost counts as one)."""
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


@pytest.mark.parametrize("member", ["search_meta", "payload_filter", "search_query"])
def test_nesting_up_to_the_limit_is_stored_and_read_back(api: str, http: requests.Session, member: str) -> None:
    # The session body is level 1, so a member may nest 63 more levels.
    session_id = unique("deep")
    response = post(http, f"{api}/session", session_json(session_id, **{member: nested(63)}))
    assert response.status_code == 200, response.text
    fetched = http.get(f"{api}/session", params={"session_id": session_id}, timeout=TIMEOUT).json()
    assert fetched[member] == json.loads(nested(63))


@pytest.mark.parametrize("depth", [64, 500, 955, 5_000, 100_000])
@pytest.mark.parametrize("member", ["search_meta", "payload_filter", "search_query", "search_results"])
def test_deeper_nesting_is_400_wherever_it_is(api: str, http: requests.Session, member: str, depth: int) -> None:
    value = nested(depth) if member != "search_results" else f'[{{"object_id": "o", "meta": {nested(depth)}}}]'
    body = refused(post(http, f"{api}/session", session_json(unique("deep"), **{member: value})), 400, "body")
    assert "nested too deeply" in body["errors"][0]["message"]


@pytest.mark.parametrize("depth", [63, 955, 100_000])
def test_deeply_nested_event_meta_is_400(api: str, http: requests.Session, depth: int) -> None:
    events = f'[{{"event_id": "e", "object_id": "o", "meta": {nested(depth)}}}]'
    refused(post(http, f"{api}/session/events", f'{{"session_id": "s", "events": {events}}}'), 400, "body")


# --- identifiers: control characters, non-ASCII, lone surrogates --------------------------------------

CONTROL_CHARACTERS = ["\x00", "\n", "\t", "\x1b", "\x7f", "\x85", "\x9f"]


# (route, body holding the character, the field the 422 must name)
IDENTIFIER_CASES: dict[str, tuple[str, Callable[[str], dict[str, Any]], str]] = {
    "session_id": ("/session", lambda c: new_session_body(f"s{c}x"), "session_id"),
    "user_id": ("/session", lambda c: new_session_body(user_id=f"u{c}"), "user_id"),
    "object_id": (
        "/session",
        lambda c: new_session_body(search_results=[{"object_id": c}]),
        "search_results[0].object_id",
    ),
    "sort_by": ("/session", lambda c: new_session_body(sort_by={"field": f"price{c}"}), "sort_by.field"),
    "event_id": (
        "/session/events",
        lambda c: {"session_id": "s", "events": [{"event_id": c, "object_id": "o"}]},
        "events[0].event_id",
    ),
    "irrelevant": ("/session/irrelevant", lambda c: {"session_id": f"{c}s"}, "session_id"),
    "use-for-improvement": ("/session/use-for-improvement", lambda c: {"session_id": f"s{c}"}, "session_id"),
    "release": ("/batch/release", lambda c: {"release_id": f"r{c}"}, "release_id"),
}


@pytest.mark.parametrize("control", CONTROL_CHARACTERS, ids=repr)
@pytest.mark.parametrize("case", IDENTIFIER_CASES)
def test_control_characters_in_identifiers_are_422_naming_the_field(
    api: str, http: requests.Session, case: str, control: str
) -> None:
    path, body, field = IDENTIFIER_CASES[case]
    refused(http.post(f"{api}{path}", json=body(control), timeout=TIMEOUT), 422, field)


@pytest.mark.parametrize("control", CONTROL_CHARACTERS, ids=repr)
@pytest.mark.parametrize(("path", "field"), [("/session", "session_id"), ("/batch/sessions", "batch_id")])
def test_control_characters_in_query_identifiers_are_422(
    api: str, http: requests.Session, path: str, field: str, control: str
) -> None:
    refused(http.get(f"{api}{path}", params={field: f"id{control}"}, timeout=TIMEOUT), 422, field)


@pytest.mark.parametrize(
    ("path", "field", "event_field"),
    [
        ("/session/events", "events[0].object_id", "object_id"),
        ("/session/events", "events[0].event_type", "event_type"),
    ],
)
def test_control_characters_in_event_fields_are_422(
    api: str, http: requests.Session, path: str, field: str, event_field: str
) -> None:
    event = {"event_id": "e", "object_id": "o", event_field: "bad\x00value"}
    refused(http.post(f"{api}{path}", json={"session_id": "s", "events": [event]}, timeout=TIMEOUT), 422, field)


def test_non_ascii_printable_identifiers_work_end_to_end(api: str, http: requests.Session) -> None:
    suffix = uuid.uuid4().hex[:6]
    session_id = f"séance-日本語-🔍-Ω-{suffix}"
    user_id = "usuário-Жанна-👩\u200d💻"
    object_id = "商品-①-ß"
    event_id = "évènement-😀-\u2028-עברית"
    event_type = "klick-ü"
    registered = register(
        http,
        api,
        session_id=session_id,
        user_id=user_id,
        search_query={"text": "chaussures rouges 👟", "lang": "fr"},
        search_results=[{"object_id": object_id, "rank": 1.0, "meta": {"名前": "靴"}}],
        sort_by={"field": "prix-€", "order": "desc"},
    )
    assert registered["session_id"] == session_id
    events = {
        "session_id": session_id,
        "events": [{"event_id": event_id, "object_id": object_id, "event_type": event_type}],
    }
    added = http.post(f"{api}/session/events", json=events, timeout=TIMEOUT)
    assert added.json() == {"session_id": session_id, "accepted": 1, "duplicates": 0}

    fetched = http.get(f"{api}/session", params={"session_id": session_id}, timeout=TIMEOUT)
    assert fetched.status_code == 200
    session = fetched.json()
    assert (session["session_id"], session["user_id"]) == (session_id, user_id)
    assert session["search_results"][0]["object_id"] == object_id
    assert session["search_results"][0]["meta"] == {"名前": "靴"}
    assert session["sort_by"]["field"] == "prix-€"
    assert [(e["event_id"], e["object_id"], e["event_type"]) for e in session["events"]] == [
        (event_id, object_id, event_type)
    ]

    page = http.get(
        f"{api}/batch/sessions", params={"batch_id": registered["batch_id"], "limit": 1000}, timeout=TIMEOUT
    ).json()
    assert session_id in [listed["session_id"] for listed in page["sessions"]]

    scheduled = http.post(f"{api}/session/use-for-improvement", json={"session_id": session_id}, timeout=TIMEOUT)
    assert scheduled.json()["task"]["session_id"] == session_id
    marked = http.post(f"{api}/session/irrelevant", json={"session_id": session_id}, timeout=TIMEOUT)
    assert marked.json() == {"session_id": session_id, "is_irrelevant": True}

    release_id = f"veröffentlichung-🚀-{suffix}"
    released = http.post(f"{api}/batch/release", json={"release_id": release_id}, timeout=TIMEOUT)
    assert released.status_code == 200
    assert released.json()["release_id"] == release_id
    again = http.post(f"{api}/batch/release", json={"release_id": release_id}, timeout=TIMEOUT)
    assert again.json() == released.json()


LONE_SURROGATE = '"\\ud800"'  # a JSON escape with no UTF-8 form
LONE_SURROGATE_KEY = '{"\\udc00x": 1}'


@pytest.mark.parametrize(
    ("members", "field"),
    [
        ({"session_id": LONE_SURROGATE}, "session_id"),
        ({"user_id": '"u\\ud800"'}, "user_id"),
        ({"search_query": LONE_SURROGATE}, "search_query"),
        ({"search_query": '{"text": "\\udfff"}'}, "search_query"),
        ({"search_meta": '{"k": "\\ud800"}'}, "search_meta"),
        ({"search_meta": LONE_SURROGATE_KEY}, "search_meta"),
        ({"payload_filter": '{"must": [{"match": "\\udbff"}]}'}, "payload_filter"),
        ({"search_results": '[{"object_id": "\\ud800"}]'}, "search_results[0].object_id"),
        ({"search_results": '[{"object_id": "o", "meta": {"x": "\\ud800"}}]'}, "search_results"),
        ({"sort_by": '{"field": "\\ud800"}'}, "sort_by.field"),
    ],
)
def test_lone_surrogates_in_a_session_are_422_naming_the_field(
    api: str, http: requests.Session, members: dict[str, str], field: str
) -> None:
    session_id = members.pop("session_id", json.dumps(unique("surrogate")))
    body = session_json("", **members).replace('"session_id": ""', f'"session_id": {session_id}')
    response = post(http, f"{api}/session", body)
    assert response.status_code == 422, response.text
    problems = refused(response, 422)["errors"]
    assert any(problem["field"].startswith(field) for problem in problems), (field, problems)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/session/events",
            '{"session_id": "s", "events": [{"event_id": "\\ud800", "object_id": "o"}]}',
            "events[0].event_id",
        ),
        (
            "/session/events",
            '{"session_id": "s", "events": [{"event_id": "e", "object_id": "o", "meta": {"m": "\\udc00"}}]}',
            "events[0].meta",
        ),
        ("/session/irrelevant", '{"session_id": "\\ud800"}', "session_id"),
        ("/session/use-for-improvement", '{"session_id": "\\udfff"}', "session_id"),
        ("/batch/release", '{"release_id": "\\ud800"}', "release_id"),
    ],
)
def test_lone_surrogates_elsewhere_are_422(api: str, http: requests.Session, path: str, body: str, field: str) -> None:
    if path == "/session/events":
        session_id = register(http, api)["session_id"]
        body = body.replace('"session_id": "s"', f'"session_id": "{session_id}"')
    problems = refused(post(http, f"{api}{path}", body), 422)["errors"]
    assert any(problem["field"].startswith(field) for problem in problems), (field, problems)


@pytest.mark.parametrize("query", ["session_id=%ED%A0%80", "session_id=%FF%FE", "session_id=a%C0%AFb"])
def test_invalid_utf8_in_the_query_is_a_4xx(api: str, http: requests.Session, query: str) -> None:
    response = http.get(f"{api}/session?{query}", timeout=TIMEOUT)
    assert 400 <= response.status_code < 500
    refused(response, response.status_code)


def test_a_body_that_is_not_utf8_is_400(api: str, http: requests.Session) -> None:
    for body in (b'{"session_id": "\xed\xa0\x80"}', b"\xff\xfe{}", b'{"session_id": "caf\xe9"}'):
        refused(post(http, f"{api}/session", body), 400, "body")


# --- numbers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"created_at": "1700000000000"}, "created_at"),
        ({"search_results": [{"object_id": "o", "rank": "1"}]}, "search_results[0].rank"),
        ({"is_payload_search": "true"}, "is_payload_search"),
        ({"is_payload_search": 1}, "is_payload_search"),
        ({"session_id": 12345}, "session_id"),
        ({"user_id": 42}, "user_id"),
    ],
)
def test_wrongly_typed_values_are_422_never_coerced(
    api: str, http: requests.Session, overrides: dict[str, Any], field: str
) -> None:
    refused(http.post(f"{api}/session", json=new_session_body(**overrides), timeout=TIMEOUT), 422, field)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('"created_at": 1e300', "created_at"),
        ('"created_at": 1000000000000000000000000000000', "created_at"),
        ('"created_at": -1', "created_at"),
        ('"created_at": 0', "created_at"),  # schema-valid, outside the accepted window
        ('"created_at": 1700000000000.5', "created_at"),
        ('"search_results": [{"object_id": "o", "rank": 1e400}]', "search_results[0].rank"),
        ('"search_results": [{"object_id": "o", "rank": -1e400}]', "search_results[0].rank"),
        ('"search_results": [{"object_id": "o", "rank": 1' + "0" * 400 + "}]", "search_results[0].rank"),
        ('"search_meta": {"x": 1e400}', "search_meta"),
    ],
)
def test_negative_and_huge_numbers_in_a_session_are_422(api: str, http: requests.Session, raw: str, field: str) -> None:
    name, value = raw.split(": ", 1)
    body = session_json(unique("num"), **{name.strip('"'): value})
    refused(post(http, f"{api}/session", body), 422, field)


def test_an_event_timestamp_out_of_range_is_422_naming_it(api: str, http: requests.Session) -> None:
    session_id = register(http, api)["session_id"]
    for created_at in ("1e300", "-1", "99999999999999999999", '"1700000000000"'):
        event = f'{{"event_id": "e", "object_id": "o", "created_at": {created_at}}}'
        body = f'{{"session_id": "{session_id}", "events": [{event}]}}'
        refused(post(http, f"{api}/session/events", body), 422, "events[0].created_at")


def test_an_integer_literal_too_long_to_convert_is_400(api: str, http: requests.Session) -> None:
    body = session_json(unique("digits"), search_meta='{"x": ' + "9" * 5000 + "}")
    refused(post(http, f"{api}/session", body), 400, "body")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"after_number": "-1"}, "after_number"),
        ({"after_number": str(2**53 + 1)}, "after_number"),
        ({"after_number": "9" * 5000}, "after_number"),
        ({"after_number": "1e3"}, "after_number"),
        ({"limit": str(10**30)}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "-5"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"events_limit": "-1"}, "events_limit"),
        ({"events_limit": "1001"}, "events_limit"),
        ({"events_limit": "NaN"}, "events_limit"),
        ({"batch_id": ""}, "batch_id"),
        ({"batch_id": "b" * 257}, "batch_id"),
    ],
)
def test_out_of_range_query_numbers_are_422(
    api: str, http: requests.Session, query: dict[str, str], field: str
) -> None:
    params = {"batch_id": "b-any", **query}
    refused(http.get(f"{api}/batch/sessions", params=params, timeout=TIMEOUT), 422, field)


def integer_query_parameters() -> list[tuple[str, str]]:
    """(path, name) of every integer query parameter of the API (docs/openapi.json)."""
    document = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    return [
        (path, parameter["name"])
        for path, operations in document["paths"].items()
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and parameter["schema"].get("type") == "integer"
    ]


REQUIRED_QUERY = {"/batch/sessions": {"batch_id": "b-any"}, "/session": {"session_id": "sess-any"}}


def test_every_integer_query_parameter_is_found() -> None:
    assert {name for _, name in integer_query_parameters()} == {"after_number", "limit", "events_limit"}
    assert len(integer_query_parameters()) == 6


@pytest.mark.parametrize("value", ["1_0", " 5", "5 ", "+5", "\u0665", "5\n", "0x5"], ids=repr)
@pytest.mark.parametrize(("path", "name"), integer_query_parameters())
def test_query_integers_are_plain_ascii_digits_or_422_naming_the_parameter(
    api: str, http: requests.Session, path: str, name: str, value: str
) -> None:
    params = {**REQUIRED_QUERY.get(path, {}), name: value}
    refused(http.get(f"{api}{path}", params=params, timeout=TIMEOUT), 422, name)
    params[name] = "5"  # the same number in plain digits is taken
    assert http.get(f"{api}{path}", params=params, timeout=TIMEOUT).status_code in (200, 404)


def test_repeated_query_parameters_are_422_not_a_crash(api: str, http: requests.Session) -> None:
    response = http.get(f"{api}/batch/sessions?batch_id=b-any&limit=1&limit=2", timeout=TIMEOUT)
    refused(response, 422, "limit")
    refused(http.get(f"{api}/session?events_limit=1e400&session_id=s", timeout=TIMEOUT), 422, "events_limit")


# --- malformed documents -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        '{"session_id": "s", "search_query": NaN, "search_results": []}',
        '{"session_id": "s", "search_query": "q", "search_results": [{"object_id": "o", "rank": Infinity}]}',
        '{"session_id": "s", "search_query": "q", "search_results": [], "search_meta": {"x": -Infinity}}',
    ],
)
def test_nan_and_infinity_literals_are_400(api: str, http: requests.Session, body: str) -> None:
    refused(post(http, f"{api}/session", body), 400, "body")


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('{"session_id": "a", "session_id": "b", "search_query": "q", "search_results": []}', "session_id"),
        ('{"session_id": "a", "search_query": "q", "search_results": [], "search_meta": {"k": 1, "k": 2}}', "k"),
    ],
)
def test_duplicate_keys_are_400_naming_the_key(api: str, http: requests.Session, body: str, key: str) -> None:
    problems = refused(post(http, f"{api}/session", body), 400, "body")["errors"]
    assert f"duplicate key '{key}'" in problems[0]["message"]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"],
)
@pytest.mark.parametrize("path", ["/session", "/session/events", "/batch/release"])
def test_a_body_that_is_not_json_is_415(api: str, http: requests.Session, path: str, content_type: str) -> None:
    body = json.dumps(new_session_body())
    refused(post(http, f"{api}{path}", body, {"Content-Type": content_type}), 415)


def test_json_with_a_charset_is_accepted(api: str, http: requests.Session) -> None:
    body = json.dumps(new_session_body())
    response = post(http, f"{api}/session", body, {"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "path", ["/session", "/session/events", "/session/irrelevant", "/session/use-for-improvement", "/batch/release"]
)
@pytest.mark.parametrize("body", ["", "[]", '[{"session_id": "s"}]', '"s"', "42", "true", "null", "{}"])
def test_an_empty_body_or_anything_but_an_object_is_422(api: str, http: requests.Session, path: str, body: str) -> None:
    refused(post(http, f"{api}{path}", body), 422)


@pytest.mark.parametrize(
    "body",
    ['{"session_id": "s"', '{"session_id": "s"} {}', "\ufeff{}", "{'session_id': 's'}", '{"a": 1,}', "[1, 2"],
)
def test_malformed_json_is_400(api: str, http: requests.Session, body: str) -> None:
    refused(post(http, f"{api}/session", body), 400, "body")


def test_an_object_wrapped_in_an_array_is_refused_not_unwrapped(api: str, http: requests.Session) -> None:
    session_id = register(http, api)["session_id"]
    wrapped = json.dumps([{"session_id": session_id}])
    refused(post(http, f"{api}/session/irrelevant", wrapped), 422, "body")
    refused(post(http, f"{api}/session/use-for-improvement", wrapped), 422, "body")
    refused(post(http, f"{api}/batch/release", json.dumps([{"release_id": unique("release")}])), 422, "body")
    fetched = http.get(f"{api}/session", params={"session_id": session_id}, timeout=TIMEOUT).json()
    assert fetched["is_irrelevant"] is False
