"""An erasure as a deployer runs it (contract 17), with no AWS: `make run`'s server (local/erasures.py runs
the erasure's steps as its state machine does), the real `clickstream erase --wait`, done within seconds,
then everything checked as a consumer sees it. The user's sessions sit in an exported batch, a second
exported batch and the collecting batch; after the erasure no route returns them, no byte of the lake
(gunzipped) or of the tables holds the user, every other session reads exactly as before (pages and
dataset lines), the rewritten datasets' figures equal a recomputation over the lines DuckDB reads, and the
user's next session is accepted and kept."""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import duckdb
import pytest
import requests
from clickstream_client import cli

from local.dynamodb import LOCAL_REGION
from local.run_record import record_path
from tests.support import new_session_body
from tests.support.processes import local_server

TIMEOUT = 30
ERASED = "alice@example.com"
# Sessions per user in each batch: two released and exported, the last still collecting.
BATCHES = [{"alice": 3, "bob": 3}, {"alice": 2, "carol": 2}, {"alice": 1, "bob": 1}]


@dataclass
class World:
    http: requests.Session
    url: str
    lake: Path
    batch_ids: list[str] = field(default_factory=list)
    sessions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # user -> what each session holds

    def get(self, route: str, **params: str) -> requests.Response:
        return self.http.get(f"{self.url}{route}", params=params, timeout=TIMEOUT)

    def register(self, user: str, batch: int, n: int) -> dict[str, Any]:
        session_id, at = f"s-{user}-{batch}-{n}", int(time.time() * 1000)
        # The user's queries and event ids are theirs alone, so a trace of them anywhere is a trace of the user.
        query = f"query of {user} {batch}.{n}"
        body = new_session_body(session_id, user_id=f"{user}@example.com", search_query=query, created_at=at)
        assert self.http.post(f"{self.url}/session", json=body, timeout=TIMEOUT).status_code == 200
        events = [{"event_id": f"ev-{session_id}", "object_id": "shoe-17", "created_at": at + 1_500}] if n % 2 else []
        if events:
            clicks = {"session_id": session_id, "events": events}
            assert self.http.post(f"{self.url}/session/events", json=clicks, timeout=TIMEOUT).status_code == 200
        session = {"session_id": session_id, "query": query, "event_ids": [event["event_id"] for event in events]}
        self.sessions.setdefault(user, []).append(session)
        return session

    def release_and_export(self, release_id: str) -> None:
        answer = self.http.post(f"{self.url}/batch/release", json={"release_id": release_id}, timeout=TIMEOUT)
        batch_id = answer.json()["batch_id"]
        deadline = time.monotonic() + TIMEOUT
        while self.get("/batch", batch_id=batch_id).json()["dataset"]["status"] != "exported":
            assert time.monotonic() < deadline, f"batch {batch_id} was not exported in {TIMEOUT} s"
            time.sleep(0.1)
        self.batch_ids.append(batch_id)

    def pages(self, batch_id: str) -> list[dict[str, Any]]:
        sessions: list[dict[str, Any]] = []
        after = "0"
        while True:
            page = self.get("/batch/sessions", batch_id=batch_id, after_number=after, limit="2").json()
            sessions += page["sessions"]
            if not page["has_more"]:
                return sessions
            after = str(page["last_number"])

    def dataset_lines(self, batch_id: str) -> list[bytes]:
        parts = sorted((self.lake / "sessions" / f"batch_id={batch_id}").glob("part-*.jsonl.gz"))
        return [line for part in parts for line in gzip.decompress(part.read_bytes()).splitlines()]

    def traces(self) -> list[bytes]:
        """What would show the erased user: the id, and each session's id, query and event ids."""
        texts = [ERASED] + [
            text for session in self.sessions["alice"] for text in [session["session_id"], session["query"]]
        ]
        return [text.encode() for text in texts + [e for s in self.sessions["alice"] for e in s["event_ids"]]]


def every_file(lake: Path) -> list[tuple[str, bytes]]:
    """Every file the lake holds, gunzipped where gzip."""
    files = []
    for path in sorted(path for path in lake.rglob("*") if path.is_file()):
        data = path.read_bytes()
        files.append((str(path.relative_to(lake)), gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data))
    return files


def every_item(url: str) -> list[tuple[str, str]]:
    """Every item of every table of the server's embedded AWS, as JSON text."""
    record = json.loads(record_path(urlparse(url).port or 0).read_text(encoding="utf-8"))
    client = boto3.client("dynamodb", endpoint_url=record["dynamodb_endpoint"], region_name=LOCAL_REGION)
    items = []
    for table in client.list_tables()["TableNames"]:
        for page in client.get_paginator("scan").paginate(TableName=table):
            items += [(table, json.dumps(item, ensure_ascii=False)) for item in page["Items"]]
    return items


def recomputed(lines: list[bytes]) -> dict[str, Any]:
    """Contract 7.3's counts, recomputed here from the lines, not by the service's code."""
    sessions = [json.loads(line) for line in lines]
    with_results = [s for s in sessions if s["search_results"]]
    clicked = [s for s in with_results if any(e["event_type"] == "click" for e in s["events"])]
    no_click = Counter(s["search_query"] for s in with_results if s not in clicked)
    return {
        "sessions": len(sessions),
        "events": sum(len(s["events"]) for s in sessions),
        "click_through_rate": len(clicked) / len(with_results) if with_results else None,
        "top_no_click_queries": sorted(no_click.items(), key=lambda item: (-item[1], json.dumps(item[0]))),
    }


def populate(world: World) -> None:
    for index, users in enumerate(BATCHES):
        for user, count in users.items():
            for n in range(count):
                world.register(user, index, n)
        if index < len(BATCHES) - 1:
            world.release_and_export(f"r-{index}")
    world.batch_ids.append(world.get("/session", session_id="s-bob-2-0").json()["batch_id"])  # collecting


def check_datasets(world: World, lines_before: dict[str, list[bytes]]) -> None:
    for batch_id in world.batch_ids[:2]:
        lines = world.dataset_lines(batch_id)
        assert lines == [line for line in lines_before[batch_id] if ERASED.encode() not in line]  # byte for byte
        parts = str(world.lake / "sessions" / f"batch_id={batch_id}" / "part-*.jsonl.gz")
        query = "SELECT count(*) FROM read_json_auto($parts) WHERE user_id = $user"
        assert duckdb.execute(query, {"parts": parts, "user": ERASED}).fetchall() == [(0,)]
        manifest = json.loads((world.lake / "sessions" / f"batch_id={batch_id}" / "manifest.json").read_text())
        metrics, expected = manifest["metrics"], recomputed(lines)
        assert (metrics["sessions"], metrics["events"]) == (expected["sessions"], expected["events"])
        assert metrics["click_through_rate"] == pytest.approx(expected["click_through_rate"])
        top = [(entry["query"], entry["sessions"]) for entry in metrics["top_no_click_queries"]]
        assert top == expected["top_no_click_queries"]
        record = world.get("/batch", batch_id=batch_id).json()
        erased = BATCHES[world.batch_ids.index(batch_id)]["alice"]
        assert (record["session_count"], record["erased_sessions"]) == (manifest["session_count"], erased)
        assert manifest["erased_sessions"] == erased


def test_an_erasure_leaves_no_trace_of_the_user_and_everyone_else_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "lake"
    with local_server(tmp_path / "server.log", LAKE_DIR=str(lake)) as url, requests.Session() as http:
        world = World(http, url, lake)
        populate(world)
        pages_before = {batch_id: world.pages(batch_id) for batch_id in world.batch_ids}
        lines_before = {batch_id: world.dataset_lines(batch_id) for batch_id in world.batch_ids[:2]}
        traces = world.traces()
        stored = [data for _, data in every_file(lake)] + [item.encode() for _, item in every_item(url)]
        assert all(any(trace in data for data in stored) for trace in traces)  # the scans below would see them

        started = time.monotonic()
        assert cli.main(["--url", url, "erase", ERASED, "--wait", "--poll", "0.2"]) == 0
        assert time.monotonic() - started < TIMEOUT
        shown = world.get("/erasure", erasure_id=json.loads(capsys.readouterr().out)["erasure_id"]).json()
        alice = world.sessions["alice"]
        events = sum(len(session["event_ids"]) for session in alice)
        assert (shown["status"], shown["sessions"], shown["events"]) == ("done", len(alice), events)
        assert shown["datasets_rewritten"] == 2

        for session in alice:  # no route returns them
            assert world.get("/session", session_id=session["session_id"]).status_code == 404
        for batch_id, before in pages_before.items():  # everyone else's sessions as before, numbers kept
            assert world.pages(batch_id) == [s for s in before if not s["session_id"].startswith("s-alice-")]
        check_datasets(world, lines_before)
        for name, data in every_file(lake):  # no byte of the lake holds the user
            assert not [trace for trace in traces if trace in data], name
        for table, item in every_item(url):  # nor does any item of any table
            assert not [trace for trace in traces if trace.decode() in item], table

        # Not a ban: the user's next session is accepted and kept.
        again = world.register("alice", 9, 0)
        assert world.get("/session", session_id=again["session_id"]).status_code == 200
