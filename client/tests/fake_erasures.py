"""The fake API's erasures (POST /user/erase, GET /erasure), moving as the service's state machine does.

An erasure asked for is `pending`; the first GET /erasure finds it so, and each GET after it moves it one
step on: `running` (started), `running` with what it found and purged (sessions, events, tasks), `running`
with the datasets rewritten, then `done` (completed), when the user's sessions, events and tasks are gone
from the fake. With `outcome` set to an error name it ends `failed` with that error instead, the user's data
untouched.
While one is pending or running, asking again for the same user answers that erasure.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JSONObject = dict[str, Any]
ERASURE_FIELDS = ("erasure_id", "status", "requested_at", "started_at", "completed_at")
COUNTS = ("sessions", "events", "tasks", "datasets_rewritten")
MAX_IDENTIFIER_LENGTH = 256


@dataclass
class FakeErasure:
    user_id: str
    record: JSONObject  # GET /erasure's answer
    steps: list[JSONObject]  # what each next GET changes, in order
    on_done: Callable[[], None]

    def advance(self) -> None:
        if not self.steps:
            return
        self.record.update(self.steps.pop(0))
        if self.record["status"] == "running" and self.record["started_at"] is None:
            self.record["started_at"] = _now_ms()
        if not self.active:
            self.record["completed_at"] = _now_ms()
        if self.record["status"] == "done":
            self.on_done()

    @property
    def active(self) -> bool:
        return self.record["status"] in ("pending", "running")


@dataclass
class UserData:
    """What the fake holds of one user when the erasure is asked for, and how to remove it."""

    sessions: int
    events: int
    tasks: int
    datasets: int
    remove: Callable[[], None]


@dataclass
class Erasures:
    outcome: str = "done"  # or the error name a failed erasure reports
    by_id: dict[str, FakeErasure] = field(default_factory=dict)

    def request(self, user_id: str, found: UserData) -> JSONObject:
        """POST /user/erase's answer: a new pending erasure, or the user's erasure still under way."""
        erasure = self.under_way(user_id)
        if erasure is None:
            now = _now_ms()
            erasure_id = f"e-{now:013d}-{secrets.token_hex(6)}"
            record: JSONObject = dict.fromkeys(ERASURE_FIELDS) | dict.fromkeys(COUNTS, 0) | {"error": None}
            record.update(erasure_id=erasure_id, status="pending", requested_at=now)
            erasure = FakeErasure(user_id, record, self._steps(found), found.remove)
            self.by_id[erasure_id] = erasure
        record = erasure.record
        return {"erasure_id": record["erasure_id"], "user_id": user_id} | {
            name: record[name] for name in ("status", "requested_at")
        }

    def under_way(self, user_id: str) -> FakeErasure | None:
        """The user's erasure that is pending or running, if any."""
        return next((one for one in self.by_id.values() if one.user_id == user_id and one.active), None)

    def read(self, erasure_id: str) -> JSONObject | None:
        """GET /erasure's answer after one more step, or None for an unknown id."""
        erasure = self.by_id.get(erasure_id)
        if erasure is None:
            return None
        erasure.advance()
        return dict(erasure.record)

    def _steps(self, found: UserData) -> list[JSONObject]:
        # The first read still finds it pending (the state machine starts it a moment later).
        still_pending: JSONObject = {}
        started: JSONObject = {"status": "running"}
        purged: JSONObject = {"sessions": found.sessions, "events": found.events, "tasks": found.tasks}
        if self.outcome != "done":
            return [still_pending, started, purged, {"status": "failed", "error": self.outcome}]
        return [still_pending, started, purged, {"datasets_rewritten": found.datasets}, {"status": "done"}]


def valid_user_id(body: Any) -> str | None:
    """The body's user_id if it follows the Identifier rules the service checks, else None."""
    user_id = body.get("user_id") if isinstance(body, dict) else None
    if isinstance(user_id, str) and 1 <= len(user_id) <= MAX_IDENTIFIER_LENGTH and user_id.isprintable():
        return user_id
    return None


def _now_ms() -> int:
    return int(time.time() * 1000)
