"""Release (contract 2.3; guarantees 5.3 and 5.4), with single-item conditional writes.

Seal the pointer with the release_id (freezes the last number N; registrations without numbers in
hand now wait) -> bind `release#<id>` to the batch (once: a release_id never names two batches) ->
write the batch record -> delete the pointer (the next registration opens a new batch) -> settle:
every number 1..N still empty after RELEASE_SETTLE_GRACE_MS gets a tombstone, each shard walked
concurrently -> record the session count. The release is acknowledged only after the count is recorded.

Why the set of sessions is final then: numbers are handed out only by the ADD on an unsealed pointer,
in blocks, so none of the batch exists beyond N, however many containers hold blocks of it. A
registration numbered before the seal either writes its session before settle reaches its slot (it is
in the batch, counted) or finds a tombstone there and moves to the next batch. Slot writes are
conditional, so once every slot 1..N holds a session or a tombstone nothing can enter the batch again.

Every step is conditional and repeatable: calling release again with the same id completes a release
that crashed; a registration that finds the pointer sealed for too long completes the hand-over
(`complete_hand_over`), and the repeated release completes the settle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clickstream.domain.context import Context
from clickstream.domain.ports import Stores
from clickstream.errors import NoCollectingBatch
from clickstream.models import Release
from clickstream.records import Place, Pointer, ReleaseRecord, partition_of


class Releaser:
    def __init__(self, context: Context) -> None:
        self._storage = context.storage
        self._settings = context.settings
        self._fanout = context.fanout
        self._telemetry = context.telemetry
        self._clock = context.clock
        self._sleep = context.sleep

    def release(self, release_id: str) -> Release:
        record = self._storage.releases.get_release(release_id) or self._bind(release_id)
        if record.session_count is None:
            # A call with this id may have stopped right after binding it: finish its hand-over first
            # (both writes are conditional no-ops when done), so the batch record exists to be counted
            # and no sealed pointer is left for registrations to wait on.
            self._retire(record)
            record = self._settle(record)
            self._telemetry.count("BatchesReleased")
        return Release(
            release_id=record.release_id,
            batch_id=record.batch_id,
            released_at=record.released_at,
            session_count=record.session_count or 0,
        )

    def complete_hand_over(self, pointer: Pointer) -> ReleaseRecord | None:
        """Bind the release that sealed `pointer` to its batch, record the batch, and retire the pointer.

        Called by the release itself, and by a registration or another release that found the pointer
        sealed by a release that stalled. None when there is nothing to hand over.
        """
        if pointer.release_id is None or pointer.sealed_at is None:
            return None  # not sealed
        if pointer.counter == 0:
            # Sealed empty by a release that stopped before undoing its seal: nothing to release.
            self._undo_empty_seal(pointer)
            return None
        record = self._storage.releases.bind(pointer.release_id, pointer)
        if record.batch_id != pointer.batch_id:
            # This release_id already names another batch; it must not take this one too.
            self._storage.pointer.unseal(pointer)
            return None
        self._retire(record)
        return record

    def _bind(self, release_id: str) -> ReleaseRecord:
        """Seal the collecting batch for `release_id` and hand it over; the release record that results."""
        while True:
            sealed = self._storage.pointer.seal(release_id, self._clock())
            if sealed is not None:
                if sealed.counter == 0:  # opened but nothing numbered: nothing to release
                    self._undo_empty_seal(sealed)
                    raise NoCollectingBatch()
                record = self.complete_hand_over(sealed) or self._storage.releases.get_release(release_id)
                if record is not None:
                    return record
                continue
            current = self._storage.pointer.get()
            if current is not None and current.release_id not in (None, release_id):
                self.complete_hand_over(current)  # another release is mid-way: finish it, then look again
                continue
            record = self._storage.releases.get_release(release_id)  # a concurrent call with our id bound it?
            if record is not None:
                return record
            if current is None:
                raise NoCollectingBatch()
            # The pointer appeared or changed meanwhile: seal it.

    def _undo_empty_seal(self, sealed: Pointer) -> None:
        if self._storage.pointer.unseal(sealed):
            self._telemetry.rare(
                "EmptySealsUndone",
                "A seal of a batch with no session was undone (nothing to release)",
                batch_id=sealed.batch_id,
                release_id=sealed.release_id or "",
            )

    def _retire(self, record: ReleaseRecord) -> None:
        """Record the released batch, then delete the pointer if it is still the one sealed for it."""
        self._storage.batches.put(record)
        self._storage.pointer.delete_sealed(record.release_id, record.batch_id)

    def _settle(self, record: ReleaseRecord) -> ReleaseRecord:
        """Make the batch final: every number up to the frozen counter holds a session or a tombstone."""
        walks = self._fanout.map(lambda shard: walk_shard(self._storage, record, shard), range(record.shards))
        session_count = sum(walk.sessions for walk in walks)
        erased_sessions = sum(walk.erased for walk in walks)  # an erasure ran before settle (contract 17.4)
        missing = [place for walk in walks for place in walk.missing]
        if missing:
            # Numbers handed out just before the seal are usually written within a few milliseconds.
            wait_ms = record.released_at + self._settings.release_settle_grace_ms - self._clock()
            if wait_ms > 0:
                self._sleep(wait_ms / 1000)
            closed = self._fanout.map(self._storage.sessions.put_tombstone, missing)
            tombstones = sum(closed)
            session_count += len(missing) - tombstones
            if tombstones:
                self._telemetry.rare(
                    "TombstonesWritten",
                    "Settle closed numbers that were handed out but never written",
                    batch_id=record.batch_id,
                    release_id=record.release_id,
                    tombstones=tombstones,
                )
        # The batch record first: once the release record is settled, the release is announced.
        self._storage.batches.record_session_count(record.batch_id, session_count, erased_sessions)
        self._storage.releases.record_session_count(record, session_count)
        return record.settled(session_count)


@dataclass
class ShardWalk:
    """One shard of a batch read at settle: the sessions in it, its erased tombstones (sessions an erasure
    removed), and the numbers of it nobody wrote."""

    sessions: int = 0
    erased: int = 0
    missing: list[Place] = field(default_factory=list)


def walk_shard(storage: Stores, record: ReleaseRecord, shard: int) -> ShardWalk:
    """Walk one shard's slots in order: its numbers are shard, shard + S, ... (1 onward), up to the last
    number of the batch; those without a slot are missing. Memory holds only what is missing."""
    walk = ShardWalk()
    expected = shard if shard > 0 else record.shards
    partition = partition_of(record.batch_id, expected, record.shards)
    for slot in storage.sessions.slots(partition):
        while expected < slot.session_number:
            walk.missing.append(Place(record.batch_id, expected, record.shards))
            expected += record.shards
        walk.sessions += 0 if slot.is_tombstone else 1
        walk.erased += slot.is_erased
        expected = slot.session_number + record.shards
    while expected <= record.last_number:
        walk.missing.append(Place(record.batch_id, expected, record.shards))
        expected += record.shards
    return walk
