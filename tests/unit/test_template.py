"""The repository's sample events match the template's routes."""

from __future__ import annotations

import json

from local.template import ROOT, http_routes, load_template


def test_every_route_has_a_sample_event() -> None:
    """events/ holds an event for each route, for `make invoke` and `sam local invoke`."""
    sampled = {
        json.loads(path.read_text(encoding="utf-8")).get("routeKey") for path in (ROOT / "events").glob("*.json")
    }
    routes = {f"{route.method} {route.path}" for route in http_routes(load_template())}
    assert routes - sampled == set()
