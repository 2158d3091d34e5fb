"""Reading a sharded batch (contract 8.1) over an in-memory stand-in for the sessions table: the merge
yields every session once in ascending number, and settle's walk finds every number nobody wrote."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.concurrency import Fanout
from clickstream.domain.ports import Stores
from clickstream.domain.release import walk_shard
from clickstream.domain.shards import sessions_after
from clickstream.records import Place, ReleaseRecord, ShardPage, Slot, StoredSession, partition_of


@dataclass
class MemorySessions:
    """Slots by partition: number -> session_id (None: a tombstone). Queries return `limit` slots at most."""

    partitions: dict[str, dict[int, str | None]] = field(default_factory=dict)
    queries: int = 0

    def write(self, batch_id: str, shards: int, number: int, session_id: str | None) -> None:
        self.partitions.setdefault(partition_of(batch_id, number, shards), {})[number] = session_id

    def shard_page(self, batch_id: str, partition: str, after: int, limit: int, start: Any = None) -> ShardPage:
        self.queries += 1
        numbers = sorted(n for n in self.partitions.get(partition, {}) if n > (start or after))
        read = numbers[:limit]
        sessions = [
            StoredSession(batch_id, n, session_id, 0, None, False, False, "{}")
            for n in read
            if (session_id := self.partitions[partition][n]) is not None
        ]
        return ShardPage(sessions, read[-1] if len(numbers) > limit else None)

    def slots(self, partition: str) -> list[Slot]:
        return [Slot(n, session_id) for n, session_id in sorted(self.partitions.get(partition, {}).items())]


def storage_of(sessions: MemorySessions) -> Stores:
    return cast(Stores, type("MemoryStorage", (), {"sessions": sessions})())


@settings(max_examples=80, deadline=None)
@given(
    shards=st.sampled_from([1, 2, 3, 8]),
    written=st.dictionaries(st.integers(1, 120), st.booleans(), max_size=80),
    after=st.integers(0, 130),
    wanted=st.integers(1, 30),
)
def test_the_merge_yields_every_session_after_the_cursor_once_in_order(
    shards: int, written: dict[int, bool], after: int, wanted: int
) -> None:
    table = MemorySessions()
    for number, is_session in written.items():
        table.write("b", shards, number, f"s{number}" if is_session else None)
    merged = [
        s.session_number
        for s in sessions_after(storage_of(table), Fanout(4), "b", shards, after_number=after, wanted=wanted)
    ]
    assert merged == sorted(n for n, is_session in written.items() if is_session and n > after)


def test_a_caller_that_stops_early_reads_about_what_it_asked_for() -> None:
    table = MemorySessions()
    for number in range(1, 1001):
        table.write("b", 8, number, f"s{number}")
    stream = sessions_after(storage_of(table), Fanout(8), "b", 8, after_number=0, wanted=11)
    assert [next(stream).session_number for _ in range(11)] == list(range(1, 12))
    assert table.queries == 8  # one wave: every shard once, together enough for what was wanted


@pytest.mark.parametrize("shards", [1, 3, 8])
def test_settle_finds_exactly_the_numbers_nobody_wrote_in_each_shard(shards: int) -> None:
    table = MemorySessions()
    written = {1: "s1", 2: None, 4: "s4", 5: "s5", 9: "s9", 10: None, 13: "s13"}
    for number, session_id in written.items():
        table.write("b", shards, number, session_id)
    record = ReleaseRecord("r", "b", 0, last_number=15, shards=shards, session_count=None)
    walks = [walk_shard(storage_of(table), record, shard) for shard in range(shards)]
    missing = sorted(place.session_number for walk in walks for place in walk.missing)
    assert missing == [3, 6, 7, 8, 11, 12, 14, 15]
    assert sum(walk.sessions for walk in walks) == 5
    assert all(place == Place("b", place.session_number, shards) for walk in walks for place in walk.missing)
