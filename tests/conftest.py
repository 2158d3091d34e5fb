"""Fixtures every tier shares. Only tests that ask for `dynamodb` (or what builds on it) start moto.

tests/unit         no moto, no network: seconds (`make unit`)
tests/integration  the real handlers and domain in-process, over an embedded moto DynamoDB
tests/system       the local server over HTTP, schemathesis, several server processes
tests/lambda       each function as deployed: packaged as `sam build` does, Python 3.13 under the runtime
                   interface client (awslambdaric), tracing on, X-Ray segments and logs searched (`make lambda`)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import requests
from werkzeug.serving import make_server

from local import least_privilege
from local.apigateway import HttpResult
from local.dynamodb import EmbeddedAws, dynamodb_client, ensure_tables, local_table_names
from local.environment import lambda_environment
from local.queues import ensure_queues
from tests.support import TEST_ENVIRONMENT
from tests.support.processes import free_port

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

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
# Every AWS call a function makes is checked against its policy in template.yaml (local/least_privilege.py).
least_privilege.install()

from clickstream import runtime  # noqa: E402 - after the settings Powertools reads at import
from clickstream.service import Clickstream  # noqa: E402
from clickstream.settings import Settings  # noqa: E402
from clickstream.storage import Storage  # noqa: E402
from clickstream.storage.plumbing import Dynamo, new_client  # noqa: E402
from local.harness import LocalFunctions  # noqa: E402
from tests.support.privilege import domain_calls_run_as_their_functions  # noqa: E402

domain_calls_run_as_their_functions()


@pytest.fixture(scope="session")
def dynamodb() -> Iterator[EmbeddedAws]:
    server = EmbeddedAws().start()
    yield server
    server.stop()


def use_fresh_tables(dynamodb: EmbeddedAws, environment: pytest.MonkeyPatch, lake_dir: Path) -> dict[str, str]:
    """Empty tables built from template.yaml, and the functions' environment pointing at them (and at the
    embedded moto's EventBridge and SQS, and at `lake_dir` for datasets)."""
    dynamodb.reset()
    for name, value in {**lambda_environment(dynamodb.endpoint, dynamodb.endpoint), **TEST_ENVIRONMENT}.items():
        environment.setenv(name, value)
    environment.setenv("LAKE_DIR", str(lake_dir))
    environment.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    names = local_table_names()
    ensure_tables(dynamodb_client(dynamodb.endpoint), names)
    ensure_queues(boto3.session.Session().client("sqs", endpoint_url=dynamodb.endpoint))
    runtime.reset()
    return names


@pytest.fixture
def tables(dynamodb: EmbeddedAws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    yield use_fresh_tables(dynamodb, monkeypatch, tmp_path / "lake")
    runtime.reset()


@pytest.fixture
def settings(tables: dict[str, str]) -> Settings:
    return Settings.from_environment()


@pytest.fixture
def storage_client(settings: Settings) -> DynamoDBClient:
    """The DynamoDB client the `storage` fixture's gateways share, made here so tests can instrument it."""
    return new_client(settings)


@pytest.fixture
def storage(settings: Settings, storage_client: DynamoDBClient) -> Storage:
    return Storage.over(Dynamo(storage_client), settings)


@pytest.fixture
def service(storage: Storage, settings: Settings) -> Clickstream:
    return Clickstream(storage, settings)


_functions: list[LocalFunctions] = []


def local_functions() -> LocalFunctions:
    """The template's functions, loaded once for the test run (as warm Lambda instances)."""
    if not _functions:
        _functions.append(LocalFunctions())
    return _functions[0]


@pytest.fixture
def invoke(tables: dict[str, str]) -> Callable[[str, Any], Any]:
    """Call a function's real Lambda handler with an event, as Lambda would."""
    return local_functions().invoke


@pytest.fixture
def invoke_http(tables: dict[str, str]) -> Callable[[str, dict[str, Any]], HttpResult]:
    return local_functions().invoke_http


def serve_locally(functions: LocalFunctions) -> Iterator[str]:
    """The local server's WSGI app on a free port in this process; yields its URL."""
    from local.openapi import generate
    from local.server import LocalApi

    server = make_server("127.0.0.1", free_port(), LocalApi(functions, openapi_document=generate()), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield f"http://{host!s}:{port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def local_api(tables: dict[str, str]) -> Iterator[str]:
    """The local server (real handlers behind an API Gateway stand-in) on a free port; yields its URL."""
    yield from serve_locally(local_functions())


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session
