"""A stand-in for Lambda's Runtime API (the HTTP endpoint at AWS_LAMBDA_RUNTIME_API), for one function
instance: the runtime interface client (awslambdaric) long-polls `GET .../invocation/next`, gets the event
with the Lambda-Runtime-* headers, runs the handler and posts `.../{id}/response` or `.../{id}/error`;
`/init/error` when the handler cannot be loaded. Each invocation gets its own request id, deadline and
trace header (the client sets `_X_AMZN_TRACE_ID` from Lambda-Runtime-Trace-Id before calling the handler).
"""

from __future__ import annotations

import json
import queue
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
ACCOUNT = "123456789012"
REGION = "us-east-1"


def trace_header() -> str:
    """A sampled X-Ray trace header for one invocation, as Lambda makes it when tracing is active."""
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled=1"


@dataclass
class Invocation:
    payload: bytes
    timeout_s: float
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    trace_id: str = field(default_factory=trace_header)
    done: threading.Event = field(default_factory=threading.Event)
    response: bytes | None = None
    error: dict[str, Any] | None = None
    error_headers: dict[str, str] = field(default_factory=dict)


class InvocationError(Exception):
    """The function's error, as Lambda reports it: errorType and errorMessage."""

    def __init__(self, error: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{error.get('errorType')}: {error.get('errorMessage')}")
        self.error = error
        self.headers = headers or {}  # Lambda-Runtime-Function-XRay-Error-Cause: what Lambda puts in X-Ray


class RuntimeApi:
    """One instance's Runtime API on 127.0.0.1 (`address` goes into AWS_LAMBDA_RUNTIME_API)."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.running: dict[str, Invocation] = {}
        self.init_error: dict[str, Any] | None = None
        self.first_poll: float | None = None  # time.monotonic() of the first `next`: the init phase ended
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def submit(self, event: Any, timeout_s: float) -> Invocation:
        invocation = Invocation(json.dumps(event).encode(), timeout_s)
        self.pending.put(invocation)
        return invocation

    def next_invocation(self) -> tuple[bytes, dict[str, str]]:
        """The next event and its headers; blocks, as the real endpoint does, until there is one."""
        if self.first_poll is None:
            self.first_poll = time.monotonic()
        invocation = self.pending.get()
        with self.lock:
            self.running[invocation.request_id] = invocation
        headers = {
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(int((time.time() + invocation.timeout_s) * 1000)),
            "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
            "Lambda-Runtime-Trace-Id": invocation.trace_id,
        }
        return invocation.payload, headers

    def complete(self, request_id: str, outcome: str, body: bytes, headers: dict[str, str]) -> bool:
        """An invocation's `response` or `error`; False for an unknown request id or outcome."""
        if outcome not in ("response", "error"):
            return False
        with self.lock:
            invocation = self.running.pop(request_id, None)
        if invocation is None:
            return False
        if outcome == "response":
            invocation.response = body
        else:
            invocation.error = json.loads(body or b"{}")
            invocation.error_headers = headers
        invocation.done.set()
        return True

    def init_failed(self, error: dict[str, Any]) -> None:
        self.init_error = error
        self.fail_all(error)

    def fail_all(self, error: dict[str, Any]) -> None:
        """The instance is gone (init error, crash): every invocation not answered fails with `error`."""
        with self.lock:
            waiting = list(self.running.values())
            self.running.clear()
        while not self.pending.empty():
            waiting.append(self.pending.get_nowait())
        for invocation in waiting:
            invocation.error = error
            invocation.done.set()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A runtime process ended while it polled (an instance stopped): nothing to report."""


def _handler_class(api: RuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the client keeps one connection open

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: HTTPStatus, body: bytes = b"{}", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path != f"{PREFIX}/invocation/next":
                self._answer(HTTPStatus.NOT_FOUND)
                return
            payload, headers = api.next_invocation()
            self._answer(HTTPStatus.OK, payload, headers)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == f"{PREFIX}/init/error":
                api.init_failed(json.loads(body or b"{}"))
                self._answer(HTTPStatus.ACCEPTED)
                return
            request_id, _, outcome = self.path.removeprefix(f"{PREFIX}/invocation/").partition("/")
            if not api.complete(request_id, outcome, body, dict(self.headers.items())):
                self._answer(HTTPStatus.BAD_REQUEST, b'{"errorType":"InvalidRequestID"}')
                return
            self._answer(HTTPStatus.ACCEPTED)

    return Handler
