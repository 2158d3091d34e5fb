"""Logger, Tracer and Metrics, created once per container and shared by every module.

Creating Powertools' Tracer imports the X-Ray SDK and patches libraries, tens of ms of cold start,
even when it will not trace. So the Tracer is created only when tracing is on (in Lambda, unless
POWERTOOLS_TRACE_DISABLED); otherwise `tracer` is a stand-in whose decorators return the handler as is.

Routes are traced by `traced_section` (one resolver middleware, clickstream.api), never by wrapping the
route function: Powertools reads a route's annotations through the function it was given, and a wrapper's
globals are the tracer's module, where the handler's names (strings, under postponed annotations) do not
resolve - every route then failed validation in Lambda (contract 13.1).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit, single_metric
from aws_lambda_powertools.shared import constants
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice


class HandlerTracer(Protocol):
    """The part of Powertools' Tracer the service uses."""

    def capture_lambda_handler(
        self,
        lambda_handler: Callable[..., Any] | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Callable[..., Any]: ...


def _as_is(function: Callable[..., Any] | None) -> Callable[..., Any]:
    if function is None:  # used with arguments, as @tracer.capture_lambda_handler(capture_response=False)
        return lambda undecorated: undecorated
    return function


class UntracedHandlers:
    """`tracer` when tracing is off: nothing imported, nothing wrapped, nothing done per request."""

    def capture_lambda_handler(
        self,
        lambda_handler: Callable[..., Any] | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Callable[..., Any]:
        return _as_is(lambda_handler)


def tracing_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Powertools' own rule: off when POWERTOOLS_TRACE_DISABLED is truthy, outside Lambda, under `sam local`."""
    if resolve_truthy_env_var_choice(env=environ.get(constants.TRACER_DISABLED_ENV, "false")):
        return False
    in_lambda = bool(environ.get(constants.LAMBDA_TASK_ROOT_ENV))
    emulated = bool(environ.get(constants.SAM_LOCAL_ENV) or environ.get(constants.CHALICE_LOCAL_ENV))
    return in_lambda and not emulated


def _tracer() -> HandlerTracer:
    if not tracing_enabled():
        return UntracedHandlers()
    # Only botocore is patched: each DynamoDB call becomes a subsegment; nothing else is wrapped.
    return Tracer(patch_modules=["botocore"])


logger = Logger()
tracer = _tracer()
metrics = Metrics()


def traced_section(name: str) -> AbstractContextManager[Any]:
    """A subsegment named `name` around a piece of work when tracing (nothing recorded in it but its
    timing and the AWS calls made inside), nothing otherwise."""
    if isinstance(tracer, Tracer):
        return tracer.provider.in_subsegment(name=name)
    return nullcontext()


class PowertoolsTelemetry:
    """The domain's `Telemetry`: CloudWatch embedded metrics, and structured logs with the ids as keys."""

    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        if not dimensions:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
            return
        # Dimensions of one metric only (e.g. skip reason), flushed right away.
        with single_metric(
            name=name, unit=MetricUnit.Count, value=value, default_dimensions=metrics.default_dimensions
        ) as metric:
            for key, dimension in dimensions.items():
                metric.add_dimension(name=key, value=dimension)

    def rare(self, name: str, message: str, **ids: str | int) -> None:
        logger.warning(message, extra={"recovery": name, **ids})
        self.count(name)

    def gauges(self, values: dict[str, tuple[float, str]], at_ms: int) -> None:
        """One EMF document, timestamped `at_ms` (a dashboard then shows one point per export)."""
        if not values:
            return
        document = EphemeralMetrics()  # its own set: not mixed with the invocation's counts
        document.set_default_dimensions(**metrics.default_dimensions)
        for name, (value, unit) in values.items():
            document.add_metric(name=name, unit=MetricUnit(unit), value=value)
        document.set_timestamp(at_ms)
        document.flush_metrics()
