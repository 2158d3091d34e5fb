"""Contract 5 under concurrency: threads registering (with repeats) and adding events while releases happen.

Runs through the local server, so each request goes through a real handler instance, as concurrent
Lambda instances would, on the embedded DynamoDB.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from clickstream.settings import Settings
from clickstream.storage import Storage
from tests.support import new_session_body
from tests.system.test_concurrency_processes import page_batch

DURATION_S = 6.0
MAX_DURATION_S = 60.0
MIN_RELEASES = 3
REGISTERING_THREADS = 6
RELEASE_EVERY_S = 0.15


@dataclass
class Soak:
    """What the racing clients were told, gathered under one lock."""

    url: str
    started: float = field(default_factory=time.monotonic)
    acknowledged: dict[str, tuple[str, int]] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)
    snapshots: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    events_sent: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    events_accepted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failures: list[str] = field(default_factory=list)
    collecting_passes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def running(self) -> bool:
        # At least DURATION_S, and on until a few releases happened (a loaded machine is slower).
        elapsed = time.monotonic() - self.started
        return elapsed < DURATION_S or (len(self.releases) < MIN_RELEASES and elapsed < MAX_DURATION_S)

    def register_loop(self, worker: int) -> None:
        rng = random.Random(worker)
        with requests.Session() as http:
            n = 0
            while self.running():
                n += 1
                # Every fourth request repeats an id some thread already used: a client retry.
                with self.lock:
                    known = list(self.acknowledged)
                session_id = rng.choice(known) if known and n % 4 == 0 else f"w{worker}-s{n}"
                if self.register(http, session_id):
                    self.add_events(http, session_id, [f"e{rng.randrange(3)}", f"e{rng.randrange(3)}"])

    def register(self, http: requests.Session, session_id: str) -> bool:
        response = http.post(f"{self.url}/session", json=new_session_body(session_id), timeout=30)
        if response.status_code != 200:
            self.failures.append(f"register {session_id}: {response.status_code} {response.text}")
            return False
        body = response.json()
        place = (body["batch_id"], body["session_number"])
        with self.lock:
            if self.acknowledged.setdefault(session_id, place) != place:
                self.conflicts.append(session_id)
        return True

    def add_events(self, http: requests.Session, session_id: str, event_ids: list[str]) -> None:
        events = [{"event_id": event_id, "object_id": "o"} for event_id in event_ids]
        response = http.post(
            f"{self.url}/session/events", json={"session_id": session_id, "events": events}, timeout=30
        )
        if response.status_code != 200:
            self.failures.append(f"events {session_id}: {response.status_code} {response.text}")
            return
        with self.lock:
            self.events_sent[session_id].update(event_ids)
            self.events_accepted[session_id] += response.json()["accepted"]

    def release_loop(self) -> None:
        with requests.Session() as http:
            n = 0
            while self.running():
                time.sleep(RELEASE_EVERY_S)
                n += 1
                release_id = f"release-{n}"
                response = http.post(f"{self.url}/batch/release", json={"release_id": release_id}, timeout=60)
                if response.status_code == 404:
                    continue
                if response.status_code != 200:
                    self.failures.append(f"release {release_id}: {response.status_code} {response.text}")
                    continue
                release = response.json()
                self.releases[release_id] = release
                self.snapshots[release["batch_id"]] = page_batch(http, self.url, release["batch_id"])

    def page_loop(self) -> None:
        """Page the collecting batch while registrations land in it: ascending numbers, nobody twice."""
        with requests.Session() as http:
            while self.running():
                with self.lock:
                    latest = list(self.acknowledged.values())[-1:]
                if not latest:
                    time.sleep(0.05)
                    continue
                sessions = page_batch(http, self.url, latest[0][0], limit=7)
                numbers = [number for number, _ in sessions]
                ids = [session_id for _, session_id in sessions]
                if numbers != sorted(set(numbers)) or len(ids) != len(set(ids)):
                    self.failures.append(f"paging {latest[0][0]} while collecting: {sessions}")
                with self.lock:
                    self.collecting_passes += 1

    def check_batches(self, http: requests.Session) -> dict[str, tuple[str, int]]:
        """Every released batch as acknowledged and unchanged; where each session was found."""
        seen_slots: set[tuple[str, int]] = set()
        seen_ids: dict[str, tuple[str, int]] = {}
        for release_id, release in self.releases.items():
            batch_id = release["batch_id"]
            sessions = page_batch(http, self.url, batch_id)
            # Released batches never change after the acknowledgement.
            if batch_id in self.snapshots:
                assert sessions == self.snapshots[batch_id], f"batch {batch_id} changed after release"
            assert release["session_count"] == len(sessions)
            numbers = [number for number, _ in sessions]
            assert numbers == sorted(set(numbers))
            for number, session_id in sessions:
                assert (batch_id, number) not in seen_slots
                assert session_id not in seen_ids, f"{session_id} appears twice"
                seen_slots.add((batch_id, number))
                seen_ids[session_id] = (batch_id, number)
            # Repeating a release returns the same body.
            repeat = http.post(f"{self.url}/batch/release", json={"release_id": release_id}, timeout=60)
            assert repeat.json() == release
        return seen_ids

    def check_events(self, http: requests.Session) -> None:
        """Each event is stored once: accepted counts add up to the distinct event ids sent."""
        for session_id, sent in self.events_sent.items():
            stored = http.get(f"{self.url}/session", params={"session_id": session_id}, timeout=30).json()
            assert sorted(e["event_id"] for e in stored["events"]) == sorted(sent)
            assert self.events_accepted[session_id] == len(sent)


@pytest.fixture(params=[1, 8], ids=["1-shard", "8-shards"])
def shards(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tables: dict[str, str]) -> int:
    """The shard count of the batches the server opens (after `tables` set the template's environment)."""
    monkeypatch.setenv("BATCH_SHARDS", str(request.param))
    shard_count: int = request.param
    return shard_count


def test_registrations_racing_releases_and_paging_keep_every_invariant(shards: int, local_api: str) -> None:
    soak = Soak(local_api)
    threads = [threading.Thread(target=soak.register_loop, args=(w,)) for w in range(REGISTERING_THREADS)]
    threads += [threading.Thread(target=soak.release_loop), threading.Thread(target=soak.page_loop)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=MAX_DURATION_S + 120)

    assert soak.failures == [], "\n".join(soak.failures)
    assert soak.conflicts == [], "a session_id was acknowledged in two places"
    assert len(soak.releases) >= MIN_RELEASES, "the scenario must include several releases"
    assert soak.collecting_passes >= 1, "a collecting batch was paged while registrations went on"

    with requests.Session() as http:
        # Release everything still collecting so every batch can be checked the same way.
        final = http.post(f"{local_api}/batch/release", json={"release_id": "release-final"}, timeout=60)
        assert final.status_code in (200, 404)
        if final.status_code == 200:
            soak.releases["release-final"] = final.json()
        seen_ids = soak.check_batches(http)
        # Every acknowledged session is exactly where it was acknowledged.
        for session_id, place in soak.acknowledged.items():
            assert seen_ids.get(session_id) == place, f"{session_id} acknowledged at {place}"
        soak.check_events(http)
    # The batches were opened with the shard count asked for, and say so.
    storage = Storage.from_settings(Settings.from_environment())
    recorded = {storage.batches.get(release["batch_id"]) for release in soak.releases.values()}
    assert {record.shards for record in recorded if record is not None} == {shards}

    print(
        f"\nconcurrency ({shards} shard(s)): {len(soak.acknowledged)} sessions, {len(soak.releases)} releases, "
        f"{sum(len(s) for s in soak.events_sent.values())} distinct events, "
        f"{soak.collecting_passes} passes over a collecting batch"
    )
