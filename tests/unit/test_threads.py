"""The local runtime makes each loaded function's resolver keep its request per thread (local/threads.py):
the local server resolves many requests at once in one process, where Powertools' shared class attribute
would let them read each other's events. The layer itself keeps the plain resolver, with no hook for it."""

from __future__ import annotations

import threading

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from clickstream.api import build_resolver
from local.lambda_runtime import load_function_module
from local.template import function_code, load_template
from local.threads import PerThreadResolver
from tests.support import load_event


def test_the_layer_builds_the_plain_resolver() -> None:
    assert type(build_resolver()) is APIGatewayHttpResolver


def test_a_loaded_function_resolves_per_thread_with_its_routes_kept() -> None:
    code_uri, handler = function_code(load_template(), "CollectionFunction")
    app = load_function_module(code_uri, handler).app
    assert isinstance(app, PerThreadResolver)
    assert any(route.path == "/session" for route in app._static_routes + app._dynamic_routes)

    events = {name: APIGatewayProxyEventV2(load_event(name)) for name in ("register_session", "get_session")}
    app.current_event = events["register_session"]
    seen: list[APIGatewayProxyEventV2] = []

    def other_request() -> None:
        app.current_event = events["get_session"]
        seen.append(app.current_event)

    thread = threading.Thread(target=other_request)
    thread.start()
    thread.join()
    assert seen == [events["get_session"]]
    assert app.current_event is events["register_session"]  # not overwritten by the other thread's request
