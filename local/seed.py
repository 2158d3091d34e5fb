"""A small demo clickstream for `make run`, loaded through the real handlers."""

from __future__ import annotations

import time
from typing import Any

from local.harness import LocalFunctions

DEMO_SEARCHES = [
    ("demo-session-1", "red running shoes", ["shoe-17", "shoe-3", "shoe-88"], ["shoe-3"]),
    ("demo-session-2", "waterproof hiking jacket", ["jacket-5", "jacket-12"], ["jacket-12", "jacket-5"]),
    ("demo-session-3", "usb-c charger 65w", ["charger-1", "charger-9", "charger-4"], []),
    ("demo-session-4", "cast iron skillet", ["pan-2", "pan-7"], ["pan-7"]),
]


def sample_session_body(session_id: str, **overrides: Any) -> dict[str, Any]:
    """A typical `POST /session` body (tests and benchmarks build on it)."""
    body: dict[str, Any] = {
        "session_id": session_id,
        "search_query": "red running shoes",
        "search_results": [{"object_id": "shoe-17", "rank": 1.0, "meta": {"brand": "acme"}}, {"object_id": "shoe-3"}],
        "search_meta": {"latency_ms": 38},
        "user_id": "user-42",
    }
    body.update(overrides)
    return body


def seed_demo(functions: LocalFunctions) -> str:
    """Register the demo sessions (idempotent: fixed ids) and return the batch they are in."""
    now = int(time.time() * 1000)
    batch_id = ""
    for offset, (session_id, query, results, clicks) in enumerate(DEMO_SEARCHES):
        registered = functions.call(
            "POST /session",
            body={
                "session_id": session_id,
                "search_query": query,
                "search_results": [
                    {"object_id": object_id, "rank": float(rank), "meta": {"source": "demo"}}
                    for rank, object_id in enumerate(results, start=1)
                ],
                "search_meta": {"latency_ms": 42 + offset},
                "sort_by": {"field": "relevance", "order": "desc"},
                "user_id": f"demo-user-{offset % 2}",
                "created_at": now - 60_000 + offset,
            },
        )
        if registered.status != 200:
            raise RuntimeError(f"seeding {session_id} failed: {registered.status} {registered.body}")
        batch_id = batch_id or registered.body["batch_id"]
        if clicks:
            functions.call(
                "POST /session/events",
                body={
                    "session_id": session_id,
                    "events": [
                        {"event_id": f"{session_id}-click-{n}", "object_id": object_id, "created_at": now - 50_000 + n}
                        for n, object_id in enumerate(clicks)
                    ],
                },
            )
    functions.call("POST /session/irrelevant", body={"session_id": "demo-session-3"})
    functions.call(
        "POST /session",
        body={
            "session_id": "demo-payload-search",
            "search_query": {"category": "shoes", "color": "red"},
            "search_results": [{"object_id": "shoe-17"}],
            "is_payload_search": True,
        },
    )
    return batch_id


def print_walkthrough(base_url: str, batch_id: str) -> None:
    def post(path: str, body: str) -> str:
        return f"  curl -s -X POST {base_url}{path} -H 'Content-Type: application/json' -d '{body}'"

    lines = [
        f"Demo clickstream loaded into batch {batch_id}. Try:",
        f"  curl -s '{base_url}/batch/sessions?batch_id={batch_id}&limit=2'",
        f"  curl -s '{base_url}/session?session_id=demo-session-1'",
        post("/session/use-for-improvement", '{"session_id": "demo-session-1"}'),
        post("/session/use-for-improvement", '{"session_id": "demo-payload-search"}'),
        post("/batch/release", '{"release_id": "release-demo-1"}'),
        f"  curl -s {base_url}/openapi.json",
    ]
    print("\n".join(lines), flush=True)
