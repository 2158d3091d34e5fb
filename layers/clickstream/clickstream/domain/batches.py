"""Which batches exist, and the shard count each was opened with (contract 8.1).

A batch is released (its `batch#<id>` record exists) or collecting (the pointer names it). Its shard count
never changes, so a container keeps it once read: paging the same batch again costs no lookup.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from clickstream.errors import BatchNotFound

if TYPE_CHECKING:
    from clickstream.storage import Storage


class BatchDirectory:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._shards: dict[str, int] = {}
        self._lock = threading.Lock()

    def shards_of(self, batch_id: str) -> int:
        """The shard count of a released or collecting batch; BatchNotFound for any other id."""
        with self._lock:
            known = self._shards.get(batch_id)
        if known is not None:
            return known
        shards = self._look_up(batch_id)
        with self._lock:
            self._shards[batch_id] = shards
        return shards

    def _look_up(self, batch_id: str) -> int:
        # Record, then pointer, then record again: a release moving the batch between the first two
        # reads has written the record by the time of the third.
        record = self._storage.releases.get_batch_record(batch_id)
        if record is not None:
            return record.shards
        pointer = self._storage.pointer.get()
        if pointer is not None and pointer.batch_id == batch_id:
            return pointer.shards
        record = self._storage.releases.get_batch_record(batch_id)
        if record is None:
            raise BatchNotFound(batch_id)
        return record.shards
