"""The Tracer exists only when it traces; otherwise the handlers run unwrapped (cold start, bench/RESULTS.md)."""

from __future__ import annotations

from typing import Any

import pytest

from clickstream import observability
from clickstream.observability import UntracedHandlers, traced_section, tracing_enabled


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({}, False),  # not in Lambda
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
    ],
)
def test_tracing_is_on_only_in_lambda_and_not_disabled(environ: dict[str, str], enabled: bool) -> None:
    assert tracing_enabled(environ) is enabled


def test_the_stand_in_returns_the_handler_itself() -> None:
    def handler(event: Any, context: Any) -> str:
        return "ok"

    untraced = UntracedHandlers()
    assert untraced.capture_lambda_handler(handler) is handler
    assert untraced.capture_lambda_handler(capture_response=False)(handler) is handler


def test_tests_run_with_the_stand_in() -> None:
    # conftest sets POWERTOOLS_TRACE_DISABLED, as the local server does: no X-Ray SDK is created.
    assert isinstance(observability.tracer, UntracedHandlers)


def test_sections_are_not_traced_without_the_tracer() -> None:
    with traced_section("## route") as section:
        assert section is None  # contextlib.nullcontext: no X-Ray SDK touched
