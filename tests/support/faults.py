"""DynamoDB faults injected at the storage boundary, through botocore's event hooks on the client.

* Errors (throttling, InternalServerError, a lost connection) are injected at `before-send`, which
  botocore calls once per HTTP attempt inside its retry loop, so its retry policy sees them exactly as
  it would see DynamoDB's answers. The request can be dropped (DynamoDB rejected it) or forwarded first
  (DynamoDB applied it, then the answer was lost: what a 500 on a write may mean).
* A crash is `SimulatedCrash`, raised at `after-call` right after a named write succeeded: the work
  that write began stops there, as if the Lambda instance had died between two writes.

Writes are named by what they do in the registration and release protocols (`classify`), so a test
says "crash after the seal" rather than "after the seventh UpdateItem".
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, cast

import boto3
import pytest
import urllib3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.client import BaseClient
from botocore.compat import HTTPHeaders
from botocore.exceptions import EndpointConnectionError

from clickstream.settings import Settings

WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem"})

# The writes of a registration in the order it makes them (opening a batch and taking a block of numbers
# only when it needs to); MOVE_WRITES, when a release closed its slot and it moves to the next batch.
REGISTRATION_WRITES = ("open_batch", "pointer_add", "claim", "put_session", "mark_registered")
MOVE_WRITES = ("assign_slot",)
RELEASE_WRITES = ("seal", "bind", "batch_record", "delete_pointer", "tombstone", "count_batch", "count_release")

# The HTTP status DynamoDB answers each error code with.
ERROR_STATUS = {
    "ProvisionedThroughputExceededException": 400,
    "ThrottlingException": 400,
    "RequestLimitExceeded": 400,
    "InternalServerError": 500,
}
CONNECTION_LOST = "EndpointConnectionError"


class SimulatedCrash(Exception):
    """The instance died here: raised right after a DynamoDB write was applied."""


def _session_ids_step(operation: str, expression: str, values: dict[str, Any]) -> str:
    if operation == "PutItem":
        return "claim"
    if "claim_token" in expression:
        return "take_over"
    return "assign_slot" if {"S": "assigned"} in values.values() else "mark_registered"


def _pointer_step(operation: str, expression: str) -> str:
    if operation == "PutItem":
        return "open_batch"
    if operation == "DeleteItem":
        return "delete_pointer"
    if expression.startswith("ADD"):
        return "pointer_add"
    return "unseal" if expression.startswith("REMOVE") else "seal"


def _batches_step(operation: str, params: dict[str, Any], expression: str) -> str:
    key = (params.get("Item") or params.get("Key") or {}).get("pk", {}).get("S", "")
    counted = "session_count" in expression
    if key == "pointer":
        return _pointer_step(operation, expression)
    if key.startswith("release#"):
        return "count_release" if counted else "bind"
    if key.startswith("batch#"):
        return "count_batch" if counted else "batch_record"
    return f"unknown:{operation}:batches:{key}"


def classify(operation: str, params: dict[str, Any], settings: Settings) -> str:
    """The protocol step a DynamoDB call performs (`REGISTRATION_WRITES`, `RELEASE_WRITES`, ...)."""
    if operation not in WRITE_OPERATIONS:
        return f"read:{operation}"
    table = params.get("TableName")
    expression = str(params.get("UpdateExpression", ""))
    if table == settings.session_ids_table:
        return _session_ids_step(operation, expression, params.get("ExpressionAttributeValues", {}))
    if table == settings.sessions_table:
        if operation == "UpdateItem":
            return "set_irrelevant"
        return "tombstone" if "tombstone" in params["Item"] else "put_session"
    if table == settings.batches_table:
        return _batches_step(operation, params, expression)
    by_table = {settings.events_table: "put_event", settings.tasks_table: "put_task"}
    return by_table.get(str(table), f"unknown:{operation}:{table}")


@dataclass
class _ErrorRule:
    code: str
    steps: frozenset[str] | None  # None: every call; else the calls performing these steps (`classify`)
    attempts_per_call: int | None  # None: every attempt; n: the first n attempts of each call
    applied: bool  # forward the request first: the write lands, its answer is lost
    times: int | None  # how many more injections; None: no limit

    def applies(self, step: str, attempt: int) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.steps is not None and step not in self.steps:
            return False
        return self.attempts_per_call is None or attempt <= self.attempts_per_call


class RawBody:
    """The `raw` of an AWSResponse: botocore reads the body through `stream()`."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class DynamoFaults:
    """Fault plan and figures for every DynamoDB client attached to it; thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._rules: list[_ErrorRule] = []
        self._crash: tuple[str, int] | None = None
        self._forwarder: urllib3.PoolManager | None = None
        # botocore runs a call's hooks in the calling thread: the step named at parameter build time
        # is the one its attempts (before-send) and its result (after-call) belong to.
        self._current = threading.local()
        self.attempts: Counter[str] = Counter()  # HTTP attempts per operation
        self.injected: Counter[str] = Counter()  # errors injected per code
        self.writes: list[str] = []  # successful writes, in order, by step name
        self.crashes: list[str] = []

    # --- the plan ---------------------------------------------------------------------------

    def fail(
        self,
        code: str,
        *,
        steps: set[str] | None = None,
        attempts_per_call: int | None = None,
        applied: bool = False,
        times: int | None = None,
    ) -> None:
        """Answer attempts with `code` (or drop the connection, for CONNECTION_LOST)."""
        chosen = None if steps is None else frozenset(steps)
        with self._lock:
            self._rules.append(_ErrorRule(code, chosen, attempts_per_call, applied, times))

    def crash_after(self, step: str, occurrence: int = 1) -> None:
        """Raise SimulatedCrash right after the `occurrence`-th successful write of `step` from now."""
        with self._lock:
            done = sum(1 for write in self.writes if write == step)
            self._crash = (step, done + occurrence)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._crash = None

    def close(self) -> None:
        with self._lock:
            if self._forwarder is not None:
                self._forwarder.clear()
                self._forwarder = None

    # --- the hooks ------------------------------------------------------------------------------

    def attach(self, client: BaseClient) -> None:
        events = client.meta.events
        events.register("before-parameter-build.dynamodb", self._name_the_step)
        events.register("before-send.dynamodb", cast(Callable[..., None], self._answer_attempt))
        events.register("after-call.dynamodb", self._after_call)

    def _name_the_step(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self._current.step = classify(model.name, params, self._settings)

    def _answer_attempt(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        step: str = getattr(self._current, "step", "")
        attempt = _attempt_number(request)
        with self._lock:
            self.attempts[operation] += 1
            rule = next((rule for rule in self._rules if rule.applies(step, attempt)), None)
            if rule is None:
                return None
            if rule.times is not None:
                rule.times -= 1
            self.injected[rule.code] += 1
        if rule.applied:
            self._forward(request)
        if rule.code == CONNECTION_LOST:
            raise EndpointConnectionError(endpoint_url=request.url)
        body = json.dumps(
            {"__type": f"com.amazonaws.dynamodb.v20120810#{rule.code}", "message": f"injected {rule.code}"}
        ).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "injected-fault"}
        return AWSResponse(request.url, ERROR_STATUS[rule.code], HTTPHeaders.from_dict(headers), RawBody(body))

    def _forward(self, request: AWSPreparedRequest) -> None:
        """Send the attempt to DynamoDB for real, discarding the answer."""
        with self._lock:
            if self._forwarder is None:
                self._forwarder = urllib3.PoolManager(maxsize=8)
            forwarder = self._forwarder
        body = request.body
        payload = bytes(body) if isinstance(body, bytearray) else body
        if payload is not None and not isinstance(payload, bytes | str):
            payload = payload.read()
        forwarder.request(request.method, request.url, body=payload, headers=dict(request.headers.items()))

    def _after_call(self, http_response: AWSResponse, **_: Any) -> None:
        if http_response.status_code >= 300:
            return
        step: str = getattr(self._current, "step", "")
        if step.startswith("read:"):
            return
        with self._lock:
            self.writes.append(step)
            if self._crash is None or self._crash[0] != step:
                return
            if sum(1 for write in self.writes if write == step) < self._crash[1]:
                return
            self._crash = None
            self.crashes.append(step)
        raise SimulatedCrash(f"crashed right after the write '{step}'")


def _attempt_number(request: AWSPreparedRequest) -> int:
    """botocore numbers the attempts of a call in the amz-sdk-request header ("attempt=2; max=5")."""
    header = request.headers.get("amz-sdk-request", b"")
    text = header.decode() if isinstance(header, bytes) else str(header)
    for part in text.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "attempt":
            return int(value)
    return 1


class Attachable(Protocol):
    def attach(self, client: BaseClient) -> None: ...


def attach_to_new_clients(faults: Attachable, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every DynamoDB client boto3 creates from now on (e.g. in `Storage.from_settings`) gets `faults`."""
    original = boto3.session.Session.client

    def client(session: boto3.session.Session, *args: Any, **kwargs: Any) -> Any:
        created = original(session, *args, **kwargs)
        service_name = args[0] if args else kwargs.get("service_name")
        if service_name == "dynamodb":
            faults.attach(created)
        return created

    monkeypatch.setattr(boto3.session.Session, "client", client)
