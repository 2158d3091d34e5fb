"""Paging latency, `GET /batch/sessions`: a DynamoDB that is a fixed round trip and nothing else."""

from __future__ import annotations

import io
import logging
import statistics
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders

from bench.env import BenchEnv, quiet_stdout
from bench.warm import _body, _events
from local.apigateway import route_event

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


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
    page_events = _page_events(env, limits)
    function_id = env.functions.routes["GET /batch/sessions"]
    pool_warnings = _PoolWarnings()
    logging.getLogger("urllib3.connectionpool").addHandler(pool_warnings)
    default_concurrency = env.settings().dynamodb_max_concurrency
    # As configured; twice as wide (does a wider pool help?); one at a time (the obvious way).
    variants = {"concurrent": default_concurrency, "wide": 2 * default_concurrency, "sequential": 1}
    latencies: dict[str, dict[int, list[float]]] = {name: {limit: [] for limit in limits} for name in variants}
    undelayed: dict[str, dict[int, list[float]]] = {name: {limit: [] for limit in limits} for name in variants}
    details: dict[str, Any] = {}

    def timed(event: dict[str, Any]) -> float:
        started = time.perf_counter()
        answer = env.functions.invoke(function_id, event)
        elapsed = (time.perf_counter() - started) * 1000
        if answer["statusCode"] != 200:
            raise RuntimeError(f"paging: {answer['statusCode']} {answer.get('body')}")
        return elapsed

    with quiet_stdout():
        for name, concurrency in variants.items():
            env.set_environment(DYNAMODB_MAX_CONCURRENCY=str(concurrency))
            client = env.service_client()
            fixed = FixedLatencyDynamoDB(client)
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
                "max_concurrency": env.settings().dynamodb_max_concurrency,
                "max_pool_connections": getattr(client.meta.config, "max_pool_connections", None),
                "peak_in_flight": fixed.peak,
                "unanswered": fixed.misses,
            }
        env.set_environment(DYNAMODB_MAX_CONCURRENCY=str(default_concurrency))
    logging.getLogger("urllib3.connectionpool").removeHandler(pool_warnings)
    figures: dict[str, Any] = {"delay_ms": delay_ms, "repeats": repeats, "limits": limits}
    for name in variants:
        figures.update(_variant_figures(name, latencies[name], undelayed[name], str(limits[0])))
    return {
        **figures,
        "variants": details,
        "pool_full_warnings": pool_warnings.count,
    }


def _page_events(env: BenchEnv, limits: list[int]) -> list[dict[str, Any]]:
    """A batch of max(limits) + 1 sessions with 3 events each, and a page request per limit."""
    env.fresh_tables()
    with quiet_stdout():
        for n in range(max(limits) + 1):
            env.expect("POST /session", body=_body(f"p-{n}"))
            env.expect("POST /session/events", body={"session_id": f"p-{n}", "events": _events(f"p-{n}-e", 3)})
        batch_id = env.expect("GET /session", query={"session_id": "p-0"})["batch_id"]
    return [
        route_event("GET /batch/sessions", query={"batch_id": batch_id, "limit": str(limit), "events_limit": "100"})
        for limit in limits
    ]


def _medians(samples: dict[int, list[float]]) -> dict[str, float]:
    return {str(limit): round(statistics.median(values), 1) for limit, values in samples.items()}


def _variant_figures(
    name: str, latencies: dict[int, list[float]], undelayed: dict[int, list[float]], first: str
) -> dict[str, Any]:
    delayed = _medians(latencies)
    return {
        f"{name}_ms": delayed,
        f"{name}_undelayed_ms": _medians(undelayed),
        f"{name}_vs_limit1": {limit: round(value / delayed[first], 2) for limit, value in delayed.items()},
    }
