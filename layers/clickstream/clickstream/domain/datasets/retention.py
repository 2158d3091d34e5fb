"""Retention (contract 7.6): once a batch's dataset exists, its items in DynamoDB get a time to live.

Only after the manifest is written (the export's last step), and WRITE_SETTLE_MS later, does a range's
worker set `expires_at` on the items of its numbers: the slots (sessions and tombstones), and for each
session its claim, its events and its improvement task. No event or mark is written after the export
(the fence refuses them) and a task scheduled later carries its expiry (domain/late_writes.py), so every
item of the batch expires (contract 13.6). DynamoDB's TTL then deletes them, free of charge, after
RETENTION_DAYS. The batch and release records stay, so the batch's history (and its report) can still be read.

The user index goes with the claims, while the dataset keeps the sessions: so before the first claim of a user
in a range expires, (user_key, batch_id) goes into UserDatasetsTable, once per user and range, where an
erasure finds the datasets to rewrite (contract 17).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from clickstream.domain.context import Context
from clickstream.domain.datasets.layout import NumberRange
from clickstream.domain.datasets.parts import ExportJob
from clickstream.records import BatchRecord, Place, Slot, partition_of

DAY_S = 86_400


def expiry_of(exported_at_ms: int, retention_days: int) -> int | None:
    """When a dataset's items expire (epoch seconds, as DynamoDB TTL reads it); None: kept."""
    return exported_at_ms // 1000 + retention_days * DAY_S if retention_days > 0 else None


def items_expired(record: BatchRecord, retention_days: int, now_ms: int) -> bool:
    """The batch's items are past their time to live (or deleted by now): DynamoDB no longer counts its
    sessions, only its dataset does (an erasure's rewrite then accounts what it removed, contract 17.4)."""
    exported_at = record.dataset.exported_at
    expires = None if exported_at is None else expiry_of(exported_at, retention_days)
    return record.dataset.status == "exported" and expires is not None and now_ms // 1000 >= expires


class Retention:
    def __init__(self, context: Context) -> None:
        self._storage = context.storage
        self._fanout = context.fanout

    def expire_range(self, job: ExportJob, number_range: NumberRange, at_seconds: int) -> dict[str, Any]:
        slots: list[Slot] = []
        for shard in range(job.shards):
            first = number_range.first + (shard - number_range.first) % job.shards  # the shard's first number here
            partition = partition_of(job.batch_id, first, job.shards)
            slots += self._storage.sessions.slots_between(partition, number_range.first, number_range.last)
        users = _UsersRecorded(self._storage.user_datasets.add, job.batch_id)
        self._fanout.map(lambda slot: self._expire(job, slot, at_seconds, users), slots)
        return {"range": number_range.index, "slots": len(slots)}

    def _expire(self, job: ExportJob, slot: Slot, at_seconds: int, users: _UsersRecorded) -> None:
        """The claim last: once it expires the session_id may register again, by then its old events and task
        have expired too (so a new session never sees them, contract 13.6), even after a crash half-way."""
        place = Place(job.batch_id, slot.session_number, job.shards)
        session_id = slot.session_id
        claim = None if session_id is None else self._storage.claims.get(session_id)
        if session_id is None or claim is None or claim.place is None or claim.place.batch_id != job.batch_id:
            # A tombstone; or a redrive long after, finding the id expired or registered again: not ours.
            self._storage.sessions.expire(place, at_seconds)
            return
        self._storage.tasks.expire(session_id, job.batch_id, at_seconds)
        for event_id in self._storage.events.ids(session_id):
            self._storage.events.expire(session_id, event_id, at_seconds)
        self._storage.sessions.expire(place, at_seconds)
        if claim.user_key is not None:
            users.record(claim.user_key)
        self._storage.claims.expire(session_id, job.batch_id, at_seconds)


class _UsersRecorded:
    """The users of one range whose batch is recorded in UserDatasetsTable already (one write each)."""

    def __init__(self, add: Callable[[str, str], None], batch_id: str) -> None:
        self._add = add
        self._batch_id = batch_id
        self._done: set[str] = set()
        self._lock = threading.Lock()

    def record(self, user_key: str) -> None:
        with self._lock:
            if user_key in self._done:
                return
        self._add(user_key, self._batch_id)  # a put: two at once for one user write the same item
        with self._lock:
            self._done.add(user_key)
