"""Retention (contract 7.6): once a batch's dataset exists, its items in DynamoDB get a time to live.

Only after the manifest is written (the export's last step) does a range's worker set `expires_at` on the
items of its numbers: the slots (sessions and tombstones), and for each session its claim, its events and
its improvement task. DynamoDB's TTL then deletes them, free of charge, after RETENTION_DAYS. The batch and
release records stay, so the batch's history (and its report) can still be read.
"""

from __future__ import annotations

from typing import Any

from clickstream.domain.context import Context
from clickstream.domain.datasets.layout import NumberRange
from clickstream.domain.datasets.parts import ExportJob
from clickstream.records import Place, Slot, partition_of

DAY_S = 86_400


def expiry_of(exported_at_ms: int, retention_days: int) -> int | None:
    """When a dataset's items expire (epoch seconds, as DynamoDB TTL reads it); None: kept."""
    return exported_at_ms // 1000 + retention_days * DAY_S if retention_days > 0 else None


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
        self._fanout.map(lambda slot: self._expire(job, slot, at_seconds), slots)
        return {"range": number_range.index, "slots": len(slots)}

    def _expire(self, job: ExportJob, slot: Slot, at_seconds: int) -> None:
        self._storage.sessions.expire(Place(job.batch_id, slot.session_number, job.shards), at_seconds)
        if slot.session_id is None:
            return
        self._storage.claims.expire(slot.session_id, at_seconds)
        self._storage.tasks.expire(slot.session_id, at_seconds)
        for event_id in self._storage.events.ids(slot.session_id):
            self._storage.events.expire(slot.session_id, event_id, at_seconds)
