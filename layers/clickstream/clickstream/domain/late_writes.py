"""Writes that come after a release (contract 13.5, 13.6): the fence a batch's export sets, as the write paths
see it, and the expiry of what they write.

A released batch still takes events and irrelevant marks (late clicks are why the export waits
ExportDelaySeconds) until its export **fences** it: the plan sets `fenced_at` on the batch record, once.
From then on such a write is refused (409, `BatchExported`), and the export reads the batch only after
`read_after = fenced_at + WRITE_SETTLE_MS`, so every write accepted before the fence is in the dataset.

What a container read of a batch is kept (domain/remembered.py): for good once final (fenced, exported), for
BATCH_STATE_CACHE_MS while it may still change (collecting, released). A write accepted on a stale
"not fenced" read that state before the fence, at most BATCH_STATE_CACHE_MS before its check; the call
ends at most its timeout later, so its items are stored before read_after as long as WRITE_SETTLE_MS
exceeds both (docs/protocol.md, "Late writes").
"""

from __future__ import annotations

from dataclasses import dataclass

from clickstream.domain.context import Context
from clickstream.domain.datasets.retention import expiry_of
from clickstream.domain.remembered import Remembered
from clickstream.errors import BatchExported
from clickstream.records import BatchRecord

_KEPT_BATCHES = 64  # batches a container remembers (a few are live at a time)


@dataclass(frozen=True)
class BatchState:
    """What a write needs to know of its session's batch (collecting or released: neither is set)."""

    fenced_at: int | None
    exported_at: int | None

    @property
    def final(self) -> bool:
        return self.fenced_at is not None and self.exported_at is not None

    @classmethod
    def of(cls, record: BatchRecord | None) -> BatchState:
        if record is None:
            return cls(fenced_at=None, exported_at=None)
        exported_at = record.dataset.exported_at if record.dataset.status == "exported" else None
        return cls(fenced_at=record.dataset.fenced_at, exported_at=exported_at)


class LateWrites:
    def __init__(self, context: Context) -> None:
        self._storage = context.storage
        self._telemetry = context.telemetry
        self._retention_days = context.settings.retention_days
        self._states: Remembered[str, BatchState] = Remembered(
            context.clock, context.settings.batch_state_cache_ms, _KEPT_BATCHES, final=lambda state: state.final
        )

    def state(self, batch_id: str) -> BatchState:
        """The batch's state as this container knows it: final facts for good, the rest for a while."""
        return self._states.get(batch_id, lambda: BatchState.of(self._storage.batches.get(batch_id)))

    def check_open(self, batch_id: str) -> None:
        """Before a write that the batch's dataset must hold: BatchExported once the export fenced it."""
        known = self._states.last_read(batch_id)
        fenced = known is not None and known.fenced_at is not None  # a fence is for good
        if fenced or self.state(batch_id).fenced_at is not None:
            self._telemetry.count("LateWritesRefused")
            raise BatchExported(batch_id)

    def task_expiry(self, batch_id: str) -> int | None:
        """The time to live of a task scheduled now for a session of `batch_id` (epoch seconds; None:
        none). With retention on, a task of an exported batch expires with the batch's other items; the
        export sets it on tasks written before it recorded the dataset (they exist when it gets to them)."""
        if self._retention_days <= 0:
            return None  # nothing expires: no need to know the batch
        exported_at = self.state(batch_id).exported_at
        return None if exported_at is None else expiry_of(exported_at, self._retention_days)
