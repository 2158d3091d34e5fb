"""Warm figures, in-process against the embedded moto server: handler overhead, round trips, paging latency."""

from __future__ import annotations

import copy
import gc
import io
import json
import logging
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
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders
from botocore.config import Config
from botocore.exceptions import ClientError

from bench.env import BenchEnv, quiet_stdout
from bench.scenario import RequestCounter, api_event, route_functions, run_scenario
from local.lambda_runtime import LambdaContext

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
        concurrent = threading.current_thread().name.startswith("dynamodb")
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


def _substitute(value: Any, mapping: dict[str, str]) -> Any:
    """Replace ids inside strings; a key "N:<number>" replaces a number attribute ({"N": "<number>"}) exactly."""
    if isinstance(value, str):
        for old, new in mapping.items():
            if not old.startswith("N:"):
                value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        if set(value) == {"N"} and f"N:{value['N']}" in mapping:
            return {"N": mapping[f"N:{value['N']}"]}
        return {key: _substitute(item, mapping) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, mapping) for item in value]
    return value


class DirectClient:
    """The same requests issued straight with boto3 (same endpoint, same client settings, same concurrency)."""

    def __init__(self, max_concurrency: int) -> None:
        config = Config(
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=max_concurrency + 4,
            connect_timeout=3,
            read_timeout=10,
        )
        self.client = boto3.session.Session().client("dynamodb", config=config)
        self._pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="direct")
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


def _route_cases(env: BenchEnv, iterations: int) -> tuple[list[RouteCase], dict[str, str]]:
    """Each case's direct replay makes the same requests succeed or fail as the handler's do."""
    functions = route_functions()

    def send(route: str, body: Any = None, query: dict[str, str] | None = None, expect: int = 200) -> Any:
        status, payload = env.send(functions[route], api_event(route, body=body, query=query))
        if status != expect:
            raise RuntimeError(f"setup {route} -> {status}: {payload}")
        return payload

    def name(i: int) -> str:
        return "probe" if i < 0 else str(i)

    # A batch of 10 sessions with 3 events each, released so it never changes again.
    for n in range(10):
        send("POST /session", _body(f"page-{n}"))
        send("POST /session/events", {"session_id": f"page-{n}", "events": _events(f"page-{n}-e", 3)})
    page_batch = send("GET /session", query={"session_id": "page-0"})["batch_id"]
    send("POST /batch/release", {"release_id": "bench-page-release"})
    for session_id in ("w-ev", "w-irr", "w-get"):
        send("POST /session", _body(session_id))
    send("POST /session/events", {"session_id": "w-get", "events": _events("w-get-e", 5)})
    for n in [*range(iterations), -1]:
        for session_id in (f"w-use-{name(n)}", f"w-used-{name(n)}"):
            send("POST /session", _body(session_id))
            send("POST /session/events", {"session_id": session_id, "events": _events(f"{session_id}-e", 1)})

    probe_slot: dict[str, str] = {}
    release_state: dict[str, str] = {}

    def register(i: int) -> tuple[Any, dict[str, str] | None, dict[str, str]]:
        # The direct replay writes a fresh id into a fresh slot, so each of its writes succeeds too.
        return (
            _body(f"w-reg-{name(i)}"),
            None,
            {"w-reg-probe": f"w-reg-d{i}", f"N:{probe_slot.get('number')}": str(10_000_000 + i)},
        )

    def release_pending(i: int) -> None:
        status, _ = env.send(
            functions["POST /batch/release"],
            api_event("POST /batch/release", body={"release_id": f"w-rel-pre-{name(i)}"}),
        )
        if status not in (200, 404):
            raise RuntimeError(f"release before {i}: {status}")

    def open_batch_for_direct(i: int) -> None:
        # The direct replay releases a batch of its own, holding one session, as the handler's will.
        release_pending(i)
        release_state["batch"] = send("POST /session", _body(f"w-rel-d-s{i}"))["batch_id"]

    def open_batch_for_handler(i: int) -> None:
        if i < 0:
            release_pending(i)
        registered = send("POST /session", _body(f"w-rel-s{name(i)}"))
        if i < 0:
            release_state["probe_batch"] = registered["batch_id"]

    def release(i: int) -> tuple[Any, dict[str, str] | None, dict[str, str]]:
        mapping = {"w-rel-probe": f"w-rel-d{i}"}
        if i >= 0:
            mapping[release_state["probe_batch"]] = release_state["batch"]
        return {"release_id": f"w-rel-{name(i)}"}, None, mapping

    cases = [
        RouteCase("register", "POST /session", register),
        RouteCase(
            "add_events (3)",
            "POST /session/events",
            lambda i: (
                {"session_id": "w-ev", "events": _events(f"w-ev-{name(i)}-", 3)},
                None,
                {"w-ev-probe-": f"w-ev-d{i}-"},
            ),
        ),
        RouteCase("mark_irrelevant", "POST /session/irrelevant", lambda i: ({"session_id": "w-irr"}, None, {})),
        RouteCase("get_session (5 events)", "GET /session", lambda i: (None, {"session_id": "w-get"}, {})),
        RouteCase(
            "use_for_improvement",
            "POST /session/use-for-improvement",
            lambda i: ({"session_id": f"w-use-{name(i)}"}, None, {"w-use-probe": f"w-used-{i}"}),
        ),
        RouteCase(
            "batch_sessions (limit 10)",
            "GET /batch/sessions",
            lambda i: (None, {"batch_id": page_batch, "limit": "10", "events_limit": "100"}, {}),
        ),
        RouteCase(
            "release (1 session)",
            "POST /batch/release",
            release,
            before=open_batch_for_direct,
            between=open_batch_for_handler,
            order="direct_first",
        ),
    ]
    return cases, probe_slot


def overhead(env: BenchEnv, iterations: int) -> dict[str, Any]:
    """Handler time against issuing the same DynamoDB requests directly, per route (medians, paired)."""
    functions = route_functions()
    direct = DirectClient(env.max_concurrency())
    results: dict[str, Any] = {}
    with quiet_stdout():
        cases, probe_slot = _route_cases(env, iterations)
        recorder = Recorder(env.storage().client)
        for case in cases:
            function_id = functions[case.route]
            handler = env.handler(function_id)
            if case.between is not None:
                case.between(-1)
            probe_body, probe_query, _ = case.request(-1)
            with recorder.recording() as template:
                answer = handler(api_event(case.route, body=probe_body, query=probe_query), LambdaContext("bench"))
            if answer["statusCode"] != 200:
                raise RuntimeError(f"{case.name}: probe answered {answer['statusCode']}: {answer.get('body')}")
            if case.name == "register":
                probe_slot["number"] = str(json.loads(answer["body"])["session_number"])
            recorded = list(template)
            handler_ms: list[float] = []
            direct_ms: list[float] = []
            gc.collect()
            for i in range(iterations):
                if case.before is not None:
                    case.before(i)
                body, query, mapping = case.request(i)
                event = api_event(case.route, body=body, query=query)
                context = LambdaContext(function_name=function_id)
                calls = [RecordedCall(c.method, _substitute(c.params, mapping), c.concurrent) for c in recorded]
                if case.order == "direct_first":
                    order = ("direct", "handler")
                else:
                    order = ("handler", "direct") if i % 2 == 0 else ("direct", "handler")
                for position, side in enumerate(order):
                    if position == 1 and case.between is not None:
                        case.between(i)
                    started = time.perf_counter()
                    if side == "handler":
                        answer = handler(event, context)
                        handler_ms.append((time.perf_counter() - started) * 1000)
                        if answer["statusCode"] != 200:
                            raise RuntimeError(f"{case.name}: {answer['statusCode']} {answer.get('body')}")
                    else:
                        direct.replay(calls)
                        direct_ms.append((time.perf_counter() - started) * 1000)
            paired = [h / d for h, d in zip(handler_ms, direct_ms, strict=True)]
            handler_median, direct_median = statistics.median(handler_ms), statistics.median(direct_ms)
            results[case.name] = {
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
    direct.close()
    return {"iterations": iterations, "routes": results}


def request_counts(env: BenchEnv) -> list[dict[str, Any]]:
    """The fixed scenario (bench/scenario.py) on fresh tables: DynamoDB requests per API call."""
    env.fresh_tables()
    counter = RequestCounter(env.storage().client)
    try:
        with quiet_stdout():
            cases = run_scenario(env.send, counter)
    finally:
        counter.close()
    return [case.__dict__ for case in cases]


class _Raw(io.BytesIO):
    """A response body as botocore reads it from urllib3."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


class FixedLatencyDynamoDB:
    """DynamoDB as a fixed round-trip time and nothing else, for the paging figures.

    Recording: requests go to moto and its answers are kept, keyed by request body. Replaying: each
    request is answered with the kept answer after `delay` seconds, as many at once as are sent, so
    what remains is the round-trip structure and the client's own work. (moto serves one request at a
    time and scans a whole table for an index Query, which would swamp both.)
    """

    def __init__(self, client: DynamoDBClient) -> None:
        self._client = client
        self._answers: dict[bytes, tuple[int, dict[str, str], bytes]] = {}
        self._pending = threading.local()
        self._lock = threading.Lock()
        self.delay = 0.0
        self.replaying = False
        self.misses = 0
        self.in_flight = 0
        self.peak = 0
        events = client.meta.events
        answering: Any = self._before_send  # a before-send handler may return the response
        events.register("before-send.dynamodb", answering, unique_id="bench-fixed-latency-send")
        events.register("response-received.dynamodb", self._received, unique_id="bench-fixed-latency-received")

    def _before_send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        if not self.replaying:
            self._pending.body = body
            return None
        answer = self._answers.get(body)
        if answer is None:
            self.misses += 1
            return None
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        if self.delay > 0:
            time.sleep(self.delay)
        with self._lock:
            self.in_flight -= 1
        status, headers, content = answer
        return AWSResponse(request.url, status, HTTPHeaders.from_dict(headers), _Raw(content))

    def _received(self, response_dict: dict[str, Any] | None = None, **_: Any) -> None:
        body = getattr(self._pending, "body", None)
        if self.replaying or body is None or response_dict is None:
            return
        self._answers[body] = (response_dict["status_code"], dict(response_dict["headers"]), response_dict["body"])
        self._pending.body = None

    def close(self) -> None:
        events = self._client.meta.events
        events.unregister("before-send.dynamodb", unique_id="bench-fixed-latency-send")
        events.unregister("response-received.dynamodb", unique_id="bench-fixed-latency-received")


class _PoolWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "pool is full" in record.getMessage():
            self.count += 1


def paging(env: BenchEnv, delay_ms: float, limits: list[int], repeats: int) -> dict[str, Any]:
    """`GET /batch/sessions` latency by limit with a fixed delay per request: concurrent vs sequential events."""
    env.fresh_tables()
    functions = route_functions()
    with quiet_stdout():
        for n in range(max(limits) + 1):
            env.send(functions["POST /session"], api_event("POST /session", body=_body(f"p-{n}")))
            events = {"session_id": f"p-{n}", "events": _events(f"p-{n}-e", 3)}
            env.send(functions["POST /session/events"], api_event("POST /session/events", body=events))
        _, session = env.send(functions["GET /session"], api_event("GET /session", query={"session_id": "p-0"}))
    batch_id = session["batch_id"]
    handler = env.handler(functions["GET /batch/sessions"])
    page_events = [
        api_event("GET /batch/sessions", query={"batch_id": batch_id, "limit": str(limit), "events_limit": "100"})
        for limit in limits
    ]
    pool_warnings = _PoolWarnings()
    logging.getLogger("urllib3.connectionpool").addHandler(pool_warnings)
    default_concurrency = env.max_concurrency()
    # As configured; twice as wide (does a wider pool help?); one at a time (the obvious way).
    variants = {"concurrent": default_concurrency, "wide": 2 * default_concurrency, "sequential": 1}
    latencies: dict[str, dict[int, list[float]]] = {name: {limit: [] for limit in limits} for name in variants}
    undelayed: dict[str, dict[int, list[float]]] = {name: {limit: [] for limit in limits} for name in variants}
    details: dict[str, Any] = {}

    def timed(event: dict[str, Any]) -> float:
        started = time.perf_counter()
        answer = handler(event, LambdaContext("bench"))
        elapsed = (time.perf_counter() - started) * 1000
        if answer["statusCode"] != 200:
            raise RuntimeError(f"paging: {answer['statusCode']} {answer.get('body')}")
        return elapsed

    with quiet_stdout():
        for name, concurrency in variants.items():
            env.set_environment(DYNAMODB_MAX_CONCURRENCY=str(concurrency))
            storage = env.storage()
            fixed = FixedLatencyDynamoDB(storage.client)
            try:
                for event in page_events:  # recorded from moto; also warms the pool and connections
                    timed(event)
                fixed.replaying = True
                for _ in range(repeats):
                    for limit, event in zip(limits, page_events, strict=True):
                        fixed.delay = 0.0
                        undelayed[name][limit].append(timed(event))
                        fixed.delay = delay_ms / 1000
                        latencies[name][limit].append(timed(event))
            finally:
                fixed.close()
            details[name] = {
                "max_concurrency": env.max_concurrency(),
                "max_pool_connections": getattr(storage.client.meta.config, "max_pool_connections", None),
                "peak_in_flight": fixed.peak,
                "unanswered": fixed.misses,
            }
        env.set_environment(DYNAMODB_MAX_CONCURRENCY=str(default_concurrency))
    logging.getLogger("urllib3.connectionpool").removeHandler(pool_warnings)

    def medians(samples: dict[int, list[float]]) -> dict[str, float]:
        return {str(limit): round(statistics.median(values), 1) for limit, values in samples.items()}

    first = str(limits[0])
    figures: dict[str, Any] = {"delay_ms": delay_ms, "repeats": repeats, "limits": limits}
    for name in variants:
        delayed = medians(latencies[name])
        figures[f"{name}_ms"] = delayed
        figures[f"{name}_undelayed_ms"] = medians(undelayed[name])
        figures[f"{name}_vs_limit1"] = {limit: round(value / delayed[first], 2) for limit, value in delayed.items()}
    return {
        **figures,
        "variants": details,
        "pool_full_warnings": pool_warnings.count,
    }
