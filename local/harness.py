"""The template's functions called in-process, as Lambda calls them: one harness for the local server,
`make invoke`, the tests and the benchmarks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from local.apigateway import HttpResult, http_result, route_event
from local.lambda_runtime import FunctionInstances
from local.template import function_code, http_routes, load_template, resources_of_type


class LocalFunctions:
    """Every function of template.yaml; each a pool of instances serving one request at a time."""

    def __init__(self, instances_per_function: int = 32) -> None:
        template = load_template()
        self._functions: dict[str, FunctionInstances] = {}
        for function_id in resources_of_type(template, "AWS::Serverless::Function"):
            code_uri, handler = function_code(template, function_id)
            self._functions[function_id] = FunctionInstances(function_id, code_uri, handler, instances_per_function)
        self.routes = {f"{route.method} {route.path}": route.function_id for route in http_routes(template)}

    @property
    def function_ids(self) -> set[str]:
        return set(self._functions)

    def function(self, function_id: str) -> FunctionInstances:
        return self._functions[function_id]

    def invoke(self, function_id: str, event: Any) -> Any:
        """The function's result for `event`; an exception the function raises propagates."""
        return self._functions[function_id].invoke(event)

    def invoke_http(self, function_id: str, event: Mapping[str, Any]) -> HttpResult:
        return http_result(self.invoke(function_id, dict(event)))

    def call(self, route: str, *, body: Any = None, query: Mapping[str, str] | None = None) -> HttpResult:
        """A JSON call to `route` ("POST /session"), served by the function template.yaml routes it to."""
        return self.invoke_http(self.routes[route], route_event(route, body=body, query=query))
