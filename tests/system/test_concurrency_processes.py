"""Contract 5 under real concurrency: several local servers, as separate OS processes, on one DynamoDB.

Each backend gets three `python -m local.server` processes started at the same moment (so they race
to create the tables), eight client threads registering sessions (some session_ids sent again, to
other servers, while the first call may still run) and adding events (some event_ids sent again),
and two release threads releasing every few hundred milliseconds with fresh release_ids, the same
fresh id sent to two servers at once, and repeats of old ids. Then every invariant of contract 5 is
checked against what the clients were told.

Backends: dynalite (npm, no transactions: the service must not need them) and the embedded moto.
Each runs for a batch of one shard and of eight. Durations: CONCURRENCY_SECONDS (dynalite, default 15) and
CONCURRENCY_MOTO_SECONDS (default 8), per shard count.
"""

from __future__ import annotations

import functools
import os
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from local.dynamodb import EmbeddedAws, dynamodb_client, local_table_names
from tests.support.processes import (
    LOCAL_SERVER_COMMAND,
    answers_http,
    child_process,
    dynalite_server,
    free_port,
    local_server_environment,
    wait_until,
)

pytestmark = pytest.mark.slow

SOAK_SECONDS = float(os.environ.get("CONCURRENCY_SECONDS", "15"))
MOTO_SOAK_SECONDS = float(os.environ.get("CONCURRENCY_MOTO_SECONDS", "8"))
SERVERS = 3
CLIENT_THREADS = 8
RELEASE_THREADS = 2
STARTUP_TIMEOUT_S = 60
REQUEST_TIMEOUT_S = 30

Slot = tuple[str, int]


# --- processes --------------------------------------------------------------------------------------


@contextmanager
def local_servers(endpoint: str, logs: Path, shards: int) -> Iterator[list[str]]:
    """SERVERS `python -m local.server` processes on `endpoint`, all started before any is waited for; the
    batches they open have `shards` shards."""
    with ExitStack() as stack:
        started = []
        for index in range(SERVERS):
            port = free_port()
            env = {
                **local_server_environment(port, endpoint),
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": "us-east-1",
                "BATCH_SHARDS": str(shards),
            }
            log_path = logs / f"server-{index}.log"
            process = stack.enter_context(child_process(LOCAL_SERVER_COMMAND, log_path, env))
            started.append((f"http://127.0.0.1:{port}", process, log_path))
        for url, process, log_path in started:
            wait_until(
                functools.partial(answers_http, url), process, log_path, f"local server {url}", STARTUP_TIMEOUT_S
            )
        yield [url for url, _, _ in started]


def check_tables(endpoint: str) -> None:
    """The servers, starting together, created each table of template.yaml exactly once, all ACTIVE."""
    client = dynamodb_client(endpoint)
    expected = sorted(local_table_names().values())
    assert sorted(client.list_tables()["TableNames"]) == expected
    for name in expected:
        assert client.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"


@pytest.fixture
def dynalite(tmp_path: Path) -> Iterator[str]:
    """An in-memory dynalite (no transactions) on a free port; yields its endpoint."""
    with dynalite_server(tmp_path / "dynalite.log", STARTUP_TIMEOUT_S) as endpoint:
        yield endpoint


# --- the workload -----------------------------------------------------------------------------------


@dataclass
class Ledger:
    """What the clients were told, and what went wrong on the way. Guarded by `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    attempted: set[str] = field(default_factory=set)
    acknowledged: dict[str, Slot] = field(default_factory=dict)
    registration_calls: int = 0
    repeated_registrations: int = 0
    events_sent: dict[str, set[str]] = field(default_factory=dict)
    events_accepted: Counter[str] = field(default_factory=Counter)
    event_calls: int = 0
    events_reported_duplicate: int = 0
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)
    release_calls: Counter[str] = field(default_factory=Counter)
    paged_at_release: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


def _post(http: requests.Session, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    response = http.post(url, json=body, timeout=REQUEST_TIMEOUT_S)
    return response.status_code, response.json()


def page_batch(http: requests.Session, base_url: str, batch_id: str, limit: int = 1000) -> list[tuple[int, str]]:
    """(session_number, session_id) of every session of a batch, by paging to the end."""
    found: list[tuple[int, str]] = []
    after = 0
    while True:
        query: dict[str, str | int] = {"batch_id": batch_id, "after_number": after, "limit": limit, "events_limit": 0}
        response = http.get(
            f"{base_url}/batch/sessions",
            params=query,
            timeout=REQUEST_TIMEOUT_S,
        )
        assert response.status_code == 200, response.text
        page = response.json()
        found.extend((session["session_number"], session["session_id"]) for session in page["sessions"])
        if not page["has_more"]:
            return found
        after = page["last_number"]


def client_loop(ledger: Ledger, urls: list[str], recent: deque[str], deadline: float, seed: int) -> None:
    rng = random.Random(seed)
    with requests.Session() as http:
        while time.monotonic() < deadline:
            with ledger.lock:
                repeat = bool(recent) and rng.random() < 0.25
                session_id = rng.choice(list(recent)) if repeat else f"sess-{uuid.uuid4().hex[:12]}"
                recent.append(session_id)  # other threads may send it again while this call runs
                ledger.attempted.add(session_id)
            body = {
                "session_id": session_id,
                "search_query": f"query {rng.randrange(100)}",
                "search_results": [{"object_id": f"obj-{rng.randrange(50)}", "rank": 1.0}],
                "user_id": f"user-{rng.randrange(10)}",
            }
            status, answer = _post(http, f"{rng.choice(urls)}/session", body)
            with ledger.lock:
                ledger.statuses[f"POST /session {status}"] += 1
                ledger.registration_calls += 1
                ledger.repeated_registrations += repeat
            if status != 200:
                ledger.problem(f"POST /session {session_id}: {status} {answer}")
                continue
            slot = (answer["batch_id"], answer["session_number"])
            with ledger.lock:
                first = ledger.acknowledged.setdefault(session_id, slot)
            if first != slot:
                ledger.problem(f"{session_id} acknowledged at {first} and at {slot}")
            for _ in range(rng.choice((0, 1, 1, 2))):
                add_events(ledger, http, urls, session_id, rng)


def add_events(ledger: Ledger, http: requests.Session, urls: list[str], session_id: str, rng: random.Random) -> None:
    # Event ids from a small space: repeats within a call, across calls and across threads.
    event_ids = [f"evt-{rng.randrange(6)}" for _ in range(rng.randint(1, 4))]
    events = [{"event_id": event_id, "object_id": f"obj-{event_id}"} for event_id in event_ids]
    body = {"session_id": session_id, "events": events}
    for attempt in range(2 if rng.random() < 0.3 else 1):  # sometimes sent twice, to another server
        status, answer = _post(http, f"{rng.choice(urls)}/session/events", body)
        with ledger.lock:
            ledger.statuses[f"POST /session/events {status}"] += 1
            ledger.event_calls += 1
            if status == 200:
                ledger.events_sent.setdefault(session_id, set()).update(event_ids)
                ledger.events_accepted[session_id] += answer["accepted"]
                ledger.events_reported_duplicate += answer["duplicates"]
        if status != 200:
            ledger.problem(f"POST /session/events {session_id} (attempt {attempt}): {status} {answer}")
        elif answer["accepted"] + answer["duplicates"] != len(events):
            ledger.problem(f"events of {session_id}: {answer} for {len(events)} events")


def release(
    ledger: Ledger, http: requests.Session, urls: list[str], target: int, *, release_id: str, kind: str
) -> None:
    """POST /batch/release to urls[target]; checks the body against earlier answers for the same id,
    and on a 200 pages the batch right away, on another server."""
    status, answer = _post(http, f"{urls[target]}/batch/release", {"release_id": release_id})
    with ledger.lock:
        ledger.statuses[f"POST /batch/release {status}"] += 1
        ledger.release_calls[kind] += 1
        if status == 200:
            earlier = ledger.releases.setdefault(release_id, answer)
            if earlier != answer:
                ledger.problems.append(f"release {release_id} answered {earlier} and then {answer}")
    if status == 200:
        record_page_after_release(ledger, http, urls[(target + 1) % len(urls)], answer)
    elif status != 404 or kind == "repeat":
        ledger.problem(f"POST /batch/release {release_id} ({kind}): {status} {answer}")


def record_page_after_release(ledger: Ledger, http: requests.Session, base_url: str, answer: dict[str, Any]) -> None:
    """Page the batch once its release was acknowledged; it must never change afterwards."""
    sessions = page_batch(http, base_url, answer["batch_id"])
    with ledger.lock:
        earlier = ledger.paged_at_release.setdefault(answer["batch_id"], sessions)
    if earlier != sessions:
        ledger.problem(f"batch {answer['batch_id']} paged differently after its release")


def release_loop(ledger: Ledger, urls: list[str], deadline: float, seed: int) -> None:
    rng = random.Random(seed)
    with requests.Session() as http, requests.Session() as twin_http:
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.2, 0.5))
            with ledger.lock:
                known = list(ledger.releases)
            if known and rng.random() < 0.25:
                release(ledger, http, urls, rng.randrange(len(urls)), release_id=rng.choice(known), kind="repeat")
                continue
            release_id = f"release-{uuid.uuid4().hex[:12]}"
            first, second = rng.sample(range(len(urls)), 2)
            if rng.random() < 0.3:
                # The same fresh id to two servers at once (a client retrying on a new connection).
                twin = threading.Thread(
                    target=guarded(
                        ledger,
                        functools.partial(release, release_id=release_id, kind="twin"),
                        ledger,
                        twin_http,
                        urls,
                        second,
                    )
                )
                twin.start()
                release(ledger, http, urls, first, release_id=release_id, kind="fresh")
                twin.join(timeout=2 * REQUEST_TIMEOUT_S)
            else:
                release(ledger, http, urls, first, release_id=release_id, kind="fresh")


def guarded(ledger: Ledger, work: Callable[..., None], *args: Any) -> Callable[[], None]:
    def run() -> None:
        try:
            work(*args)
        except Exception as error:  # a failed request must fail the test, not vanish with its thread
            ledger.problem(f"{getattr(work, '__name__', work)} failed: {error!r}")

    return run


def run_workload(urls: list[str], seconds: float) -> Ledger:
    ledger = Ledger()
    recent: deque[str] = deque(maxlen=64)
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=guarded(ledger, client_loop, ledger, urls, recent, deadline, seed), daemon=True)
        for seed in range(CLIENT_THREADS)
    ] + [
        threading.Thread(target=guarded(ledger, release_loop, ledger, urls, deadline, 1000 + seed), daemon=True)
        for seed in range(RELEASE_THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + 2 * REQUEST_TIMEOUT_S)
        assert not thread.is_alive(), "a client thread did not finish"
    # Release what is still collecting, so every acknowledged session is in a released batch.
    with requests.Session() as http:
        release(ledger, http, urls, 0, release_id=f"release-final-{uuid.uuid4().hex[:8]}", kind="final")
    return ledger


# --- the checks -------------------------------------------------------------------------------------


def check_invariants(ledger: Ledger, urls: list[str], backend: str, seconds: float) -> None:
    assert not ledger.problems, "\n".join(ledger.problems[:20])
    assert not [status for status in ledger.statuses if status.endswith((" 500", " 502", " 503"))], ledger.statuses

    # Contract 5.4: a release_id names one batch; a batch is released once.
    release_of_batch: dict[str, str] = {}
    for release_id, answer in ledger.releases.items():
        assert answer["release_id"] == release_id
        earlier = release_of_batch.setdefault(answer["batch_id"], release_id)
        assert earlier == release_id, f"batch {answer['batch_id']} released as {earlier} and as {release_id}"

    # Every batch paged at the end, on a server other than the one that paged it at release time.
    with requests.Session() as http:
        final = {batch_id: page_batch(http, urls[-1], batch_id) for batch_id in release_of_batch}
    where: dict[str, Slot] = {}
    for batch_id, sessions in final.items():
        answer = ledger.releases[release_of_batch[batch_id]]
        # Contract 5.3: nothing joined or left a batch after its release was acknowledged.
        assert sessions == ledger.paged_at_release[batch_id], f"batch {batch_id} changed after its release"
        assert len(sessions) == answer["session_count"], f"{answer}: paging found {len(sessions)}"
        numbers = [number for number, _ in sessions]
        # Contract 5.2: no two sessions share a (batch, number); no session_id registered twice.
        assert numbers == sorted(set(numbers)), f"batch {batch_id}: numbers repeat: {numbers}"
        for number, session_id in sessions:
            assert session_id not in where, f"{session_id} at {where[session_id]} and at {(batch_id, number)}"
            where[session_id] = (batch_id, number)

    # Contract 5.1: every acknowledged session is exactly where it was acknowledged; nothing else exists.
    for session_id, slot in ledger.acknowledged.items():
        assert where.get(session_id) == slot, f"{session_id} acknowledged at {slot}, found at {where.get(session_id)}"
    assert set(where) == set(ledger.acknowledged) == ledger.attempted

    # GET /session agrees, and contract 5.5: each (session_id, event_id) stored once, accepted once.
    def read_back(session_id: str) -> tuple[str, Slot, list[str]]:
        query: dict[str, str | int] = {"session_id": session_id, "events_limit": 1000}
        response = requests.get(
            f"{random.choice(urls)}/session",
            params=query,
            timeout=REQUEST_TIMEOUT_S,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return session_id, (body["batch_id"], body["session_number"]), [e["event_id"] for e in body["events"]]

    with ThreadPoolExecutor(16) as pool:
        read = list(pool.map(read_back, ledger.acknowledged))
    stored_events = 0
    for session_id, slot, event_ids in read:
        assert slot == ledger.acknowledged[session_id], f"GET /session {session_id}: {slot}"
        sent = ledger.events_sent.get(session_id, set())
        assert len(event_ids) == len(set(event_ids)), f"{session_id}: an event stored twice: {event_ids}"
        assert set(event_ids) == sent, f"{session_id}: stored {sorted(event_ids)}, sent {sorted(sent)}"
        assert ledger.events_accepted[session_id] == len(sent), f"{session_id}: accepted counts do not add up"
        stored_events += len(event_ids)

    released = [answer for answer in ledger.releases.values() if answer["session_count"] > 0]
    print(
        f"\n[{backend}] {SERVERS} server processes, {CLIENT_THREADS} client threads, {seconds:.0f} s:"
        f"\n  sessions: {len(ledger.acknowledged)} acknowledged from {ledger.registration_calls} POST /session"
        f" ({ledger.repeated_registrations} repeating a session_id), all found once, where acknowledged"
        f"\n  releases: {len(ledger.releases)} release_ids, {len(release_of_batch)} batches released"
        f" ({len(released)} non-empty, largest {max((a['session_count'] for a in released), default=0)});"
        f" calls {dict(ledger.release_calls)}"
        f"\n  events: {stored_events} stored once each from {ledger.event_calls} POST /session/events"
        f" ({ledger.events_reported_duplicate} reported duplicates)"
        f"\n  statuses: {dict(sorted(ledger.statuses.items()))}"
    )


# --- the tests --------------------------------------------------------------------------------------


SHARD_COUNTS = pytest.mark.parametrize("shards", [1, 8], ids=["1-shard", "8-shards"])


@SHARD_COUNTS
def test_servers_in_separate_processes_on_dynalite_keep_every_data_invariant(
    dynalite: str, tmp_path: Path, shards: int
) -> None:
    with local_servers(dynalite, tmp_path, shards) as urls:
        check_tables(dynalite)
        ledger = run_workload(urls, SOAK_SECONDS)
        check_invariants(ledger, urls, f"dynalite, {shards} shard(s)", SOAK_SECONDS)


@SHARD_COUNTS
def test_servers_in_separate_processes_on_embedded_moto_keep_every_data_invariant(
    dynamodb: EmbeddedAws, tmp_path: Path, shards: int
) -> None:
    dynamodb.reset()  # no tables: the servers, starting together, create them
    try:
        with local_servers(dynamodb.endpoint, tmp_path, shards) as urls:
            check_tables(dynamodb.endpoint)
            ledger = run_workload(urls, MOTO_SOAK_SECONDS)
            check_invariants(ledger, urls, f"moto, {shards} shard(s)", MOTO_SOAK_SECONDS)
    finally:
        dynamodb.reset()
