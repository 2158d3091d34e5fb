"""The sessions of a batch in ascending number, merged from its shards, which are read concurrently.

Each shard holds the numbers n with n % S == its index, ascending. A merge needs the next session of
every shard that still has any; each shard is read a few sessions at a time (the first reads of all
shards in one concurrent wave, sized so that together they cover what the caller wants), and a shard
whose sessions ran out is read again, concurrently with any other that ran out, before the merge goes on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from clickstream.concurrency import Fanout
from clickstream.domain.ports import Stores
from clickstream.records import StoredSession, shard_partitions


@dataclass
class _Shard:
    partition: str
    per_read: int
    sessions: deque[StoredSession] = field(default_factory=deque)
    start: dict[str, Any] | None = None
    done: bool = False

    @property
    def needs_reading(self) -> bool:
        return not self.sessions and not self.done


def sessions_after(
    storage: Stores,
    fanout: Fanout,
    batch_id: str,
    shards: int,
    *,
    after_number: int,
    wanted: int,
    erased: list[int] | None = None,
) -> Iterator[StoredSession]:
    """Sessions of the batch with number > `after_number`, ascending, tombstones left out; lazily, so a
    caller that stops early reads little more than it took. `wanted` sizes the reads: about that many
    sessions are read in the first wave, split over the shards. `erased` gets the numbers of the erased
    tombstones read (some beyond the session last yielded: the reads run ahead)."""
    per_read = max(1, -(-wanted // shards) + (1 if shards > 1 else 0))
    parts = [_Shard(partition, per_read) for partition in shard_partitions(batch_id, shards)]

    def read(shard: _Shard) -> None:
        page = storage.sessions.shard_page(batch_id, shard.partition, after_number, shard.per_read, shard.start)
        shard.sessions.extend(page.sessions)
        if erased is not None:
            erased.extend(page.erased)
        shard.start = page.next_start
        shard.done = page.next_start is None
        if not page.sessions:  # a run of tombstones (numbers let go): read further at once next time
            shard.per_read = min(2 * shard.per_read, 1000)

    while True:
        while empty := [shard for shard in parts if shard.needs_reading]:
            fanout.map(read, empty)
        heads = [(shard.sessions[0].session_number, index) for index, shard in enumerate(parts) if shard.sessions]
        if not heads:
            return
        _, index = min(heads)
        yield parts[index].sessions.popleft()
