"""Domain calls made by tests run under the policy of the function that makes them in AWS.

Many integration tests (faults, crashes, races) drive the service through `Clickstream` rather than
through a handler. Each public method of `Clickstream` (and of its `Exporter`) is called by exactly one
function's handler; read from the handlers' code, that function is the one a test's call is checked
as (local/least_privilege.py). A call from inside another function's invocation (a test's hook racing a
registration against a release's wait) is that other function's call, so it is checked as such; a handler
only calls methods of its own function (`serving_functions` finds each method in one handler only), so
this never lends a handler another function's grants.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from clickstream.domain.datasets.export import Exporter
from clickstream.service import Clickstream
from local.lambda_runtime import running_as
from local.template import ROOT, load_template, resources_of_type

CALLS = {Clickstream: re.compile(r"get_service\(\)\.(\w+)\("), Exporter: re.compile(r"\bexporter\.(\w+)\(")}


def serving_functions() -> dict[tuple[type, str], str]:
    """(class, method) -> the function whose handler calls it."""
    serving: dict[tuple[type, str], str] = {}
    for function_id, function in resources_of_type(load_template(), "AWS::Serverless::Function").items():
        source = (ROOT / function["Properties"]["CodeUri"] / "app.py").read_text(encoding="utf-8")
        for owner, call in CALLS.items():
            for method in call.findall(source):
                if not callable(getattr(owner, method, None)):
                    continue  # an attribute (`get_service().exporter`), not a call of the domain
                other = serving.setdefault((owner, method), function_id)
                assert other == function_id, f"{owner.__name__}.{method} is called by {other} and {function_id}"
    return serving


def _as_function(function_id: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        with running_as(function_id):
            return method(*args, **kwargs)

    run.__dict__["serving_function"] = function_id
    return run


def domain_calls_run_as_their_functions() -> None:
    """Patch the domain's entry points once for the test run (idempotent)."""
    for (owner, method), function_id in serving_functions().items():
        current = getattr(owner, method)
        if getattr(current, "serving_function", None) is None:
            setattr(owner, method, _as_function(function_id, current))
