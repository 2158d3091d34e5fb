"""SPEC section 5 under concurrency: threads registering (with repeats) and adding events while releases happen.

Runs through the local server, so each request goes through a real handler instance, as concurrent
Lambda instances would, on the embedded DynamoDB.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from typing import Any

import requests

from tests.conftest import new_session_body
from tests.test_concurrency_processes import page_batch

DURATION_S = 6.0
MAX_DURATION_S = 60.0
MIN_RELEASES = 3
REGISTERING_THREADS = 6
RELEASE_EVERY_S = 0.15


def test_registrations_racing_releases_keep_every_invariant(local_api: str) -> None:
    started = time.monotonic()
    acknowledged: dict[str, tuple[str, int]] = {}
    conflicts: list[str] = []
    releases: dict[str, dict[str, Any]] = {}
    snapshots: dict[str, list[tuple[int, str]]] = {}
    events_sent: dict[str, set[str]] = defaultdict(set)
    events_accepted: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    failures: list[str] = []

    def running() -> bool:
        # At least DURATION_S, and on until a few releases happened (a loaded machine is slower).
        elapsed = time.monotonic() - started
        return elapsed < DURATION_S or (len(releases) < MIN_RELEASES and elapsed < MAX_DURATION_S)

    def register_loop(worker: int) -> None:
        rng = random.Random(worker)
        with requests.Session() as http:
            n = 0
            while running():
                n += 1
                # Every fourth request repeats an id some thread already used: a client retry.
                with lock:
                    known = list(acknowledged)
                session_id = rng.choice(known) if known and n % 4 == 0 else f"w{worker}-s{n}"
                response = http.post(f"{local_api}/session", json=new_session_body(session_id), timeout=30)
                if response.status_code != 200:
                    failures.append(f"register {session_id}: {response.status_code} {response.text}")
                    continue
                body = response.json()
                place = (body["batch_id"], body["session_number"])
                with lock:
                    if acknowledged.setdefault(session_id, place) != place:
                        conflicts.append(session_id)
                event_ids = [f"e{rng.randrange(3)}", f"e{rng.randrange(3)}"]
                response = http.post(
                    f"{local_api}/session/events",
                    json={"session_id": session_id, "events": [{"event_id": e, "object_id": "o"} for e in event_ids]},
                    timeout=30,
                )
                if response.status_code != 200:
                    failures.append(f"events {session_id}: {response.status_code} {response.text}")
                    continue
                with lock:
                    events_sent[session_id].update(event_ids)
                    events_accepted[session_id] += response.json()["accepted"]

    def release_loop() -> None:
        with requests.Session() as http:
            n = 0
            while running():
                time.sleep(RELEASE_EVERY_S)
                n += 1
                release_id = f"release-{n}"
                response = http.post(f"{local_api}/batch/release", json={"release_id": release_id}, timeout=60)
                if response.status_code == 404:
                    continue
                if response.status_code != 200:
                    failures.append(f"release {release_id}: {response.status_code} {response.text}")
                    continue
                release = response.json()
                releases[release_id] = release
                snapshots[release["batch_id"]] = page_batch(http, local_api, release["batch_id"])

    threads = [threading.Thread(target=register_loop, args=(w,)) for w in range(REGISTERING_THREADS)]
    threads.append(threading.Thread(target=release_loop))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=MAX_DURATION_S + 120)

    assert failures == [], "\n".join(failures)
    assert conflicts == [], "a session_id was acknowledged in two places"
    assert len(releases) >= MIN_RELEASES, "the scenario must include several releases"

    with requests.Session() as http:
        # Release everything still collecting so every batch can be checked the same way.
        final = http.post(f"{local_api}/batch/release", json={"release_id": "release-final"}, timeout=60)
        assert final.status_code in (200, 404)
        if final.status_code == 200:
            releases["release-final"] = final.json()
        seen_slots: set[tuple[str, int]] = set()
        seen_ids: dict[str, tuple[str, int]] = {}
        for release_id, release in releases.items():
            batch_id = release["batch_id"]
            sessions = page_batch(http, local_api, batch_id)
            # Released batches never change after the acknowledgement.
            if batch_id in snapshots:
                assert sessions == snapshots[batch_id], f"batch {batch_id} changed after release"
            assert release["session_count"] == len(sessions)
            numbers = [number for number, _ in sessions]
            assert numbers == sorted(set(numbers))
            for number, session_id in sessions:
                assert (batch_id, number) not in seen_slots
                assert session_id not in seen_ids, f"{session_id} appears twice"
                seen_slots.add((batch_id, number))
                seen_ids[session_id] = (batch_id, number)
            # Repeating a release returns the same body.
            repeat = http.post(f"{local_api}/batch/release", json={"release_id": release_id}, timeout=60)
            assert repeat.json() == release

        # Every acknowledged session is exactly where it was acknowledged.
        for session_id, place in acknowledged.items():
            assert seen_ids.get(session_id) == place, f"{session_id} acknowledged at {place}"
        # Each event is stored once: accepted counts add up to the distinct event ids sent.
        for session_id, sent in events_sent.items():
            stored = http.get(f"{local_api}/session", params={"session_id": session_id}, timeout=30).json()
            assert sorted(e["event_id"] for e in stored["events"]) == sorted(sent)
            assert events_accepted[session_id] == len(sent)

    print(
        f"\nconcurrency: {len(acknowledged)} sessions, {len(releases)} releases, "
        f"{sum(len(s) for s in events_sent.values())} distinct events"
    )
