"""The erasure state machine's steps (contract 17; statemachines/erasure.asl.json): Begin, Find, Unclaim,
Purge, then per batch Account, Rewrite and Versions, and Finish (or Fail).

Every step is repeatable: run again (a retry, or the whole erasure run again after a crash) it finds what is
left and leaves the same end state. The counts on the erasure are set, never added, and never lowered while
it runs: a step run again finds less than its first run did, whose counts stand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from clickstream.domain.context import Context
from clickstream.domain.datasets.layout import batch_folders
from clickstream.domain.datasets.retention import items_expired
from clickstream.domain.erasure.purge import Purge
from clickstream.domain.erasure.worklist import (
    FoundSession,
    WorkList,
    leftover_key,
    leftovers_prefix,
    load,
    save,
    worklist_key,
)
from clickstream.domain.ports import Lake
from clickstream.errors import ErasureDeadlinePassed, ExportNotReady
from clickstream.records import Erasure, ErasureCounts, shard_partitions

FIND_PAGE = 100  # session ids per Query of the user index
HOUR_MS = 3_600_000


class Rewritten(Protocol):
    @property
    def sessions_removed(self) -> int: ...
    @property
    def events_removed(self) -> int: ...
    @property
    def done(self) -> bool: ...


class DatasetRewrites(Protocol):
    """domain/datasets/rewrite.py: an exported dataset rewritten without the user's lines."""

    def rewrite(
        self, batch_id: str, stored_user_id: str, erasure_id: str, stop_at: int | None, account_removed: bool | None
    ) -> Rewritten: ...


@dataclass(frozen=True)
class PurgeCounts:
    """What Purge removed, as the machine carries it to Finish."""

    sessions: int = 0
    events: int = 0
    tasks: int = 0


@dataclass(frozen=True)
class DatasetOutcome:
    """One batch of the Datasets map, as the machine carries it to Finish."""

    live: bool = True  # False: the batch's items had expired, its dataset was all that held the user
    sessions_removed: int = 0
    events_removed: int = 0
    rewritten: bool = False


@dataclass(frozen=True)
class Begun:
    open: bool  # False: done or failed already (or unknown): the machine stops
    wait_seconds: int


class ErasureSteps:
    def __init__(self, context: Context, lake: Lake, rewrites: DatasetRewrites) -> None:
        self._context = context
        self._storage = context.storage
        self._lake = lake
        self._rewrites = rewrites
        self._purge = Purge(context)

    def begin(self, erasure_id: str) -> Begun:
        """Running, and the user among those registrations refuse; then wait WRITE_SETTLE_MS: a registration
        that read the guard before it changed has stored its claim by then."""
        erasure = self._storage.erasures.begin(erasure_id, self._context.clock())
        wait_seconds = math.ceil(self._context.settings.write_settle_ms / 1000)
        return Begun(erasure is not None and erasure.is_open, wait_seconds)

    def find(self, erasure_id: str) -> dict[str, Any]:
        """The user's sessions (the index, paged; each claim's place) and the batches whose datasets keep them
        after their items expired; merged with what an earlier run found, written to the lake."""
        erasure = self._running(erasure_id)
        if erasure is None:
            return {"sessions": 0, "batches": []}
        found: dict[str, FoundSession] = {}
        after: str | None = None
        while True:
            ids, after = self._storage.claims.user_sessions(erasure.user_key, FIND_PAGE, after)
            for session_id, claim in zip(ids, self._context.fanout.map(self._storage.claims.stored, ids), strict=True):
                # Expired ones too: their items are still there until TTL deletes them (the dataset is in
                # user_datasets). None: gone.
                if claim is not None and claim.user_key == erasure.user_key:
                    found[session_id] = FoundSession(session_id, claim.place)
            if after is None:
                break
        expired = frozenset(self._storage.user_datasets.batches_of(erasure.user_key))
        work = WorkList(found, expired).merged(load(self._lake, worklist_key(erasure_id)))
        for key in self._lake.keys(leftovers_prefix(erasure.user_key)):  # what failed erasures of the user found
            work = work.merged(load(self._lake, key))
        save(self._lake, worklist_key(erasure_id), work)
        self._record_at_least(erasure, ErasureCounts(sessions=len(work.sessions)))
        live = work.live_batches
        batches = [{"batch_id": batch_id, "live": batch_id in live} for batch_id in work.batch_ids]
        return {"sessions": len(work.sessions), "batches": batches}

    def unclaim(self, erasure_id: str) -> dict[str, Any]:
        """Each found session's claim deleted: from now on every route answers 404 for it."""
        work = self._work(erasure_id)
        sessions = list(work.sessions.values())
        deleted = self._context.fanout.map(
            lambda found: self._storage.claims.delete(found.session_id, found.place), sessions
        )
        return {"unclaimed": sum(deleted)}

    def purge(self, erasure_id: str) -> dict[str, Any]:
        erasure = self._running(erasure_id)
        if erasure is None:
            return {"sessions": 0, "events": 0, "tasks": 0}
        sessions = list(load(self._lake, worklist_key(erasure_id)).sessions.values())
        held, counts = self._purge.count(erasure_id, sessions)
        recorded = self._record_at_least(erasure, counts)
        self._purge.delete(erasure_id, held)
        return {"sessions": recorded.sessions, "events": recorded.events, "tasks": recorded.tasks}

    def account(self, erasure_id: str, batch_id: str, live: bool) -> dict[str, Any]:
        """A released, settled batch recounted: sessions that remain, erased tombstones beside them. A
        collecting batch needs nothing: settle counts erased tombstones; one being settled is waited for
        (ExportNotReady, retried), so settle's count cannot overwrite this one. A batch whose items expired
        (`live` False, or past their time to live by now) is accounted by its rewrite, from its dataset:
        `accounted` says which, and the Rewrite step is told (decided once, so never both)."""
        record = self._storage.batches.get(batch_id)
        if record is not None and record.session_count is None:
            raise ExportNotReady(f"batch {batch_id} is being settled: it is counted once settled")
        retention_days = self._context.settings.retention_days
        if not live or record is None or items_expired(record, retention_days, self._context.clock()):
            return {"batch_id": batch_id, "accounted": False}
        sessions = erased = 0
        for partition in shard_partitions(batch_id, record.shards):
            for slot in self._storage.sessions.slots(partition):
                sessions += not slot.is_tombstone
                erased += slot.is_erased
        self._storage.batches.account_erased(batch_id, sessions, erased)
        return {"batch_id": batch_id, "accounted": True, "session_count": sessions, "erased_sessions": erased}

    def rewrite(
        self, erasure_id: str, batch_id: str, time_budget_ms: int | None = None, accounted: bool | None = None
    ) -> dict[str, Any]:
        """The batch's dataset without the user's lines, when it is exported (ExportNotReady while exporting);
        `done` False when it stopped after `time_budget_ms`, to be called again (it goes on where it stopped).
        `accounted`: what the Account step answered (True: it counted the batch's slots, so this does not)."""
        erasure = self._running(erasure_id)
        if erasure is None or erasure.stored_user_id is None:
            return {"batch_id": batch_id, "sessions_removed": 0, "events_removed": 0, "done": True}
        stop_at = None if time_budget_ms is None else self._context.clock() + time_budget_ms
        try:
            account_removed = None if accounted is None else not accounted
            rewritten = self._rewrites.rewrite(batch_id, erasure.stored_user_id, erasure_id, stop_at, account_removed)
        except ExportNotReady:
            # Retried hourly by the machine; its timeout would end it without Failed (the guard kept).
            deadline = (
                erasure.started_at or erasure.requested_at
            ) + self._context.settings.erasure_deadline_hours * HOUR_MS
            if self._context.clock() >= deadline - HOUR_MS:
                raise ErasureDeadlinePassed(batch_id) from None
            raise
        # Counts only: the keys the rewrite replaced can be thousands, more than a state's payload holds.
        return {
            "batch_id": batch_id,
            "sessions_removed": rewritten.sessions_removed,
            "events_removed": rewritten.events_removed,
            "done": rewritten.done,
        }

    def versions(self, erasure_id: str, batch_id: str) -> dict[str, Any]:
        """The earlier versions of every object of the batch: those the rewrite replaced hold the erased lines,
        and so may those a retried export replaced before."""
        deleted = sum(self._lake.delete_noncurrent_versions(folder) for folder in batch_folders(batch_id))
        record = self._storage.batches.get(batch_id)
        rewritten = record is not None and erasure_id in record.erasures
        return {"batch_id": batch_id, "versions_deleted": deleted, "rewritten": rewritten}

    def finish(self, erasure_id: str, purged: PurgeCounts, datasets: list[DatasetOutcome]) -> dict[str, Any]:
        """Done: the counts, the user's dataset index and the work file gone, then the record closed (which
        removes the stored user id, the user's lock and the registration guard's key).

        The counts are Purge's plus what the rewrites took out of datasets whose items had expired (Purge
        never saw those sessions), from the machine's own state: set, so a repeated Finish sets the same."""
        erasure = self._running(erasure_id)
        if erasure is not None:
            expired = [outcome for outcome in datasets if not outcome.live]
            counts = ErasureCounts(
                sessions=purged.sessions + sum(outcome.sessions_removed for outcome in expired),
                events=purged.events + sum(outcome.events_removed for outcome in expired),
                datasets_rewritten=sum(outcome.rewritten for outcome in datasets),
            )
            self._record_at_least(erasure, counts)
            for batch_id in self._storage.user_datasets.batches_of(erasure.user_key):
                self._storage.user_datasets.remove(erasure.user_key, batch_id)
            for key in self._lake.keys(leftovers_prefix(erasure.user_key)):  # merged into this one's by Find
                self._lake.remove(key)
            self._lake.remove(worklist_key(erasure_id))
        return self._closed(self._storage.erasures.close(erasure_id, "done", self._context.clock()), erasure_id)

    def fail(self, erasure_id: str, error: str) -> dict[str, Any]:
        """Failed: registrations of the user are taken again. What it found is left for the user's next
        erasure (the index may no longer find it), and so is the user's dataset index."""
        erasure = self._running(erasure_id)
        if erasure is not None:
            work = load(self._lake, worklist_key(erasure_id))
            if work.sessions or work.expired_batches:
                save(self._lake, leftover_key(erasure.user_key, erasure_id), work)
            self._lake.remove(worklist_key(erasure_id))
        closed = self._storage.erasures.close(erasure_id, "failed", self._context.clock(), error[:256] or "Error")
        return self._closed(closed, erasure_id)

    def _running(self, erasure_id: str) -> Erasure | None:
        erasure = self._storage.erasures.get(erasure_id)
        return erasure if erasure is not None and erasure.status == "running" else None

    def _work(self, erasure_id: str) -> WorkList:
        return load(self._lake, worklist_key(erasure_id)) if self._running(erasure_id) is not None else WorkList()

    def _record_at_least(self, erasure: Erasure, counts: ErasureCounts) -> ErasureCounts:
        current = self._storage.erasures.get(erasure.erasure_id) or erasure
        names = ("sessions", "events", "tasks", "datasets_rewritten")
        kept = {
            name: max(value, getattr(current, name)) if (value := getattr(counts, name)) is not None else None
            for name in names
        }
        self._storage.erasures.record_counts(erasure.erasure_id, ErasureCounts(**kept))
        return ErasureCounts(
            **{name: kept[name] if kept[name] is not None else getattr(current, name) for name in names}
        )

    @staticmethod
    def _closed(erasure: Erasure | None, erasure_id: str) -> dict[str, Any]:
        if erasure is None:
            return {"erasure_id": erasure_id, "status": "unknown"}
        counts = {name: getattr(erasure, name) for name in ("sessions", "events", "tasks", "datasets_rewritten")}
        return {"erasure_id": erasure_id, "status": erasure.status, **counts}
