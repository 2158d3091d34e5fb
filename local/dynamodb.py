"""AWS for local runs and tests: an embedded moto server (DynamoDB with its streams, EventBridge, SQS),
and the template's tables on it or on any other DynamoDB endpoint."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from local.template import load_template, table_definitions

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from werkzeug.serving import BaseWSGIServer

LOCAL_REGION = "us-east-1"
# Where `make run` serves its embedded AWS (moto) unless AWS_PORT says otherwise; `make invoke` looks here.
DEFAULT_AWS_PORT = 4566


class EmbeddedAws:
    """moto's server over HTTP on 127.0.0.1 (every service moto has, at one endpoint), one request at a time.

    DynamoDB applies each write to an item atomically; moto checks a condition and then writes, so
    concurrent requests could interleave. Serializing requests restores DynamoDB's guarantee.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self._port = port
        self._host = host
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("start() first")
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"  # reached locally on loopback, whatever address it listens on

    def start(self) -> EmbeddedAws:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        dispatcher = DomainDispatcherApplication(create_backend_app)
        lock = threading.Lock()

        def serialized(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            with lock:
                return list(dispatcher(environ, start_response))

        class QuietHandler(MotoRequestHandler):
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                return None

        try:
            self._server = make_server("127.0.0.1", self._port, serialized, threaded=True, request_handler=QuietHandler)
        except OSError:  # the port is taken (another `make run`): any free one
            self._server = make_server("127.0.0.1", 0, serialized, threaded=True, request_handler=QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-dynamodb", daemon=True)
        self._thread.start()
        return self

    def reset(self) -> None:
        """Drop every table (moto's reset API)."""
        import requests

        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def dynamodb_client(endpoint: str | None = None) -> DynamoDBClient:
    return boto3.session.Session().client("dynamodb", endpoint_url=endpoint, region_name=None)


def local_table_names(prefix: str = "") -> dict[str, str]:
    """Physical table names for a local run: the template's logical ids, optionally prefixed."""
    return {logical_id: f"{prefix}{logical_id}" for logical_id in table_definitions(load_template())}


def ensure_tables(client: DynamoDBClient, names: dict[str, str], timeout_s: float = 60) -> None:
    """Create the template's tables that are missing; safe when several processes do it at once."""
    definitions = table_definitions(load_template())
    for logical_id, name in names.items():
        try:
            client.create_table(TableName=name, **definitions[logical_id])
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUseException":
                raise
    deadline = time.monotonic() + timeout_s
    for name in names.values():
        while client.describe_table(TableName=name)["Table"]["TableStatus"] != "ACTIVE":
            if time.monotonic() > deadline:
                raise TimeoutError(f"table {name} did not become ACTIVE")
            time.sleep(0.2)
