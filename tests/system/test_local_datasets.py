"""`make run` does all of it with no AWS (contract 7.5, 14): a release made through the API is announced and
exported in the background into LAKE_DIR, judgments included, GET /batch shows the dataset's status move to
exported and the click model, the events are logged one JSON line each, and a consumer reads the folder
with DuckDB (or the judgments with the command line)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import duckdb
import requests
from clickstream_client import cli

from tests.support import new_session_body
from tests.support.processes import local_server

TIMEOUT = 30


def test_a_release_through_the_api_is_announced_and_exported_into_the_lake(tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    log = tmp_path / "server.log"
    with local_server(log, LAKE_DIR=str(lake_dir)) as url, requests.Session() as http:
        for n in range(6):
            body = new_session_body(f"local-{n}")
            assert http.post(f"{url}/session", json=body, timeout=TIMEOUT).status_code == 200
            clicks = {"session_id": f"local-{n}", "events": [{"event_id": "c1", "object_id": "shoe-17"}]}
            assert http.post(f"{url}/session/events", json=clicks, timeout=TIMEOUT).status_code == 200
        irrelevant = http.post(f"{url}/session/irrelevant", json={"session_id": "local-0"}, timeout=TIMEOUT)
        assert irrelevant.status_code == 200
        release = http.post(f"{url}/batch/release", json={"release_id": "release-local"}, timeout=TIMEOUT).json()
        batch_id = release["batch_id"]
        statuses = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            dataset = http.get(f"{url}/batch", params={"batch_id": batch_id}, timeout=TIMEOUT).json()["dataset"]
            statuses.append(dataset["status"])
            if dataset["status"] == "exported":
                break
            time.sleep(0.1)
        assert statuses[-1] == "exported", statuses
        assert dataset["manifest"] == f"file://{lake_dir.resolve()}/sessions/batch_id={batch_id}/manifest.json"
        listed = http.get(f"{url}/batches", timeout=TIMEOUT).json()["batches"]
        assert listed[0]["batch_id"] == batch_id
        assert listed[0]["metrics"]["click_through_rate"] == 1.0
        assert listed[0]["click_model"]["sessions"] == 6  # the irrelevant-marked one too: it was shown
        judgments_uri = f"file://{lake_dir.resolve()}/judgments/batch_id={batch_id}/judgments.jsonl.gz"
        assert dataset["judgments"]["uri"] == judgments_uri
        assert cli.main(["--url", url, "judgments", batch_id, "--out", str(tmp_path / "judgments.jsonl")]) == 0
        logged = announced(log, count=2)
    assert [entry["event"] for entry in logged] == ["BatchReleased", "BatchExported"]
    assert logged[0]["detail"] == release
    assert logged[1]["detail"]["manifest"] == dataset["manifest"]
    assert logged[1]["detail"]["judgments"] == judgments_uri
    lines = [json.loads(line) for line in (tmp_path / "judgments.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(line["object_id"], line["impressions"], line["clicks"]) for line in lines] == [
        ("shoe-17", 6, 6),
        ("shoe-3", 6, 0),
    ]
    assert readme_judgments_query(lake_dir, batch_id) == [("shoe-17", 6, 6, 1), ("shoe-3", 6, 0, 1)]

    query = (
        "SELECT count(session_id), sum(len(events)) "
        "FROM read_json_auto($parts, hive_partitioning = true) WHERE batch_id = $batch"
    )
    parts = f"{lake_dir}/sessions/*/part-*.jsonl.gz"
    assert duckdb.execute(query, {"parts": parts, "batch": batch_id}).fetchall() == [(6, 6)]
    assert readme_query(lake_dir, batch_id) == [(6, 1, 0)]


def readme_sql(marker: str) -> str:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- {marker} -->\s*```sql\n(.*?)```", readme, re.DOTALL)
    assert match, marker
    return match.group(1)


def readme_query(lake_dir: Path, batch_id: str) -> list[tuple[Any, ...]]:
    """The README's DuckDB view and query (the one it also gives for Athena), over this lake."""
    connection = duckdb.connect()
    connection.execute(readme_sql("duckdb-view").replace("'.lake/", f"'{lake_dir}/"))
    rows: list[tuple[Any, ...]] = connection.execute(readme_sql("dataset-query").replace("b-...", batch_id)).fetchall()
    return rows


def readme_judgments_query(lake_dir: Path, batch_id: str) -> list[tuple[Any, ...]]:
    """The README's DuckDB view and query of the judgments (the one it also gives for Athena)."""
    connection = duckdb.connect()
    connection.execute(readme_sql("judgments-duckdb-view").replace("'.lake/", f"'{lake_dir}/"))
    query = readme_sql("judgments-query").replace("b-...", batch_id)
    rows: list[tuple[Any, ...]] = connection.execute(query).fetchall()
    return rows


def announced(log: Path, count: int) -> list[dict[str, Any]]:
    """The events the server logged (one JSON line each), once `count` of them are there."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        logged = [json.loads(line) for line in log.read_text().splitlines() if line.startswith('{"event"')]
        if len(logged) >= count or time.monotonic() > deadline:
            return logged
        time.sleep(0.1)
