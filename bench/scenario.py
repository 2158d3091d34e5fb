"""The fixed scenario whose DynamoDB requests per API call are documented in bench/RESULTS.md.

`make bench` runs it and writes the table; tests/test_request_counts.py runs it again on fresh
tables and fails when a case issues more requests than the table says. One scenario, one table.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from local.lambda_runtime import http_api_event
from local.seed import sample_session_body
from local.template import http_routes, load_template

if TYPE_CHECKING:
    from botocore.model import OperationModel
    from mypy_boto3_dynamodb.client import DynamoDBClient

# (function_id, API Gateway event) -> (status, parsed JSON body)
Send = Callable[[str, dict[str, Any]], tuple[int, Any]]

COUNTS_START = "<!-- request-counts:start -->"
COUNTS_END = "<!-- request-counts:end -->"
SESSIONS = 10
EVENTS_PER_SESSION = 3


class ScenarioError(AssertionError):
    """A step of the scenario did not answer as the scenario expects (the counts would mean nothing)."""


def route_functions() -> dict[str, str]:
    """ "POST /session" -> "CollectionFunction", from template.yaml."""
    return {f"{route.method} {route.path}": route.function_id for route in http_routes(load_template())}


def api_event(route: str, *, body: Any = None, query: dict[str, str] | None = None) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event for `route` ("METHOD /path")."""
    method, path = route.split(" ", 1)
    payload = None if body is None else json.dumps(body).encode()
    return http_api_event(
        method=method,
        path=path,
        route_key=route,
        query=query,
        raw_query="&".join(f"{name}={value}" for name, value in (query or {}).items()),
        headers={"content-type": "application/json"} if payload else {},
        body=payload,
    )


class RequestCounter:
    """Counts the DynamoDB API calls a client makes (botocore `before-call` events, any thread)."""

    def __init__(self, client: DynamoDBClient) -> None:
        self._client = client
        self._operations: list[str] = []
        self._lock = threading.Lock()
        self._unique_id = f"request-counter-{id(self)}"
        client.meta.events.register("before-call.dynamodb", self._on_call, unique_id=self._unique_id)

    def _on_call(self, model: OperationModel, **_: Any) -> None:
        with self._lock:
            self._operations.append(model.name)

    @contextmanager
    def counting(self) -> Iterator[list[str]]:
        """Yields a list that holds, after the block, the operations issued inside it."""
        with self._lock:
            start = len(self._operations)
        issued: list[str] = []
        yield issued
        with self._lock:
            issued.extend(self._operations[start:])

    def close(self) -> None:
        self._client.meta.events.unregister("before-call.dynamodb", unique_id=self._unique_id)


@dataclass(frozen=True)
class Case:
    case_id: str
    route: str
    description: str
    requests: int
    operations: str


def _describe(operations: list[str]) -> str:
    counts = Counter(operations)
    return ", ".join(f"{name} x{count}" if count > 1 else name for name, count in sorted(counts.items()))


def run_scenario(send: Send, counter: RequestCounter, prefix: str = "scn") -> list[Case]:
    """Drive every route once or more on FRESH tables; the requests of each case (max over repeats)."""
    functions = route_functions()
    cases: dict[str, Case] = {}

    def call(
        case_id: str,
        route: str,
        description: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        expect: int = 200,
    ) -> Any:
        event = api_event(route, body=body, query=query)
        with counter.counting() as issued:
            status, payload = send(functions[route], event)
        if status != expect:
            raise ScenarioError(f"{case_id}: {route} answered {status}, expected {expect}: {payload}")
        previous = cases.get(case_id)
        if previous is None or len(issued) > previous.requests:
            cases[case_id] = Case(case_id, route, description, len(issued), _describe(issued))
        return payload

    sessions = [f"{prefix}-s{index}" for index in range(SESSIONS)]
    first = call(
        "register_opens_batch", "POST /session", "first session: opens a batch", body=sample_session_body(sessions[0])
    )
    batch_id = first["batch_id"]
    for session_id in sessions[1:]:
        call("register", "POST /session", "new session, batch open", body=sample_session_body(session_id))
    call("register_repeat", "POST /session", "same session_id again", body=sample_session_body(sessions[0]))
    quiet = f"{prefix}-quiet"
    call("register", "POST /session", "new session, batch open", body=sample_session_body(quiet))
    for session_id in sessions:
        events = [{"event_id": f"{session_id}-e{n}", "object_id": "shoe-17"} for n in range(EVENTS_PER_SESSION)]
        call(
            "add_events",
            "POST /session/events",
            f"{EVENTS_PER_SESSION} new events",
            body={"session_id": session_id, "events": events},
        )
    retried = [{"event_id": f"{sessions[0]}-e{n}", "object_id": "shoe-17"} for n in range(EVENTS_PER_SESSION)]
    call(
        "add_events_retry",
        "POST /session/events",
        f"the same {EVENTS_PER_SESSION} events again",
        body={"session_id": sessions[0], "events": retried},
    )
    call("mark_irrelevant", "POST /session/irrelevant", "registered session", body={"session_id": sessions[1]})
    call("get_session", "GET /session", f"session with {EVENTS_PER_SESSION} events", query={"session_id": sessions[0]})
    call("get_session_unknown", "GET /session", "unknown session: 404", query={"session_id": "nobody"}, expect=404)
    use = "POST /session/use-for-improvement"
    call("use_scheduled", use, "session with events: scheduled", body={"session_id": sessions[0]})
    call("use_pending", use, "again while pending: same task", body={"session_id": sessions[0]})
    call("use_skipped", use, "session without events: skipped", body={"session_id": quiet})
    page = "GET /batch/sessions"
    total = SESSIONS + 1
    call(
        "page_full",
        page,
        f"limit {SESSIONS} of {total} sessions, {EVENTS_PER_SESSION} events each",
        query={"batch_id": batch_id, "limit": str(SESSIONS)},
    )
    call(
        "page_last",
        page,
        "last page (1 session)",
        query={"batch_id": batch_id, "after_number": str(SESSIONS), "limit": str(SESSIONS)},
    )
    call(
        "page_past_end",
        page,
        "after the last session, batch collecting",
        query={"batch_id": batch_id, "after_number": str(total)},
    )
    call("page_unknown_batch", page, "unknown batch: 404", query={"batch_id": "b-unknown"}, expect=404)
    release = "POST /batch/release"
    call("release", release, f"release a batch of {total} sessions", body={"release_id": f"{prefix}-r1"})
    call("release_repeat", release, "same release_id again", body={"release_id": f"{prefix}-r1"})
    call(
        "page_past_end_released",
        page,
        "after the last session, batch released",
        query={"batch_id": batch_id, "after_number": str(total)},
    )
    return list(cases.values())


def counts_table(cases: list[Case]) -> str:
    """The documented table, between markers so tests can find it."""
    lines = [
        COUNTS_START,
        "| Case | Route | Scenario step | DynamoDB requests | Operations |",
        "|---|---|---|---:|---|",
        *(
            f"| `{case.case_id}` | `{case.route}` | {case.description} | {case.requests} | {case.operations} |"
            for case in cases
        ),
        COUNTS_END,
    ]
    return "\n".join(lines)


_ROW = re.compile(r"^\|\s*`(?P<case>[a-z0-9_]+)`\s*\|[^|]*\|[^|]*\|\s*(?P<requests>\d+)\s*\|")


def documented_counts(markdown: str) -> dict[str, int]:
    """Parse the table `counts_table` wrote: case id -> documented DynamoDB requests."""
    start, end = markdown.find(COUNTS_START), markdown.find(COUNTS_END)
    if start < 0 or end < start:
        raise ValueError("no request-counts table (markers missing)")
    documented: dict[str, int] = {}
    for line in markdown[start:end].splitlines():
        match = _ROW.match(line.strip())
        if match:
            documented[match["case"]] = int(match["requests"])
    if not documented:
        raise ValueError("request-counts table has no rows")
    return documented
