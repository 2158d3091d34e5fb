"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from clickstream import runtime
from local.apigateway import HttpResult, route_event
from local.dynamodb import EmbeddedAws
from local.secrets import apply_user_id_secret

Get = Callable[..., HttpResult]


@pytest.fixture
def get(invoke_http: Callable[[str, dict[str, Any]], HttpResult]) -> Get:
    """GET a BatchSessions route through the real handler: `get("/batch", batch_id=...)`."""

    def call(path: str, **query: str) -> HttpResult:
        return invoke_http("BatchSessionsFunction", route_event(f"GET {path}", query=query or None))

    return call


@pytest.fixture
def hmac_on(tables: dict[str, str], dynamodb: EmbeddedAws, monkeypatch: pytest.MonkeyPatch) -> str:
    """USER_ID_HASHING=hmac with the key in the embedded Secrets Manager, as `make run` sets it up."""
    environ = {"USER_ID_HASHING": "hmac"}
    apply_user_id_secret(dynamodb.endpoint, environ)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    return environ["USER_ID_HMAC_SECRET_ARN"]
