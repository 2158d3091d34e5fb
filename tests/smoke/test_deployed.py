"""Opt-in smoke test of a deployed stack (`make smoke STACK=<name>`): the client, SigV4-signed with the
usual credentials, through every route. Skipped unless SMOKE_STACK is set.

It writes a session with the id `smoke-<run>-1` into the collecting batch (there is no route to delete
it: marking it irrelevant is the cleanup it can do) and schedules it, so the stack's improvement worker
receives one task for it; the test completes that task as failed ("smoke test") at once, so a worker that
reports with `requested_at` gets a 409. With SMOKE_RELEASE=1 it also releases the collecting batch, which
a shared stack should not have done by a test; without it, the release route is called with the release
id of the newest released batch, which answers that release and changes nothing. It asks for the erasure
of a user no session names (`smoke-<run>-nobody`): that erasure finds nothing, and its record (with only a
hash of that id once done) stays like every erasure's. SMOKE_URL instead of
SMOKE_STACK aims it at a URL (the test suite runs it so against the local server).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from itertools import islice

import pytest
from clickstream_client import Client, NotFound
from clickstream_client.cli import stack_api_url

STACK = os.environ.get("SMOKE_STACK", "")
URL = os.environ.get("SMOKE_URL", "")
REGION = os.environ.get("SMOKE_REGION") or None
pytestmark = pytest.mark.skipif(not (STACK or URL), reason="opt-in: make smoke STACK=<deployed stack name>")


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    url = URL or stack_api_url(STACK, region=REGION, profile=os.environ.get("AWS_PROFILE"))
    with Client(url, iam=True, region=REGION) as deployed:
        yield deployed


def test_every_route_answers_signed_calls(client: Client) -> None:
    run = uuid.uuid4().hex[:8]
    session_id = f"smoke-{run}-1"
    now = int(time.time() * 1000)
    search = {
        "session_id": session_id,
        "search_query": "smoke test",
        "search_results": [{"object_id": "smoke-object", "rank": 1.0}],
        "created_at": now,
    }
    registered = client.register_session(**search)
    assert registered["session_id"] == session_id
    assert client.register_session(**search) == registered  # idempotent
    added = client.add_events(session_id, [{"event_id": "smoke-click", "object_id": "smoke-object"}])
    assert added["accepted"] + added["duplicates"] == 1
    assert client.get_session(session_id)["batch_id"] == registered["batch_id"]
    assert client.mark_irrelevant(session_id)["is_irrelevant"] is True  # keeps it out of training positives
    task = client.use_for_improvement(session_id)["task"]
    assert task["status"] == "pending"
    completed = client.complete_task(session_id, "failed", "smoke test", requested_at=task["requested_at"])
    assert completed["status"] == "failed"
    failed = list(islice(client.iter_tasks(status="failed", page_size=5), 5))  # the index is eventually consistent
    assert all(listed["status"] == "failed" for listed in failed)
    batch = client.get_batch(registered["batch_id"])
    assert batch["status"] in ("collecting", "released")
    assert next(iter(client.list_batches(page_size=1)))["batch_id"]
    first_sessions = list(islice(client.iter_sessions(registered["batch_id"], page_size=10, events_limit=1), 10))
    assert all(session["session_number"] >= 1 for session in first_sessions)
    with pytest.raises(NotFound):
        client.get_session(f"smoke-{run}-nobody")
    # An erasure of a user no session names: it finds nothing, and its record ends done.
    erasure = client.erase_user(f"smoke-{run}-nobody")
    assert erasure["status"] == "pending"
    assert client.erase_user(f"smoke-{run}-nobody")["erasure_id"] == erasure["erasure_id"]  # while under way
    assert client.get_erasure(erasure["erasure_id"])["status"] in ("pending", "running", "done")
    with pytest.raises(NotFound):
        client.get_erasure("e-0000000000000-000000000000")
    if os.environ.get("SMOKE_RELEASE") == "1":
        released = client.release(f"smoke-{run}")
        assert released["batch_id"] == registered["batch_id"]
        assert client.release(f"smoke-{run}") == released  # idempotent
    else:
        newest = next((batch for batch in client.list_batches() if batch["status"] == "released"), None)
        if newest is not None:  # the same release_id again: that release, nothing released
            again = client.release(newest["release_id"])
            assert (again["batch_id"], again["session_count"]) == (newest["batch_id"], newest["session_count"])
