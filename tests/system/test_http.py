"""The local server: every route over real HTTP, as the README walkthrough uses it."""

from __future__ import annotations

import requests

from local.openapi import generate
from local.template import http_routes, load_template
from tests.support import new_session_body


def test_readme_walkthrough_over_http(local_api: str, http: requests.Session) -> None:
    registered = http.post(f"{local_api}/session", json=new_session_body("sess-http"), timeout=10)
    assert registered.status_code == 200
    assert registered.headers["Content-Type"] == "application/json"
    batch_id = registered.json()["batch_id"]

    events = {"session_id": "sess-http", "events": [{"event_id": "evt-1", "object_id": "shoe-3"}]}
    added = http.post(f"{local_api}/session/events", json=events, timeout=10)
    assert added.json() == {"session_id": "sess-http", "accepted": 1, "duplicates": 0}

    page = http.get(f"{local_api}/batch/sessions", params={"batch_id": batch_id, "limit": 2}, timeout=10).json()
    assert page["last_number"] == 1
    assert page["sessions"][0]["events"][0]["event_id"] == "evt-1"

    scheduled = http.post(f"{local_api}/session/use-for-improvement", json={"session_id": "sess-http"}, timeout=10)
    assert scheduled.json()["status"] == "scheduled"

    released = http.post(f"{local_api}/batch/release", json={"release_id": "release-http"}, timeout=10)
    assert released.status_code == 200
    assert released.json()["session_count"] == 1

    fetched = http.get(f"{local_api}/session", params={"session_id": "sess-http"}, timeout=10).json()
    assert fetched["batch_id"] == batch_id


def test_unknown_routes_and_methods_are_404_json(local_api: str, http: requests.Session) -> None:
    for method, path in (("GET", "/nope"), ("DELETE", "/session"), ("GET", "/batch/release")):
        response = http.request(method, f"{local_api}{path}", timeout=10)
        assert response.status_code == 404
        assert response.json() == {"message": "Not Found"}


def test_the_server_serves_the_openapi_document_of_the_code(local_api: str, http: requests.Session) -> None:
    served = http.get(f"{local_api}/openapi.json", timeout=10).json()
    routes = {f"{route.method} {route.path}" for route in http_routes(load_template())}
    assert {f"{method.upper()} {path}" for path, item in served["paths"].items() for method in item} == routes
    assert served == generate()
