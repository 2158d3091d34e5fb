"""Shared fixtures: an embedded DynamoDB with the template's tables, the real handlers, the local server."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from local.dynamodb import EmbeddedDynamoDB, dynamodb_client, ensure_tables, local_table_names
from local.lambda_runtime import LambdaContext, load_handler, put_layers_on_path
from local.processes import free_port
from local.seed import sample_session_body
from local.template import ROOT, function_code, load_template

# Powertools reads its settings when the layer is first imported, as in Lambda: set them before that.
for _name, _value in {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "Clickstream",
    "POWERTOOLS_SERVICE_NAME": "clickstream",
}.items():
    os.environ.setdefault(_name, _value)
put_layers_on_path()

from clickstream import runtime  # noqa: E402 - the layer is on the path only now
from clickstream.service import Clickstream  # noqa: E402
from clickstream.settings import Settings  # noqa: E402
from clickstream.storage import Storage  # noqa: E402

EVENTS_DIR = ROOT / "events"

# Short waits keep the suite fast; the protocol does not depend on their length.
TEST_ENVIRONMENT = {
    "RELEASE_SETTLE_GRACE_MS": "50",
    "REGISTRATION_LEASE_MS": "300",
    "SEALED_BATCH_WAIT_MS": "200",
    "DYNAMODB_MAX_ATTEMPTS": "2",
}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def new_session_body(session_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    return sample_session_body(session_id or unique("sess"), **overrides)


@pytest.fixture(scope="session")
def dynamodb() -> Iterator[EmbeddedDynamoDB]:
    server = EmbeddedDynamoDB().start()
    yield server
    server.stop()


@pytest.fixture
def tables(dynamodb: EmbeddedDynamoDB, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Fresh tables, built from template.yaml, and the functions' environment pointing at them."""
    from local.server import local_environment

    dynamodb.reset()
    for name, value in {**local_environment(dynamodb.endpoint), **TEST_ENVIRONMENT}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    names = local_table_names()
    ensure_tables(dynamodb_client(dynamodb.endpoint), names)
    runtime.reset()
    yield names
    runtime.reset()


@pytest.fixture
def settings(tables: dict[str, str]) -> Settings:
    return Settings.from_environment()


@pytest.fixture
def storage(settings: Settings) -> Storage:
    return Storage.from_settings(settings)


@pytest.fixture
def service(storage: Storage, settings: Settings) -> Clickstream:
    return Clickstream(storage, settings)


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return event


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: Any


_handlers: dict[str, Callable[[Any, Any], Any]] = {}


def handler_of(function_id: str) -> Callable[[Any, Any], Any]:
    if function_id not in _handlers:
        code_uri, handler = function_code(load_template(), function_id)
        _handlers[function_id] = load_handler(code_uri, handler)
    return _handlers[function_id]


@pytest.fixture
def invoke(tables: dict[str, str]) -> Callable[[str, Any], Any]:
    """Call a function's real Lambda handler with an event, as Lambda would."""

    def call(function_id: str, event: Any) -> Any:
        return handler_of(function_id)(event, LambdaContext(function_name=function_id))

    return call


@pytest.fixture
def invoke_http(invoke: Callable[[str, Any], Any]) -> Callable[[str, dict[str, Any]], HttpResult]:
    def call(function_id: str, event: dict[str, Any]) -> HttpResult:
        result = invoke(function_id, event)
        headers = {name.lower(): value for name, value in (result.get("headers") or {}).items()}
        body = result.get("body")
        return HttpResult(result["statusCode"], headers, json.loads(body) if body else None)

    return call


@pytest.fixture
def local_api(tables: dict[str, str]) -> Iterator[str]:
    """The local server (real handlers behind an API Gateway stand-in) on a free port; yields its URL."""
    from local.openapi import generate
    from local.server import LocalApi

    server = make_server("127.0.0.1", free_port(), LocalApi(openapi_document=generate()), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield f"http://{host!s}:{port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session
