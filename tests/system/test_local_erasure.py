"""`make run` erases a user within seconds (contract 17), with no AWS: POST /user/erase starts the erasure
in the background (local/erasures.py, as the erasure state machine runs it), GET /erasure shows it move to
done, the user's sessions answer 404, the exported dataset no longer holds them, and no file of the lake
(gunzipped) names the user; another user's session is as it was."""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from typing import Any

import requests

from tests.support import new_session_body
from tests.support.processes import local_server

TIMEOUT = 30
USER = "user-local-erased"


def wait_for(http: requests.Session, url: str, params: dict[str, str], until: Any) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        answer: dict[str, Any] = http.get(url, params=params, timeout=TIMEOUT).json()
        if until(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def test_an_erasure_through_the_api_is_done_within_seconds_and_leaves_no_trace_in_the_lake(tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    with local_server(tmp_path / "server.log", LAKE_DIR=str(lake_dir)) as url, requests.Session() as http:
        for n in range(4):
            body = new_session_body(f"local-e{n}", user_id=USER if n % 2 else "user-local-kept")
            assert http.post(f"{url}/session", json=body, timeout=TIMEOUT).status_code == 200
            clicks = {"session_id": f"local-e{n}", "events": [{"event_id": "c1", "object_id": "shoe-17"}]}
            assert http.post(f"{url}/session/events", json=clicks, timeout=TIMEOUT).status_code == 200
        batch_id = http.post(f"{url}/batch/release", json={"release_id": "release-e"}, timeout=TIMEOUT).json()[
            "batch_id"
        ]
        batch = wait_for(http, f"{url}/batch", {"batch_id": batch_id}, lambda b: b["dataset"]["status"] == "exported")
        assert batch["dataset"]["status"] == "exported"
        kept_before = http.get(f"{url}/session", params={"session_id": "local-e0"}, timeout=TIMEOUT).json()
        requested = http.post(f"{url}/user/erase", json={"user_id": USER}, timeout=TIMEOUT)
        assert requested.status_code == 202
        erasure_id = requested.json()["erasure_id"]
        started = time.monotonic()
        done = wait_for(http, f"{url}/erasure", {"erasure_id": erasure_id}, lambda e: e["status"] in ("done", "failed"))
        assert done["status"] == "done", done
        assert time.monotonic() - started < TIMEOUT
        assert (done["sessions"], done["events"], done["datasets_rewritten"]) == (2, 2, 1)
        for erased in ("local-e1", "local-e3"):
            assert http.get(f"{url}/session", params={"session_id": erased}, timeout=TIMEOUT).status_code == 404
        assert http.get(f"{url}/session", params={"session_id": "local-e0"}, timeout=TIMEOUT).json() == kept_before
        batch = http.get(f"{url}/batch", params={"batch_id": batch_id}, timeout=TIMEOUT).json()
        assert (batch["session_count"], batch["erased_sessions"]) == (2, 2)
    contents = [path.read_bytes() for path in lake_dir.rglob("*") if path.is_file()]
    texts = [gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data for data in contents]
    assert texts
    assert not [text for text in texts if USER.encode() in text or b"local-e1" in text or b"local-e3" in text]
