"""API Gateway HTTP API (payload 2.0) as the functions see it: events in, Lambda results out."""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LOCAL_ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class HttpResult:
    """A function's answer to an HTTP event: status, lower-cased headers and the parsed JSON body (any other
    content type: its text)."""

    status: int
    headers: dict[str, str]
    body: Any


def http_api_event(
    *,
    method: str,
    path: str,
    route_key: str,
    query: Mapping[str, str] | None = None,
    raw_query: str | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An HTTP API event as the service receives it behind AWS_IAM auth.

    `raw_query` is the query string as sent; without it, it is built from `query`, URL-encoded.
    """
    now = time.time()
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": urllib.parse.urlencode(query or {}) if raw_query is None else raw_query,
        "headers": lowered,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT_ID,
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
            "authorizer": {
                "iam": {"accountId": LOCAL_ACCOUNT_ID, "userArn": f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:user/local"}
            },
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def route_event(route: str, *, body: Any = None, query: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The event of a JSON call to `route` ("METHOD /path"), as a client would send it."""
    method, path = route.split(" ", 1)
    payload = None if body is None else json.dumps(body).encode()
    return http_api_event(
        method=method,
        path=path,
        route_key=route,
        query=query,
        headers={"content-type": "application/json"} if payload else {},
        body=payload,
    )


def http_result(result: Mapping[str, Any]) -> HttpResult:
    """A Lambda proxy result (payload 2.0) read as an HTTP client reads it."""
    headers = {name.lower(): str(value) for name, value in (result.get("headers") or {}).items()}
    body = result.get("body") or ""
    if result.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8")
    parsed = json.loads(body) if body and "json" in headers.get("content-type", "application/json") else body or None
    return HttpResult(int(result.get("statusCode", 200)), headers, parsed)
