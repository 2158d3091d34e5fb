"""Helpers the test tiers share: ids, sample bodies, sample events and the test environment."""

from __future__ import annotations

import copy
import json
import time
import urllib.parse
import uuid
from typing import Any

from local.seed import sample_session_body
from local.template import ROOT

EVENTS_DIR = ROOT / "events"

# Short waits keep the suite fast; the protocols do not depend on their length.
TEST_ENVIRONMENT = {
    "RELEASE_SETTLE_GRACE_MS": "50",
    "REGISTRATION_LEASE_MS": "300",
    "SEALED_BATCH_WAIT_MS": "200",
    "DYNAMODB_MAX_ATTEMPTS": "2",
    # Late writes: no cached batch state, so the export may read right after its fence; the interleaving
    # tests (tests/integration/test_late_writes.py) set the deployed values on a fake clock.
    "BATCH_STATE_CACHE_MS": "0",
    "WRITE_SETTLE_MS": "0",
}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def new_session_body(session_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    return sample_session_body(session_id or unique("sess"), **overrides)


def load_event(name: str) -> dict[str, Any]:
    """A sample event of events/ (the ones `sam local invoke` uses)."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return event


def sample_event(name: str, *, body: Any = None, query: dict[str, str] | None = None) -> dict[str, Any]:
    """A copy of a sample event with this JSON body and query string (URL-encoded, as API Gateway sends it)."""
    event = copy.deepcopy(load_event(name))
    if body is not None:
        event["body"] = json.dumps(body)
    if query is not None:
        event["queryStringParameters"] = query
        event["rawQueryString"] = urllib.parse.urlencode(query)
    return event
