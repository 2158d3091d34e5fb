"""The tables' DynamoDB stream images, decoded into records: the one reader of what a stream carries.

A stream image is an item in DynamoDB's attribute-value form (`{"pk": {"S": "release#r1"}, ...}`), the
same form GetItem answers, so each item is decoded by its gateway's own decoder. The outbox asks only about
release records, released-batch records, erasure records and tasks; any other change (the pointer, a
removal, the keys-only record moto streams when an update creates an item) decodes to None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from clickstream.changes import BatchChange, ErasureChange, ReleaseChange, StoredChange, TaskChange
from clickstream.records import StoredTask
from clickstream.storage.batch_records import BATCH_PREFIX, batch_record
from clickstream.storage.erasures import ERASURE_PREFIX, erasure_of
from clickstream.storage.plumbing import Item
from clickstream.storage.releases import RELEASE_PREFIX, release_record
from clickstream.storage.tasks import stored_task

T = TypeVar("T")
Image = Mapping[str, Any]
_TASK_ATTRIBUTES = ("session_id", "batch_id", "session_number", "status", "requested_at")


def _key(item: Image) -> str:
    return str(item.get("pk", {}).get("S", ""))


def _decoded(item: Image | None, prefix: str, decode: Callable[[Item], T]) -> T | None:
    return decode(dict(item)) if item and _key(item).startswith(prefix) else None


def _task(item: Image | None) -> StoredTask | None:
    whole = item is not None and "pk" not in item and all(name in item for name in _TASK_ATTRIBUTES)
    return stored_task(dict(item)) if whole and item is not None else None


def decode_change(old: Image | None, new: Image | None) -> StoredChange:
    """What one stream record's old and new images say changed, as records; None: nothing the outbox reads."""
    if not new:
        return None
    if (release := _decoded(new, RELEASE_PREFIX, release_record)) is not None:
        return ReleaseChange(_decoded(old, RELEASE_PREFIX, release_record), release)
    if (batch := _decoded(new, BATCH_PREFIX, batch_record)) is not None:
        return BatchChange(_decoded(old, BATCH_PREFIX, batch_record), batch)
    if (erasure := _decoded(new, ERASURE_PREFIX, erasure_of)) is not None:
        return ErasureChange(_decoded(old, ERASURE_PREFIX, erasure_of), erasure)
    task = _task(new)
    return None if task is None else TaskChange(_task(old), task)
