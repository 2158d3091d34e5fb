"""Warm figures, in-process against moto: handler overhead over the same DynamoDB requests issued directly,
and DynamoDB requests per API call."""

from __future__ import annotations

import copy
import gc
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore import xform_name
from botocore.exceptions import ClientError

from bench.env import BenchEnv, quiet_stdout
from bench.request_counts import RequestCounter, run_scenario
from clickstream.settings import Settings
from clickstream.storage.plumbing import client_config
from local.apigateway import route_event

if TYPE_CHECKING:
    from botocore.model import OperationModel
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass
class RecordedCall:
    method: str  # client method, e.g. "put_item"
    params: dict[str, Any]
    concurrent: bool  # issued from the storage's thread pool


class Recorder:
    """Records the requests a storage client issues (operation, parameters, thread) while active."""

    def __init__(self, client: DynamoDBClient) -> None:
        self.calls: list[RecordedCall] = []
        self.condition_failures = 0
        self._client = client
        self._lock = threading.Lock()

    def _on_params(self, params: dict[str, Any], model: OperationModel, **_: Any) -> None:
        concurrent = threading.current_thread().name.startswith("fanout")
        with self._lock:
            self.calls.append(RecordedCall(xform_name(model.name), copy.deepcopy(params), concurrent))

    def _after_call(self, parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            with self._lock:
                self.condition_failures += 1

    @contextmanager
    def recording(self) -> Iterator[list[RecordedCall]]:
        self.calls = []
        self.condition_failures = 0
        events = self._client.meta.events
        events.register("provide-client-params.dynamodb", self._on_params, unique_id="bench-rec")
        events.register("after-call.dynamodb", self._after_call, unique_id="bench-rec-after")
        try:
            yield self.calls
        finally:
            events.unregister("provide-client-params.dynamodb", unique_id="bench-rec")
            events.unregister("after-call.dynamodb", unique_id="bench-rec-after")


# Where a session number is written: the item attribute and the expression value the gateways name it by.
# A "N:<number>" mapping touches these only, never another number that happens to be equal (a block size).
_SESSION_NUMBER_KEYS = frozenset({"session_number", ":number"})


def _substitute(value: Any, mapping: dict[str, str], key: str = "") -> Any:
    """Replace ids inside strings; a key "N:<number>" replaces a session number ({"N": "<number>"}) exactly."""
    if isinstance(value, str):
        for old, new in mapping.items():
            if not old.startswith("N:"):
                value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        if set(value) == {"N"} and key in _SESSION_NUMBER_KEYS and f"N:{value['N']}" in mapping:
            return {"N": mapping[f"N:{value['N']}"]}
        return {name: _substitute(item, mapping, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, mapping, key) for item in value]
    return value


class DirectClient:
    """The same requests issued straight with boto3: same endpoint, the storage's own client configuration
    (`plumbing.client_config`), the same concurrency."""

    def __init__(self, settings: Settings) -> None:
        self.client = boto3.session.Session().client("dynamodb", config=client_config(settings))
        self._pool = ThreadPoolExecutor(settings.dynamodb_max_concurrency, thread_name_prefix="direct")
        self.condition_failures = 0

    def _issue(self, call: RecordedCall) -> None:
        try:
            getattr(self.client, call.method)(**call.params)
        except ClientError as error:  # reported: the replay is meant to succeed where the handler does
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            self.condition_failures += 1

    def replay(self, calls: list[RecordedCall]) -> None:
        index = 0
        while index < len(calls):
            if not calls[index].concurrent:
                self._issue(calls[index])
                index += 1
                continue
            end = index
            while end < len(calls) and calls[end].concurrent:
                end += 1
            list(self._pool.map(self._issue, calls[index:end]))
            index = end

    def close(self) -> None:
        self._pool.shutdown()


def json_body(answer: dict[str, Any]) -> Any:
    return json.loads(answer["body"])


def _body(session_id: str) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "search_query": "red running shoes",
        "search_results": [{"object_id": f"shoe-{rank}", "rank": float(rank)} for rank in range(10)],
        "search_meta": {"latency_ms": 38},
        "user_id": "user-42",
    }


def _events(prefix: str, count: int) -> list[dict[str, Any]]:
    return [{"event_id": f"{prefix}{n}", "object_id": "shoe-1", "meta": {"position": n}} for n in range(count)]


@dataclass
class RouteCase:
    """A route measured warm: iteration i's request, and its untimed preparation."""

    name: str
    route: str
    # iteration (-1: the recorded probe) -> (body, query, substitution turning the probe's requests into i's)
    request: Callable[[int], tuple[Any, dict[str, str] | None, dict[str, str]]]
    before: Callable[[int], None] | None = None  # untimed, before both sides
    between: Callable[[int], None] | None = None  # untimed, between the two sides
    order: str = "alternate"  # or "direct_first"


def _name(i: int) -> str:
    return "probe" if i < 0 else str(i)


class RouteFixtures:
    """The data each route case works on, so that its direct replay makes the same requests succeed or fail
    as the handler's do."""

    def __init__(self, env: BenchEnv, iterations: int) -> None:
        self._env = env
        self.probe_slot: dict[str, str] = {}
        self._release_state: dict[str, str] = {}
        # A batch of 10 sessions with 3 events each, released so it never changes again.
        for n in range(10):
            self._register(f"page-{n}")
            self._add_events(f"page-{n}", 3)
        self.page_batch = env.expect("GET /session", query={"session_id": "page-0"})["batch_id"]
        env.expect("POST /batch/release", body={"release_id": "bench-page-release"})
        for session_id in ("w-ev", "w-irr", "w-get"):
            self._register(session_id)
        self._add_events("w-get", 5)
        for n in [*range(iterations), -1]:
            for session_id in (f"w-use-{_name(n)}", f"w-used-{_name(n)}"):
                self._register(session_id)
                self._add_events(session_id, 1)

    def _register(self, session_id: str) -> Any:
        return self._env.expect("POST /session", body=_body(session_id))

    def _add_events(self, session_id: str, count: int) -> None:
        self._env.expect(
            "POST /session/events", body={"session_id": session_id, "events": _events(f"{session_id}-e", count)}
        )

    def register(self, i: int) -> tuple[Any, dict[str, str] | None, dict[str, str]]:
        # The direct replay writes a fresh id into a fresh slot, so each of its writes succeeds too. The slot
        # is under a partition key of its own ("<batch>-direct#<shard>"): a slot at number 10,000,000 in
        # the batch itself would make its release tombstone every number below it.
        fresh_slot = {
            f"N:{self.probe_slot.get('number')}": str(10_000_000 + i),
            f"{self.probe_slot.get('batch')}#": f"{self.probe_slot.get('batch')}-direct#",
        }
        return _body(f"w-reg-{_name(i)}"), None, {"w-reg-probe": f"w-reg-d{i}", **fresh_slot}

    def _release_pending(self, i: int) -> None:
        status = self._env.send("POST /batch/release", body={"release_id": f"w-rel-pre-{_name(i)}"}).status
        if status not in (200, 404):
            raise RuntimeError(f"release before {i}: {status}")

    def open_batch_for_direct(self, i: int) -> None:
        # The direct replay releases a batch of its own, holding one session, as the handler's will.
        self._release_pending(i)
        self._release_state["batch"] = self._register(f"w-rel-d-s{i}")["batch_id"]

    def open_batch_for_handler(self, i: int) -> None:
        if i < 0:
            self._release_pending(i)
        registered = self._register(f"w-rel-s{_name(i)}")
        if i < 0:
            self._release_state["probe_batch"] = registered["batch_id"]

    def release(self, i: int) -> tuple[Any, dict[str, str] | None, dict[str, str]]:
        mapping = {"w-rel-probe": f"w-rel-d{i}"}
        if i >= 0:
            mapping[self._release_state["probe_batch"]] = self._release_state["batch"]
        return {"release_id": f"w-rel-{_name(i)}"}, None, mapping

    def cases(self) -> list[RouteCase]:
        page = {"batch_id": self.page_batch, "limit": "10", "events_limit": "100"}
        return [
            RouteCase("register", "POST /session", self.register),
            RouteCase(
                "add_events (3)",
                "POST /session/events",
                lambda i: (
                    {"session_id": "w-ev", "events": _events(f"w-ev-{_name(i)}-", 3)},
                    None,
                    {"w-ev-probe-": f"w-ev-d{i}-"},
                ),
            ),
            RouteCase("mark_irrelevant", "POST /session/irrelevant", lambda i: ({"session_id": "w-irr"}, None, {})),
            RouteCase("get_session (5 events)", "GET /session", lambda i: (None, {"session_id": "w-get"}, {})),
            RouteCase(
                "use_for_improvement",
                "POST /session/use-for-improvement",
                lambda i: ({"session_id": f"w-use-{_name(i)}"}, None, {"w-use-probe": f"w-used-{i}"}),
            ),
            RouteCase("batch_sessions (limit 10)", "GET /batch/sessions", lambda i: (None, page, {})),
            RouteCase(
                "release (1 session)",
                "POST /batch/release",
                self.release,
                before=self.open_batch_for_direct,
                between=self.open_batch_for_handler,
                order="direct_first",
            ),
        ]


def _order(case: RouteCase, i: int) -> tuple[str, str]:
    if case.order == "direct_first":
        return "direct", "handler"
    return ("handler", "direct") if i % 2 == 0 else ("direct", "handler")


def _measure_case(
    env: BenchEnv, case: RouteCase, fixtures: RouteFixtures, direct: DirectClient, iterations: int
) -> dict[str, Any]:
    """Record the probe's DynamoDB requests, then time handler and direct replay alternately."""
    function_id = env.functions.routes[case.route]
    recorder = Recorder(env.service_client())
    if case.between is not None:
        case.between(-1)
    probe_body, probe_query, _ = case.request(-1)
    with recorder.recording() as template:
        answer = env.functions.invoke(function_id, route_event(case.route, body=probe_body, query=probe_query))
    if answer["statusCode"] != 200:
        raise RuntimeError(f"{case.name}: probe answered {answer['statusCode']}: {answer.get('body')}")
    if case.name == "register":
        registered = json_body(answer)
        fixtures.probe_slot.update(number=str(registered["session_number"]), batch=registered["batch_id"])
    recorded = list(template)
    timings: dict[str, list[float]] = {"handler": [], "direct": []}
    gc.collect()
    for i in range(iterations):
        if case.before is not None:
            case.before(i)
        body, query, mapping = case.request(i)
        event = route_event(case.route, body=body, query=query)
        calls = [RecordedCall(c.method, _substitute(c.params, mapping), c.concurrent) for c in recorded]
        for position, side in enumerate(_order(case, i)):
            if position == 1 and case.between is not None:
                case.between(i)
            started = time.perf_counter()
            if side == "handler":
                answer = env.functions.invoke(function_id, event)
                if answer["statusCode"] != 200:
                    raise RuntimeError(f"{case.name}: {answer['statusCode']} {answer.get('body')}")
            else:
                direct.replay(calls)
            timings[side].append((time.perf_counter() - started) * 1000)
    handler_ms, direct_ms = timings["handler"], timings["direct"]
    paired = [h / d for h, d in zip(handler_ms, direct_ms, strict=True)]
    handler_median, direct_median = statistics.median(handler_ms), statistics.median(direct_ms)
    figures = {
        "route": case.route,
        "requests": len(recorded),
        "handler_ms": round(handler_median, 2),
        "direct_ms": round(direct_median, 2),
        "overhead_ms": round(handler_median - direct_median, 2),
        "ratio": round(handler_median / direct_median, 3),
        "paired_ratio": round(statistics.median(paired), 3),
        # Conditional writes that find their condition false, per call: the replay matches the handler.
        "handler_condition_failures": recorder.condition_failures,
        "direct_condition_failures": round(direct.condition_failures / iterations, 2),
    }
    direct.condition_failures = 0
    return figures


def overhead(env: BenchEnv, iterations: int) -> dict[str, Any]:
    """Handler time against issuing the same DynamoDB requests directly, per route (medians, paired).

    Numbers are taken one at a time here (NUMBER_BLOCK_MAX=1): each call then makes the requests its
    recorded probe made, which a replay needs; with blocks, most registrations skip the counter and a
    release closes the rest of the block, so one probe would not stand for the calls it is compared with.
    """
    env.set_environment(NUMBER_BLOCK_MAX="1")
    direct = DirectClient(env.settings())
    with quiet_stdout():
        fixtures = RouteFixtures(env, iterations)
        results = {case.name: _measure_case(env, case, fixtures, direct, iterations) for case in fixtures.cases()}
    direct.close()
    env.set_environment(NUMBER_BLOCK_MAX=str(Settings.model_fields["number_block_max"].default))
    return {"iterations": iterations, "routes": results, "number_block_max": 1}


def request_counts(env: BenchEnv) -> list[dict[str, Any]]:
    """The fixed scenario (bench/request_counts.py) on fresh tables: DynamoDB requests per API call."""
    env.fresh_tables()
    env.set_environment(BATCH_STATE_CACHE_MS="0")  # the uncached count, as tests/integration checks it
    counter = RequestCounter(env.service_client())
    try:
        with quiet_stdout():
            cases = run_scenario(env.functions.call, counter)
    finally:
        counter.close()
        env.set_environment(BATCH_STATE_CACHE_MS=str(Settings.model_fields["batch_state_cache_ms"].default))
    return [case.__dict__ for case in cases]
