"""DynamoDB requests per API call: the counter, the fixed scenario, and the table that documents it.

`make bench` runs the scenario and writes the table into bench/RESULTS.md; the request-count test runs
it again on fresh tables and fails when a case issues more requests than the table says.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

from local.apigateway import HttpResult
from local.seed import sample_session_body

if TYPE_CHECKING:
    from botocore.model import OperationModel
    from mypy_boto3_dynamodb.client import DynamoDBClient

# A JSON call to a route ("POST /session") with a body or query, answered as the function answers it.
Call = Callable[..., HttpResult]

COUNTS_START = "<!-- request-counts:start -->"
COUNTS_END = "<!-- request-counts:end -->"
SESSIONS = 10
EVENTS_PER_SESSION = 3


class ScenarioError(AssertionError):
    """A step of the scenario did not answer as the scenario expects (the counts would mean nothing)."""


@dataclass(frozen=True)
class Request:
    """One DynamoDB API call (retries of it are not counted again)."""

    operation: str
    update: str  # the UpdateExpression of an UpdateItem

    @property
    def takes_numbers(self) -> bool:
        """An ADD on the collecting pointer: a block of session numbers."""
        return self.operation == "UpdateItem" and self.update.startswith("ADD")


@contextmanager
def on_new_dynamodb_clients(attach: Callable[[Any], None]) -> Iterator[None]:
    """Hand every DynamoDB client boto3 creates inside the block to `attach` as it is created: how a test or
    a benchmark instruments the client a service builds for itself (after `runtime.reset()`)."""
    original = boto3.session.Session.client

    def client(session: boto3.session.Session, *args: Any, **kwargs: Any) -> Any:
        created = original(session, *args, **kwargs)
        if (args[0] if args else kwargs.get("service_name")) == "dynamodb":
            attach(created)
        return created

    boto3.session.Session.client = client  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        boto3.session.Session.client = original  # type: ignore[method-assign]


def service_dynamodb_client() -> DynamoDBClient:
    """The DynamoDB client of the container's service, built now (on the settings of the environment)."""
    from clickstream import runtime

    created: list[DynamoDBClient] = []
    with on_new_dynamodb_clients(created.append):
        runtime.reset()
        runtime.get_service()
    [client] = created
    return client


class RequestCounter:
    """Counts the DynamoDB API calls a client makes (botocore `provide-client-params`, any thread)."""

    _EVENT = "provide-client-params.dynamodb"

    def __init__(self, client: DynamoDBClient) -> None:
        self._client = client
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self._unique_id = f"request-counter-{id(self)}"
        client.meta.events.register(self._EVENT, self._on_call, unique_id=self._unique_id)

    def _on_call(self, params: dict[str, Any], model: OperationModel, **_: Any) -> None:
        with self._lock:
            self._requests.append(Request(model.name, str(params.get("UpdateExpression", ""))))

    @contextmanager
    def counting(self) -> Iterator[list[Request]]:
        """Yields a list that holds, after the block, the requests issued inside it."""
        with self._lock:
            start = len(self._requests)
        issued: list[Request] = []
        yield issued
        with self._lock:
            issued.extend(self._requests[start:])

    def close(self) -> None:
        self._client.meta.events.unregister(self._EVENT, unique_id=self._unique_id)


@dataclass(frozen=True)
class Case:
    case_id: str
    route: str
    description: str
    requests: int
    operations: str


def _describe(requests: list[Request]) -> str:
    counts = Counter(request.operation for request in requests)
    return ", ".join(f"{name} x{count}" if count > 1 else name for name, count in sorted(counts.items()))


class Scenario:
    """Every route, driven once or more on FRESH tables; each case keeps the most requests it took."""

    def __init__(self, send: Call, counter: RequestCounter, prefix: str) -> None:
        self._send = send
        self._counter = counter
        self._prefix = prefix
        self.cases: dict[str, Case] = {}
        self.sessions = [f"{prefix}-s{index}" for index in range(SESSIONS)]
        self.quiet = f"{prefix}-quiet"  # a session without events
        self.batch_id = ""

    def call(
        self,
        case_id: str,
        route: str,
        description: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        expect: int = 200,
    ) -> Any:
        with self._counter.counting() as issued:
            result = self._send(route, body=body, query=query)
        if result.status != expect:
            raise ScenarioError(f"{case_id}: {route} answered {result.status}, expected {expect}: {result.body}")
        if case_id == "register" and any(request.takes_numbers for request in issued):
            case_id, description = "register_takes_numbers", "new session, takes a new block of numbers"
        previous = self.cases.get(case_id)
        if previous is None or len(issued) > previous.requests:
            self.cases[case_id] = Case(case_id, route, description, len(issued), _describe(issued))
        return result.body

    def register(self) -> None:
        first = self.sessions[0]
        opened = self.call(
            "register_opens_batch", "POST /session", "first session: opens a batch", body=sample_session_body(first)
        )
        self.batch_id = opened["batch_id"]
        for session_id in [*self.sessions[1:], self.quiet]:
            # Numbers come a block at a time: most calls use the container's block (three writes), some
            # take a new block first; the two are held to their own budgets.
            self.call(
                "register",
                "POST /session",
                "new session, from the block of numbers",
                body=sample_session_body(session_id),
            )
        self.call("register_repeat", "POST /session", "same session_id again", body=sample_session_body(first))

    def add_events(self) -> None:
        route = "POST /session/events"
        for session_id in self.sessions:
            body = {"session_id": session_id, "events": _clicks(session_id)}
            self.call("add_events", route, f"{EVENTS_PER_SESSION} new events (and the batch's state)", body=body)
        retried = {"session_id": self.sessions[0], "events": _clicks(self.sessions[0])}
        self.call("add_events_retry", route, f"the same {EVENTS_PER_SESSION} events again", body=retried)

    def read_and_schedule(self) -> None:
        first = self.sessions[0]
        self.call(
            "mark_irrelevant",
            "POST /session/irrelevant",
            "registered session (and the batch's state)",
            body={"session_id": self.sessions[1]},
        )
        self.call(
            "get_session", "GET /session", f"session with {EVENTS_PER_SESSION} events", query={"session_id": first}
        )
        self.call(
            "get_session_unknown", "GET /session", "unknown session: 404", query={"session_id": "nobody"}, expect=404
        )
        use = "POST /session/use-for-improvement"
        self.call("use_scheduled", use, "session with events: scheduled", body={"session_id": first})
        self.call("use_pending", use, "again while pending: same task", body={"session_id": first})
        self.call("use_skipped", use, "session without events: skipped", body={"session_id": self.quiet})
        self.call("tasks_pending", "GET /improvement/tasks", "pending tasks (1 of 16 buckets filled)", query={})
        complete = "POST /improvement/tasks/complete"
        done = {"session_id": first, "status": "done"}
        self.call("complete_task", complete, "pending task: done", body=done)
        self.call("complete_task_repeat", complete, "the same report again", body=done)

    def batches(self) -> None:
        self.call("get_batch", "GET /batch", "released batch", query={"batch_id": self.batch_id})
        self.call("list_batches", "GET /batches", "one released batch, then the collecting one", query={})

    def page(self, case_id: str, description: str, *, expect: int = 200, **query: str) -> None:
        self.call(
            case_id, "GET /batch/sessions", description, query={"batch_id": self.batch_id, **query}, expect=expect
        )

    def page_and_release(self) -> None:
        total = SESSIONS + 1
        self.page(
            "page_full", f"limit {SESSIONS} of {total} sessions, {EVENTS_PER_SESSION} events each", limit=str(SESSIONS)
        )
        self.page("page_last", "last page (1 session)", after_number=str(SESSIONS), limit=str(SESSIONS))
        self.page("page_past_end", "after the last session, batch collecting", after_number=str(total))
        self.call(
            "page_unknown_batch",
            "GET /batch/sessions",
            "unknown batch: 404",
            query={"batch_id": "b-unknown"},
            expect=404,
        )
        release = "POST /batch/release"
        release_id = f"{self._prefix}-r1"
        self.call("release", release, f"release a batch of {total} sessions", body={"release_id": release_id})
        self.call("release_repeat", release, "same release_id again", body={"release_id": release_id})
        self.page("page_past_end_released", "after the last session, batch released", after_number=str(total))

    def erasures(self) -> None:
        """An erasure asked for, asked again while open, and read (no erasure runs: registrations go on)."""
        body = {"user_id": f"{self._prefix}-leaving"}
        route = "POST /user/erase"
        asked = self.call("erase_user", route, "user with no open erasure: a new one", body=body, expect=202)
        self.call("erase_user_repeat", route, "same user while pending: that erasure", body=body, expect=202)
        self.call("get_erasure", "GET /erasure", "pending erasure", query={"erasure_id": asked["erasure_id"]})


def _clicks(session_id: str) -> list[dict[str, str]]:
    return [{"event_id": f"{session_id}-e{n}", "object_id": "shoe-17"} for n in range(EVENTS_PER_SESSION)]


def run_scenario(send: Call, counter: RequestCounter, prefix: str = "scn") -> list[Case]:
    """Drive every route once or more on FRESH tables; the requests of each case (max over repeats).

    `send` is `LocalFunctions.call`: route, then `body=` or `query=`. Run it with BATCH_STATE_CACHE_MS=0
    (the tests' setting): each event or mark call then reads its batch's state, as a container's first one
    does, so the table holds the uncached count.
    """
    scenario = Scenario(send, counter, prefix)
    scenario.register()
    scenario.add_events()
    scenario.read_and_schedule()
    scenario.page_and_release()
    scenario.batches()
    scenario.erasures()
    return list(scenario.cases.values())


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
