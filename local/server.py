"""`make run`: the whole API on http://127.0.0.1:$PORT, calling the real handlers as API Gateway would.

Routes, functions, environment and tables come from template.yaml. DynamoDB is an embedded moto
server unless AWS_ENDPOINT_URL_DYNAMODB names another endpoint (tables are created when missing).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from local import least_privilege
from local.apigateway import http_api_event
from local.automation import LocalAutomation
from local.dynamodb import (
    DEFAULT_AWS_PORT,
    LOCAL_REGION,
    EmbeddedAws,
    dynamodb_client,
    ensure_tables,
    local_table_names,
)
from local.environment import apply_lambda_environment
from local.harness import LocalFunctions
from local.queues import ensure_queues
from local.sigv4 import is_signed_by

# API Gateway HTTP APIs accept payloads up to 10 MB.
MAX_BODY_BYTES = 10 * 1024 * 1024
log = logging.getLogger("clickstream.local")


class LocalApi:
    """A WSGI application standing in for API Gateway: route -> event -> handler -> HTTP response."""

    def __init__(
        self,
        functions: LocalFunctions,
        openapi_document: dict[str, Any] | None = None,
        credentials: LocalCredentials | None = None,
    ) -> None:
        self.functions = functions
        self._openapi = openapi_document
        self._credentials = credentials  # None: no signature check (LOCAL_AUTH unset)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = MAX_BODY_BYTES
        try:
            response = self._respond(request)
        except RequestEntityTooLarge:
            _discard_body(environ)
            response = _json(413, {"message": "Request Entity Too Large"})
        return response(environ, start_response)

    def _respond(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/openapi.json" and self._openapi is not None:
            return _json(200, self._openapi)
        route_key = f"{request.method} {request.path}"
        function_id = self.functions.routes.get(route_key)
        if function_id is None:
            return _json(404, {"message": "Not Found"})
        body = request.get_data(cache=False)
        query = {key: ",".join(values) for key, values in request.args.lists()}
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        if self._credentials is not None and not self._credentials.signed(request, headers, body):
            return _json(403, {"message": "Forbidden"})  # what API Gateway's AWS_IAM authoriser answers
        event = http_api_event(
            method=request.method,
            path=request.path,
            route_key=route_key,
            query=query or None,
            raw_query=request.query_string.decode("latin-1"),
            headers=headers,
            body=body or None,
            source_ip=request.remote_addr or "127.0.0.1",
        )
        try:
            result = self.functions.invoke(function_id, event)
        except Exception:  # an unhandled error in a function: API Gateway answers a bare 500
            log.error("function %s failed:\n%s", function_id, traceback.format_exc())
            return _json(500, {"message": "Internal Server Error"})
        return _http_response(result)


@dataclass(frozen=True)
class LocalCredentials:
    """The one key the local server accepts, as the AWS_IAM authoriser accepts a caller's (LOCAL_AUTH=iam)."""

    access_key: str
    secret_key: str
    region: str = LOCAL_REGION

    @classmethod
    def from_environment(cls) -> LocalCredentials | None:
        mode = os.environ.get("LOCAL_AUTH", "")
        if mode not in ("", "iam"):
            raise SystemExit(f"LOCAL_AUTH={mode!r}: expected iam, or unset for no signature check")
        if mode != "iam":
            return None
        return cls(
            os.environ.get("LOCAL_IAM_ACCESS_KEY_ID", "local"),
            os.environ.get("LOCAL_IAM_SECRET_ACCESS_KEY", "local"),
        )

    def signed(self, request: Request, headers: dict[str, str], body: bytes) -> bool:
        raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
        return is_signed_by(
            method=request.method,
            path=raw_uri.split("?", 1)[0],
            query_string=request.query_string.decode("latin-1"),
            headers=headers,
            body=body,
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
        )


def _discard_body(environ: dict[str, Any], limit: int = 4 * MAX_BODY_BYTES) -> None:
    """Read an oversized body before answering, so the client gets the 413 rather than a reset connection."""
    stream = environ["wsgi.input"]
    remaining = min(int(environ.get("CONTENT_LENGTH") or 0), limit)
    while remaining > 0:
        chunk = stream.read(min(remaining, 1 << 16))
        if not chunk:
            return
        remaining -= len(chunk)


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def _http_response(result: dict[str, Any]) -> Response:
    body = result.get("body") or ""
    if result.get("isBase64Encoded"):
        import base64

        payload: bytes | str = base64.b64decode(body)
    else:
        payload = body
    response = Response(payload, status=int(result.get("statusCode", 200)))
    response.headers.pop("Content-Type", None)
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = value
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    return response


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    port = int(os.environ.get("PORT", "3000"))
    host = os.environ.get("HOST", "127.0.0.1")
    # EventBridge and SQS, and DynamoDB unless another endpoint is named; `make invoke` finds it on its port.
    # AWS_HOST=0.0.0.0 lets `sam local` containers reach it (Linux: --add-host host.docker.internal:host-gateway).
    aws_port = int(os.environ.get("AWS_PORT", DEFAULT_AWS_PORT))
    aws = EmbeddedAws(aws_port, os.environ.get("AWS_HOST", "127.0.0.1")).start()
    if aws_port and not aws.endpoint.endswith(f":{aws_port}"):
        print(f"Port {aws_port} is taken: the embedded AWS is at {aws.endpoint} (make invoke: AWS_PORT=...)")
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or aws.endpoint
    embedded_dynamodb = endpoint == aws.endpoint
    apply_lambda_environment(endpoint, aws.endpoint)
    os.environ.setdefault("EXPORT_DELAY_SECONDS", "0")
    # Locally no CloudWatch agent reads metrics from stdout.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    tables = local_table_names()
    ensure_tables(dynamodb_client(endpoint), tables)
    queues = ensure_queues(boto3.session.Session().client("sqs", endpoint_url=aws.endpoint))

    from local.openapi import generate

    least_privilege.install()  # a call outside a function's policy fails here as in AWS
    credentials = LocalCredentials.from_environment()
    api = LocalApi(LocalFunctions(), openapi_document=generate(), credentials=credentials)
    base_url = f"http://{host}:{port}"
    server = make_server(host, port, api, threaded=True)
    where = f"embedded moto ({endpoint})" if embedded_dynamodb else f"DynamoDB at {endpoint}"
    print(f"Clickstream API on {base_url}, backed by {where}", flush=True)
    if credentials is not None:
        print(
            f"Requests must be SigV4-signed (LOCAL_AUTH=iam): access key {credentials.access_key!r}, "
            f"region {credentials.region}, service execute-api; others get 403.",
            flush=True,
        )
    automation = _start_automation(aws.endpoint, api.functions, tables) if embedded_dynamodb else None
    print(f"Improvement tasks queue: {queues['ImprovementTasksQueue']}", flush=True)
    if automation is None:
        print(
            "Releases are not announced or exported, tasks not delivered: that DynamoDB has no streams here.",
            flush=True,
        )
    if os.environ.get("SEED", "1") != "0":
        from local.seed import print_walkthrough, seed_demo

        print_walkthrough(base_url, seed_demo(api.functions))
    print("Ctrl-C to stop.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if automation is not None:
            automation.stop()
        aws.stop()
        sys.stdout.flush()


def _start_automation(aws_endpoint: str, functions: LocalFunctions, tables: dict[str, str]) -> LocalAutomation:
    lake_dir = Path(os.environ["LAKE_DIR"])
    delay_s = float(os.environ["EXPORT_DELAY_SECONDS"])
    automation = LocalAutomation(aws_endpoint, functions, tables, lake_dir, delay_s)
    automation.run()
    print(f"Released batches are exported to {lake_dir} after {delay_s:g} s (EXPORT_DELAY_SECONDS).", flush=True)
    return automation


if __name__ == "__main__":
    main()
