"""Powertools made safe for the local server, which resolves many requests at once in one process.

Powertools keeps the request being resolved on a class attribute (`BaseRouter.current_event`), shared by
every resolver in the process. A Lambda instance resolves one request at a time, so the layer Lambda
ships uses the plain resolver; locally, requests in other threads would read each other's events. The
local runtime adapts each function's resolver as it loads the function (local/lambda_runtime.py): the
layer keeps no hook for it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext


class PerThreadResolver(APIGatewayHttpResolver):
    """A resolver that keeps the current event and context per thread; otherwise the same."""

    _per_thread = threading.local()

    @property  # type: ignore[override]
    def current_event(self) -> APIGatewayProxyEventV2:
        event: APIGatewayProxyEventV2 = self._per_thread.event
        return event

    @current_event.setter
    def current_event(self, value: APIGatewayProxyEventV2) -> None:
        self._per_thread.event = value

    @property
    def lambda_context(self) -> LambdaContext:
        context: LambdaContext = self._per_thread.context
        return context

    @lambda_context.setter
    def lambda_context(self, value: LambdaContext) -> None:
        self._per_thread.context = value

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        proxy_event = self._to_proxy_event(dict(event))
        if not isinstance(proxy_event, APIGatewayProxyEventV2):
            raise TypeError(f"expected an HTTP API event, got {type(proxy_event).__name__}")
        self.current_event = proxy_event
        self.lambda_context = context
        return super().resolve(event, context)


def resolve_per_thread(app: APIGatewayHttpResolver) -> None:
    """Make a loaded function's resolver keep its requests per thread. Only the class changes (the subclass
    adds no state), so the routes, middlewares and error handlers `build_resolver` gave it stay."""
    if type(app) is APIGatewayHttpResolver:
        app.__class__ = PerThreadResolver
