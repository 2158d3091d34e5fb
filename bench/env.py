"""The in-process bench environment: an embedded moto DynamoDB, the functions' environment, the real handlers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from local.dynamodb import LOCAL_REGION, dynamodb_client, ensure_tables, local_table_names
from local.lambda_runtime import LambdaContext, LambdaHandler, load_handler, put_layers_on_path
from local.template import function_code, function_environment, http_routes, load_template

if TYPE_CHECKING:
    from clickstream.storage import Storage


def lambda_environment(endpoint: str | None) -> dict[str, str]:
    """What the functions get: template.yaml's variables (as deployed), local credentials and endpoint."""
    template = load_template()
    names = local_table_names()
    environment = {
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
    }
    if endpoint:
        environment["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    for function_id in sorted({route.function_id for route in http_routes(template)}):
        environment.update(function_environment(template, function_id, names))
    return environment


class MotoProcess:
    """local.dynamodb.EmbeddedDynamoDB, served by a child process (bench/dynamodb_server.py)."""

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
    """A moto DynamoDB (own process) and one instance of each function, called in-process as Lambda would."""

    def __init__(self) -> None:
        self.dynamodb = MotoProcess()
        # No X-Ray daemon here: the in-process figures are for tracing off (cold start measures both).
        os.environ.update(lambda_environment(self.dynamodb.endpoint))
        os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
        os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)  # metrics are flushed (to stdout) as in Lambda
        put_layers_on_path()
        self._handlers: dict[str, LambdaHandler] = {}
        self.fresh_tables()

    def fresh_tables(self) -> None:
        from clickstream import runtime

        self.dynamodb.reset()
        ensure_tables(dynamodb_client(self.dynamodb.endpoint), local_table_names())
        runtime.reset()

    def set_environment(self, **values: str) -> None:
        """Change the functions' settings; the service is rebuilt on its next use (a new container)."""
        from clickstream import runtime

        os.environ.update(values)
        runtime.reset()

    def handler(self, function_id: str) -> LambdaHandler:
        if function_id not in self._handlers:
            code_uri, name = function_code(load_template(), function_id)
            self._handlers[function_id] = load_handler(code_uri, name)
        return self._handlers[function_id]

    def send(self, function_id: str, event: dict[str, Any]) -> tuple[int, Any]:
        result = self.handler(function_id)(event, LambdaContext(function_name=function_id))
        body = result.get("body")
        return int(result["statusCode"]), json.loads(body) if body else None

    def max_concurrency(self) -> int:
        from clickstream.settings import get_settings

        return get_settings().dynamodb_max_concurrency

    def storage(self) -> Storage:
        from clickstream import runtime

        return runtime.get_service().storage

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
