"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from local.apigateway import HttpResult, route_event

Get = Callable[..., HttpResult]


@pytest.fixture
def get(invoke_http: Callable[[str, dict[str, Any]], HttpResult]) -> Get:
    """GET a BatchSessions route through the real handler: `get("/batch", batch_id=...)`."""

    def call(path: str, **query: str) -> HttpResult:
        return invoke_http("BatchSessionsFunction", route_event(f"GET {path}", query=query or None))

    return call
