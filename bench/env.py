"""The in-process bench environment: moto DynamoDB in its own process, the functions' environment, the handlers."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from local.apigateway import HttpResult
from local.dynamodb import dynamodb_client, ensure_tables, local_table_names
from local.environment import lambda_environment

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from clickstream.settings import Settings
    from local.harness import LocalFunctions


class MotoProcess:
    """local.dynamodb.EmbeddedAws, served by a child process (bench/dynamodb_server.py)."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.dynamodb_server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("ENDPOINT "):
            self.stop()
            raise RuntimeError(f"moto server did not start: {line!r}")
        self.endpoint = line.split(" ", 1)[1].strip()

    def reset(self) -> None:
        """Drop every table (moto's reset API)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310 - loopback
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - loopback
            pass

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class BenchEnv:
    """A moto DynamoDB (own process) and the template's functions, called in-process as Lambda would."""

    def __init__(self) -> None:
        self.dynamodb = MotoProcess()
        os.environ.update(lambda_environment(self.dynamodb.endpoint, self.dynamodb.endpoint))
        # No X-Ray daemon here: the in-process figures are for tracing off (cold start measures both).
        os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
        os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)  # metrics are flushed (to stdout) as in Lambda
        from local.harness import LocalFunctions  # after the environment: Powertools reads it at import

        self.functions: LocalFunctions = LocalFunctions(instances_per_function=1)
        self.fresh_tables()

    def fresh_tables(self) -> None:
        self.dynamodb.reset()
        ensure_tables(dynamodb_client(self.dynamodb.endpoint), local_table_names())
        self._new_container()

    def set_environment(self, **values: str) -> None:
        """Change the functions' settings; the service is rebuilt (a new container)."""
        os.environ.update(values)
        self._new_container()

    def _new_container(self) -> None:
        """A fresh service, built now so that its DynamoDB client is known (to instrument it)."""
        from bench.request_counts import service_dynamodb_client

        self._service_client = service_dynamodb_client()

    def send(self, route: str, *, body: Any = None, query: dict[str, str] | None = None) -> HttpResult:
        return self.functions.call(route, body=body, query=query)

    def expect(self, route: str, *, body: Any = None, query: dict[str, str] | None = None) -> Any:
        """`send`, for setup steps that must succeed: the parsed body, or an error."""
        result = self.send(route, body=body, query=query)
        if result.status != 200:
            raise RuntimeError(f"setup {route} -> {result.status}: {result.body}")
        return result.body

    def settings(self) -> Settings:
        from clickstream.settings import get_settings

        return get_settings()

    def service_client(self) -> DynamoDBClient:
        """The DynamoDB client the functions' service uses (the same instance until the next new container)."""
        return self._service_client

    def close(self) -> None:
        self.dynamodb.stop()


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send fd 1 to /dev/null (metrics and logs the handlers print as Lambda would), then restore it."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "wb") as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
