"""`make run` delivers improvement tasks to an embedded SQS queue (contract 9.5), and the README's worker
loop, run as written against it (one round instead of forever), completes them through the client."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import requests

from local.processes import local_server
from tests.support import new_session_body

TIMEOUT = 30
README = Path(__file__).parents[2] / "README.md"


def worker_loop() -> str:
    """The README's worker loop: the Python block of its improvement-tasks section."""
    section = README.read_text(encoding="utf-8").split("## Improvement tasks", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match
    return match.group(1)


def test_the_readme_worker_loop_completes_the_tasks_make_run_delivers(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with local_server(log) as url, requests.Session() as http:
        [queue_url] = re.findall(r"^Improvement tasks queue: (\S+)$", log.read_text(), re.MULTILINE)
        for n in range(3):
            assert http.post(f"{url}/session", json=new_session_body(f"work-{n}"), timeout=TIMEOUT).ok
            clicks = {"session_id": f"work-{n}", "events": [{"event_id": "c1", "object_id": "shoe-17"}]}
            assert http.post(f"{url}/session/events", json=clicks, timeout=TIMEOUT).ok
            scheduled = http.post(
                f"{url}/session/use-for-improvement", json={"session_id": f"work-{n}"}, timeout=TIMEOUT
            )
            assert scheduled.json()["status"] == "scheduled"

        code = (
            worker_loop()
            .replace(
                'QUEUE_URL = "http://127.0.0.1:.../123456789012/local-ImprovementTasksQueue"',
                f"QUEUE_URL = {queue_url!r}",
            )
            .replace('Client("http://127.0.0.1:3000")', f"Client({url!r})")
            .replace("while True:", "for _ in range(1):")
            .replace("WaitTimeSeconds=20", "WaitTimeSeconds=1")
        )
        improved: list[str] = []
        namespace: dict[str, Any] = {"print": lambda *words: improved.append(str(words[1]))}
        deadline = time.monotonic() + TIMEOUT
        while len(improved) < 3 and time.monotonic() < deadline:  # the outbox relays in the background
            exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
        assert sorted(improved) == ["work-0", "work-1", "work-2"]
        done = http.get(f"{url}/improvement/tasks", params={"status": "done"}, timeout=TIMEOUT).json()
        assert sorted(task["session_id"] for task in done["tasks"]) == ["work-0", "work-1", "work-2"]
        assert http.get(f"{url}/improvement/tasks", timeout=TIMEOUT).json() == {"tasks": [], "next": None}
