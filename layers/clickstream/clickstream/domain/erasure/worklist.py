"""What an erasure found (its Find step), kept in the lake between its steps.

`erasures/erasure_id=<id>/sessions.json.gz` (never under sessions/, which Athena reads): the user's sessions,
each with the place its claim gave, and the batches whose datasets may hold them. The list only grows: a Find
run again (a retried step, or the whole erasure run again after a crash) merges what the index still shows
with what was found before, since the claims the Unclaim step deleted are no longer in the index.
The file names session ids and batch ids, never the user; the Finish step deletes it with its versions.

An erasure that fails leaves its list under `erasures/user_key=<key>/` (the user's hash: no id in clear):
its Unclaim may have run, and the index no longer finds those sessions. The next erasure of the user merges
every such list into its own, and deletes them when it is done.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field

from clickstream.domain.ports import Lake
from clickstream.records import Place


def worklist_key(erasure_id: str) -> str:
    return f"erasures/erasure_id={erasure_id}/sessions.json.gz"


def leftovers_prefix(user_key: str) -> str:
    """Where the failed erasures of a user left what they found."""
    return f"erasures/user_key={user_key}/"


def leftover_key(user_key: str, erasure_id: str) -> str:
    return f"{leftovers_prefix(user_key)}{erasure_id}.json.gz"


@dataclass(frozen=True)
class FoundSession:
    session_id: str
    place: Place | None  # None only for a claim made before numbers came first (no slot to erase)


@dataclass(frozen=True)
class WorkList:
    sessions: dict[str, FoundSession] = field(default_factory=dict)  # by session_id
    expired_batches: frozenset[str] = frozenset()  # from UserDatasetsTable: their items expired (retention)

    @property
    def live_batches(self) -> frozenset[str]:
        """The batches the found claims place sessions in: their DynamoDB items are there to recount."""
        return frozenset(found.place.batch_id for found in self.sessions.values() if found.place is not None)

    @property
    def batch_ids(self) -> list[str]:
        """Every batch whose slots or dataset may hold the user's sessions, ascending (oldest first)."""
        return sorted(self.live_batches | self.expired_batches)

    def merged(self, other: WorkList) -> WorkList:
        return WorkList({**other.sessions, **self.sessions}, self.expired_batches | other.expired_batches)


def _session_json(found: FoundSession) -> dict[str, object]:
    place = found.place
    if place is None:
        return {"session_id": found.session_id}
    return {
        "session_id": found.session_id,
        "batch_id": place.batch_id,
        "session_number": place.session_number,
        "shards": place.shards,
    }


def _session_of(line: dict[str, object]) -> FoundSession:
    session_id = str(line["session_id"])
    if "batch_id" not in line:
        return FoundSession(session_id, None)
    place = Place(str(line["batch_id"]), int(str(line["session_number"])), int(str(line["shards"])))
    return FoundSession(session_id, place)


def save(lake: Lake, key: str, work: WorkList) -> None:
    document = {
        "sessions": [_session_json(work.sessions[session_id]) for session_id in sorted(work.sessions)],
        "expired_batches": sorted(work.expired_batches),
    }
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    lake.put_bytes(key, gzip.compress(text, mtime=0))


def load(lake: Lake, key: str) -> WorkList:
    """The list found so far; empty before the first Find (or after Finish deleted it)."""
    stored = lake.get_bytes(key)
    if stored is None:
        return WorkList()
    document = json.loads(gzip.decompress(stored))
    sessions = [_session_of(line) for line in document["sessions"]]
    return WorkList({found.session_id: found for found in sessions}, frozenset(document["expired_batches"]))
