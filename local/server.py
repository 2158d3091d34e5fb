"""`make run`: the whole API on http://127.0.0.1:$PORT, calling the real handlers as API Gateway would.

Routes, functions, environment and tables come from template.yaml. DynamoDB is an embedded moto
server unless AWS_ENDPOINT_URL_DYNAMODB names another endpoint (tables are created when missing).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
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
from local.docs_page import DOCS_PATH, swagger_page
from local.dynamodb import (
    DEFAULT_API_PORT,
    LOCAL_REGION,
    EmbeddedAws,
    aws_port_for,
    dynamodb_client,
    ensure_tables,
    listening_socket,
    local_table_names,
)
from local.environment import apply_lambda_environment
from local.harness import LocalFunctions
from local.queues import ensure_queues
from local.run_record import RunRecord, remove_record, write_record
from local.secrets import apply_user_id_secret
from local.sigv4 import signature_problem

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
        self._docs_page: str | None = None  # rendered on first request: 1.5 MB of Swagger UI
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

    def _documentation(self, request: Request) -> Response | None:
        """The OpenAPI document (/openapi.json) and its page (/docs; / leads there), unsigned like the page."""
        if request.method != "GET" or self._openapi is None:
            return None
        if request.path == "/openapi.json" or (request.path == DOCS_PATH and request.args.get("format") == "json"):
            return _json(200, self._openapi)
        if request.path == DOCS_PATH:
            if self._docs_page is None:
                self._docs_page = swagger_page(self._openapi)
            return Response(self._docs_page, status=200, content_type="text/html; charset=utf-8")
        if request.path == "/":
            return Response(status=302, headers={"Location": DOCS_PATH})
        return None

    def _respond(self, request: Request) -> Response:
        if (documentation := self._documentation(request)) is not None:
            return documentation
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
        if self._credentials is not None and (problem := self._credentials.problem(request, headers, body)):
            log.warning("403 for %s: %s", route_key, problem)
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

    def problem(self, request: Request, headers: dict[str, str], body: bytes) -> str | None:
        """Why the request is not signed by this key (unsigned, unknown key, bad signature, stale date), or None."""
        raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
        return signature_problem(
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
    host = os.environ.get("HOST", "127.0.0.1")
    api_socket = _api_socket(host, int(os.environ.get("PORT", DEFAULT_API_PORT)))
    port = api_socket.getsockname()[1]
    aws = _embedded_aws(port)
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or aws.endpoint
    embedded_dynamodb = endpoint == aws.endpoint
    apply_lambda_environment(endpoint, aws.endpoint)
    _local_defaults()
    apply_user_id_secret(aws.endpoint)
    tables = local_table_names()
    ensure_tables(dynamodb_client(endpoint), tables)
    queues = ensure_queues(boto3.session.Session().client("sqs", endpoint_url=aws.endpoint))

    from local.openapi import generate

    least_privilege.install()  # a call outside a function's policy fails here as in AWS
    credentials = LocalCredentials.from_environment()
    api = LocalApi(LocalFunctions(), openapi_document=generate(), credentials=credentials)
    base_url = f"http://{host}:{port}"
    with api_socket:
        server = make_server(host, port, api, threaded=True, fd=api_socket.fileno())
    where = f"embedded moto ({endpoint})" if embedded_dynamodb else f"DynamoDB at {endpoint}"
    print(f"Clickstream API on {base_url}, backed by {where}; the API's page: {base_url}{DOCS_PATH}", flush=True)
    print(f"Embedded AWS (moto: SQS, EventBridge{', DynamoDB' * embedded_dynamodb}) on {aws.endpoint}", flush=True)
    if credentials is not None:
        print(
            f"Requests must be SigV4-signed (LOCAL_AUTH=iam): access key {credentials.access_key!r}, "
            f"region {credentials.region}, service execute-api; others get 403 (the reason is logged).",
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
    record = RunRecord(base_url, aws.endpoint, endpoint, os.getpid())
    print(f"make invoke PORT={port} uses this server's AWS ({write_record(port, record).name}).", flush=True)
    print("Ctrl-C to stop.", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stopped by a signal: clean up as on Ctrl-C
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        remove_record(port, os.getpid())
        server.server_close()
        if automation is not None:
            automation.stop()
        aws.stop()
        sys.stdout.flush()


def _local_defaults() -> None:
    os.environ.setdefault("EXPORT_DELAY_SECONDS", "0")
    # Late writes (docs/protocol.md): no container caches a batch's state, and a call is taken to end within
    # 2 s (nothing stops a longer one here, as Lambda's timeout does), so an export reads 2 s after its fence.
    os.environ.setdefault("BATCH_STATE_CACHE_MS", "0")
    os.environ.setdefault("WRITE_SETTLE_MS", "2000")
    # Locally no CloudWatch agent reads metrics from stdout.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")


def _api_socket(host: str, port: int) -> socket.socket:
    try:
        return listening_socket(host, port)
    except OSError as error:
        raise SystemExit(f"PORT={port} is taken ({error.strerror}): start this server on another, PORT=...") from None


def _embedded_aws(api_port: int) -> EmbeddedAws:
    """moto on AWS_PORT when set (0: any free port), else on the port that goes with PORT or, taken, a free one."""
    host = os.environ.get("AWS_HOST", "127.0.0.1")
    if os.environ.get("AWS_PORT"):
        port = int(os.environ["AWS_PORT"])
        try:
            return EmbeddedAws(port, host, fall_back_to_free_port=False).start()
        except OSError as error:
            raise SystemExit(f"AWS_PORT={port} is taken ({error.strerror}): choose another or unset it") from None
    return EmbeddedAws(aws_port_for(api_port), host).start()


def _start_automation(aws_endpoint: str, functions: LocalFunctions, tables: dict[str, str]) -> LocalAutomation:
    lake_dir = Path(os.environ["LAKE_DIR"])
    delay_s = float(os.environ["EXPORT_DELAY_SECONDS"])
    automation = LocalAutomation(aws_endpoint, functions, tables, lake_dir, delay_s)
    automation.run()
    print(f"Released batches are exported to {lake_dir} after {delay_s:g} s (EXPORT_DELAY_SECONDS).", flush=True)
    return automation


if __name__ == "__main__":
    main()
