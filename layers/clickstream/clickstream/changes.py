"""Changes of stored records as the tables' DynamoDB streams carry them (storage/changes.py decodes them),
for the outbox (domain/announcements.py)."""

from __future__ import annotations

from dataclasses import dataclass

from clickstream.records import BatchRecord, Erasure, ReleaseRecord, StoredTask


@dataclass(frozen=True)
class ReleaseChange:
    """A release record as a stream saw it change (`old` None: created)."""

    old: ReleaseRecord | None
    new: ReleaseRecord


@dataclass(frozen=True)
class BatchChange:
    """A released-batch record as a stream saw it change (`old` None: created)."""

    old: BatchRecord | None
    new: BatchRecord


@dataclass(frozen=True)
class TaskChange:
    """A task as a stream saw it change (`old` None: created, or not a whole task before)."""

    old: StoredTask | None
    new: StoredTask


@dataclass(frozen=True)
class ErasureChange:
    """An erasure record as a stream saw it change (`old` None: requested, the record just stored)."""

    old: Erasure | None
    new: Erasure


# What a change of a table item means to the outbox; None: a change of anything else (the pointer, a
# removal, a keys-only record).
StoredChange = ReleaseChange | BatchChange | TaskChange | ErasureChange | None
