"""AWS for local runs and tests: an embedded moto server (DynamoDB with its streams, EventBridge, SQS),
and the template's tables on it or on any other DynamoDB endpoint."""

from __future__ import annotations

import socket
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
# The embedded AWS of `make run` on its default PORT (3000); another PORT moves it by as much (aws_port_for).
DEFAULT_AWS_PORT = 4566
DEFAULT_API_PORT = 3000
# DynamoDB's JSON protocol names its operation in this header (X-Amz-Target: DynamoDB_20120810.PutItem).
_DYNAMODB_TARGETS = ("DynamoDB_", "DynamoDBStreams_")


def aws_port_for(api_port: int) -> int:
    """The embedded AWS port that goes with an API port: 4566 for 3000, 4567 for 3001, ... (0 for a free one)."""
    if api_port == 0:
        return 0
    port = api_port + DEFAULT_AWS_PORT - DEFAULT_API_PORT
    return port if 0 < port < 65536 else 0


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound and listening on (host, port); OSError when the port is taken."""
    return socket.create_server((host, port), backlog=128)


class EmbeddedAws:
    """moto's server over HTTP (every service moto has, at one endpoint).

    DynamoDB applies each write to an item atomically; moto checks a condition and then writes, so
    concurrent requests could interleave: DynamoDB requests (and its streams, and moto's own API) are
    served one at a time. Every other service is served concurrently, so an SQS long poll
    (WaitTimeSeconds) never holds up DynamoDB, or the SendMessage that ends the poll.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", *, fall_back_to_free_port: bool = True) -> None:
        self._port = port
        self._host = host
        self._fall_back = fall_back_to_free_port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("start() first")
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"  # reached locally on loopback, whatever address it listens on

    def start(self) -> EmbeddedAws:
        """Serve on the port; when it is taken, on a free one (or OSError, without fall_back_to_free_port)."""
        from werkzeug.serving import make_server

        try:
            listening = listening_socket(self._host, self._port)
        except OSError:
            if not self._fall_back or self._port == 0:
                raise
            listening = listening_socket(self._host, 0)
        with listening:  # werkzeug serves a duplicate of the descriptor
            self._server = make_server(
                self._host,
                listening.getsockname()[1],
                _dynamodb_serialized(),
                threaded=True,
                request_handler=_quiet_handler(),
                fd=listening.fileno(),
            )
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-aws", daemon=True)
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


def _dynamodb_serialized() -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """moto's application, with DynamoDB's requests (and moto's own API) served one at a time."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    dispatcher = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith(_DYNAMODB_TARGETS) or environ.get("PATH_INFO", "").startswith("/moto-api"):
            with lock:
                return list(dispatcher(environ, start_response))
        return list(dispatcher(environ, start_response))

    return application


def _quiet_handler() -> type[Any]:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class QuietHandler(MotoRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            return None

    return QuietHandler


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
