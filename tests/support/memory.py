"""In-memory implementations of the domain's ports (clickstream/domain/ports.py), for protocol tests without
moto. Each write keeps the conditional semantics of its DynamoDB gateway in clickstream/storage: the same
condition, the same answer when it does not hold (False, None, or `PointerUnavailable`), one lock per store
so that each write is atomic, as a single-item DynamoDB write is."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from clickstream.records import (
    BatchExperiment,
    BatchRecord,
    Claim,
    Dataset,
    Erasure,
    ErasureCounts,
    EventsRead,
    NumberBlock,
    Place,
    Pointer,
    PointerUnavailable,
    ReleaseRecord,
    ShardPage,
    Slot,
    StoredEvent,
    StoredSession,
    StoredTask,
    partition_of,
    task_cursor,
)


class MissingItem(Exception):
    """An update whose condition names an existing item found none (DynamoDB: ConditionalCheckFailed)."""


@dataclass
class MemoryClaims:
    items: dict[str, Claim] = field(default_factory=dict)
    expiries: dict[str, int] = field(default_factory=dict)
    user_keys: dict[str, str] = field(default_factory=dict)  # session_id -> user_key, as the sparse index
    lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self, session_id: str, token: str, now: int, place: Place, user_key: str | None = None) -> bool:
        with self.lock:
            if session_id in self.items:
                return False
            self.items[session_id] = Claim(session_id, "assigned", token, now, place, user_key)
            if user_key is not None:
                self.user_keys[session_id] = user_key
            return True

    def get(self, session_id: str) -> Claim | None:
        return self.items.get(session_id)

    def stored(self, session_id: str) -> Claim | None:
        return self.items.get(session_id)  # expiries are kept apart: every claim is as stored

    def user_sessions(self, user_key: str, limit: int, after: str | None = None) -> tuple[list[str], str | None]:
        found = sorted(sid for sid, key in self.user_keys.items() if key == user_key and (after is None or sid > after))
        page = found[:limit]
        return page, (page[-1] if len(found) > limit else None)

    def take_over(self, session_id: str, old_token: str, new_token: str, now: int) -> Claim | None:
        with self.lock:
            claim = self.items.get(session_id)
            if claim is None or claim.claim_token != old_token or claim.state == "registered":
                return None
            taken = self.items[session_id] = replace(claim, claim_token=new_token, claimed_at=now)
            return taken

    def assign(self, session_id: str, token: str, place: Place) -> bool:
        with self.lock:
            claim = self.items.get(session_id)
            if claim is None or claim.claim_token != token or claim.state == "registered":
                return False
            self.items[session_id] = replace(claim, state="assigned", place=place)
            return True

    def mark_registered(self, session_id: str, place: Place) -> bool:
        with self.lock:  # the condition compares batch and number only, as storage's does
            claim = self.items.get(session_id)
            if claim is None or claim.place is None:
                return False
            if (claim.place.batch_id, claim.place.session_number) != (place.batch_id, place.session_number):
                return False
            self.items[session_id] = replace(claim, state="registered")
            return True

    def expire(self, session_id: str, batch_id: str, at_seconds: int) -> None:
        claim = self.items.get(session_id)
        if claim is not None and claim.place is not None and claim.place.batch_id == batch_id:
            self.expiries[session_id] = at_seconds

    def delete(self, session_id: str, place: Place | None) -> bool:
        with self.lock:
            claim = self.items.get(session_id)
            if claim is None:
                return False
            if place is None and claim.place is not None:
                return False
            if place is not None and (claim.place is None or not _same_number(claim.place, place)):
                return False
            del self.items[session_id]
            self.user_keys.pop(session_id, None)
            self.expiries.pop(session_id, None)
            return True


def _same_number(one: Place, other: Place) -> bool:
    return (one.batch_id, one.session_number) == (other.batch_id, other.session_number)


@dataclass
class MemoryPointer:
    pointer: Pointer | None = None
    blocks: int = 0  # ADDs taken, as the pointer's write count
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_block(self, size: int) -> NumberBlock:
        with self.lock:
            current = self.pointer
            if current is None or current.release_id is not None:
                raise PointerUnavailable(current)
            self.pointer = replace(current, counter=current.counter + size)
            self.blocks += 1
        return NumberBlock(current.batch_id, current.shards, current.counter + 1, current.counter + size)

    def get(self) -> Pointer | None:
        return self.pointer

    def open_batch(self, batch_id: str, now: int, shards: int) -> bool:
        with self.lock:
            if self.pointer is not None:
                return False
            self.pointer = Pointer(batch_id, 0, now, shards, None, None)
            return True

    def seal(self, release_id: str, now: int) -> Pointer | None:
        with self.lock:
            current = self.pointer
            if current is None or current.release_id not in (None, release_id):
                return None
            sealed = self.pointer = replace(current, release_id=release_id, sealed_at=current.sealed_at or now)
            return sealed

    def delete_sealed(self, release_id: str, batch_id: str) -> None:
        with self.lock:
            current = self.pointer
            if current is not None and (current.release_id, current.batch_id) == (release_id, batch_id):
                self.pointer = None

    def unseal(self, sealed: Pointer) -> bool:
        if sealed.release_id is None or sealed.sealed_at is None:
            return False
        with self.lock:
            current = self.pointer
            seen = (sealed.release_id, sealed.batch_id, sealed.counter, sealed.sealed_at)
            if current is None or (current.release_id, current.batch_id, current.counter, current.sealed_at) != seen:
                return False
            self.pointer = replace(current, release_id=None, sealed_at=None)
            return True


@dataclass
class MemoryReleases:
    items: dict[str, ReleaseRecord] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bind(self, release_id: str, sealed: Pointer) -> ReleaseRecord:
        with self.lock:
            if release_id not in self.items:
                self.items[release_id] = ReleaseRecord(
                    release_id,
                    sealed.batch_id,
                    sealed.sealed_at or 0,
                    sealed.counter,
                    sealed.shards,
                    None,
                    sealed.opened_at,
                )
            return self.items[release_id]

    def get_release(self, release_id: str) -> ReleaseRecord | None:
        return self.items.get(release_id)

    def record_session_count(self, release: ReleaseRecord, session_count: int) -> None:
        with self.lock:
            if release.release_id not in self.items:
                raise MissingItem(release.release_id)
            self.items[release.release_id] = self.items[release.release_id].settled(session_count)


@dataclass
class MemoryBatchRecords:
    items: dict[str, BatchRecord] = field(default_factory=dict)
    rewrites: dict[str, tuple[str, int]] = field(default_factory=dict)  # batch -> (erasure holding it, since)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, release: ReleaseRecord) -> None:
        with self.lock:
            if release.batch_id not in self.items:
                self.items[release.batch_id] = BatchRecord(
                    release.batch_id,
                    release.release_id,
                    release.released_at,
                    release.last_number,
                    release.shards,
                    None,
                    release.opened_at,
                )

    def get(self, batch_id: str) -> BatchRecord | None:
        return self.items.get(batch_id)

    def record_session_count(self, batch_id: str, session_count: int, erased_sessions: int = 0) -> None:
        with self.lock:
            if batch_id not in self.items:
                raise MissingItem(batch_id)
            self.items[batch_id] = replace(
                self.items[batch_id], session_count=session_count, erased_sessions=erased_sessions
            )

    def newest(self, limit: int, before: str | None) -> tuple[list[BatchRecord], bool]:
        ids = sorted((batch_id for batch_id in self.items if before is None or batch_id < before), reverse=True)
        return [self.items[batch_id] for batch_id in ids[:limit]], len(ids) > limit

    def claim_export(
        self, batch_id: str, claim: Dataset, stale_before: int, held_before: int = 0
    ) -> BatchRecord | None:
        with self.lock:
            record = self.items.get(batch_id)
            if record is None or record.session_count is None or not _may_take(record.dataset, claim, stale_before):
                return None
            holder = self.rewrites.get(batch_id)
            if record.dataset.status == "failed" and holder is not None and holder[1] >= held_before:
                return None  # an erasure removes what the failed export left
            fence = record.dataset.fenced_at or claim.events_until or 0  # set once (if_not_exists)
            dataset = replace(
                record.dataset,
                status="exporting",
                export_id=claim.export_id or "",
                started_at=claim.started_at or 0,
                events_until=fence,
                fenced_at=fence,
            )
            taken = self.items[batch_id] = replace(record, dataset=dataset)
            return taken

    def finish_export(self, batch_id: str, dataset: Dataset) -> bool:
        with self.lock:
            record = self.items.get(batch_id)
            held = record is not None and record.dataset.export_id == (dataset.export_id or "")
            if record is None or not held or record.dataset.status not in ("exporting", "exported"):
                return False
            finished = replace(
                record.dataset,
                status="exported",
                exported_at=dataset.exported_at or 0,
                session_count=dataset.session_count or 0,
                event_count=dataset.event_count or 0,
                parts=dataset.parts or 0,
                metrics=dataset.metrics or "{}",
                experiment_sums=dataset.experiment_sums or record.dataset.experiment_sums,
                experiments_truncated=dataset.experiments_truncated,
            )
            self.items[batch_id] = replace(record, dataset=finished)
            return True

    def release_rewrite(self, batch_id: str, erasure_id: str) -> None:
        with self.lock:
            if self.rewrites.get(batch_id, ("", 0))[0] == erasure_id:
                del self.rewrites[batch_id]

    def hold_rewrite(self, batch_id: str, erasure_id: str, now: int, stale_before: int) -> bool:
        with self.lock:
            record = self.items.get(batch_id)
            if record is None or record.dataset.status not in ("exported", "failed"):
                return False
            holder = self.rewrites.get(batch_id)
            if holder is not None and holder[0] != erasure_id and holder[1] >= stale_before:
                return False
            self.rewrites[batch_id] = (erasure_id, now)
            return True

    def rewrite_dataset(self, batch_id: str, dataset: Dataset, erasure_id: str, removed: int) -> bool:
        with self.lock:
            record = self.items.get(batch_id)
            if record is None or record.dataset.status != "exported":
                return False
            if erasure_id in record.erasures:
                if self.rewrites.get(batch_id, ("",))[0] == erasure_id:
                    del self.rewrites[batch_id]
                return True
            if self.rewrites.get(batch_id, ("",))[0] != erasure_id:
                return False
            del self.rewrites[batch_id]
            rewritten = replace(
                dataset,
                status="exported",
                export_id=record.dataset.export_id,
                started_at=record.dataset.started_at,
                events_until=record.dataset.events_until,
                fenced_at=record.dataset.fenced_at,
            )
            self.items[batch_id] = replace(
                record,
                dataset=rewritten,
                session_count=(record.session_count or 0) - removed,
                erased_sessions=record.erased_sessions + removed,
                erasures=record.erasures | {erasure_id},
            )
            return True

    def fail_export(self, batch_id: str, export_id: str) -> None:
        with self.lock:
            record = self.items.get(batch_id)
            if record is not None and (record.dataset.export_id, record.dataset.status) == (export_id, "exporting"):
                self.items[batch_id] = replace(record, dataset=replace(record.dataset, status="failed"))

    def account_erased(self, batch_id: str, session_count: int, erased_sessions: int) -> bool:
        with self.lock:
            record = self.items.get(batch_id)
            if record is None or record.session_count is None or record.erased_sessions > erased_sessions:
                return False
            self.items[batch_id] = replace(record, session_count=session_count, erased_sessions=erased_sessions)
            return True


def _may_take(dataset: Dataset, claim: Dataset, stale_before: int) -> bool:
    """storage/batch_records.py's condition: no export yet, a failed one, or this one or a stale one holds it."""
    if dataset.status in ("pending", "failed"):
        return True
    if dataset.status != "exporting":
        return False
    return dataset.export_id == (claim.export_id or "") or (dataset.started_at or 0) < stale_before


@dataclass
class MemorySlots:
    """Slots by partition: number -> the session, or None for a tombstone."""

    partitions: dict[str, dict[int, StoredSession | None]] = field(default_factory=dict)
    expiries: dict[tuple[str, int], int] = field(default_factory=dict)
    erased: dict[tuple[str, int], str] = field(default_factory=dict)  # (partition, number) -> erasure id
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _slots(self, partition: str) -> dict[int, StoredSession | None]:
        return self.partitions.setdefault(partition, {})

    def put_session(self, session: StoredSession, shards: int) -> bool:
        with self.lock:
            slots = self._slots(partition_of(session.batch_id, session.session_number, shards))
            if session.session_number in slots:
                return False
            slots[session.session_number] = session
            return True

    def put_tombstone(self, place: Place) -> bool:
        with self.lock:
            slots = self._slots(place.partition)
            if place.session_number not in slots:
                slots[place.session_number] = None
                return True
            return slots[place.session_number] is None  # a tombstone already: a concurrent settle's

    def erase(self, place: Place, erasure_id: str) -> None:
        with self.lock:
            self._slots(place.partition)[place.session_number] = None
            self.erased.setdefault((place.partition, place.session_number), erasure_id)

    def _slot(self, partition: str, number: int) -> Slot:
        session = self._slots(partition)[number]
        erased_by = self.erased.get((partition, number))
        return Slot(number, None if session is None else session.session_id, erased_by)

    def get_slot(self, place: Place) -> Slot | None:
        if place.session_number not in self._slots(place.partition):
            return None
        return self._slot(place.partition, place.session_number)

    def get_session(self, place: Place) -> StoredSession | None:
        session = self._slots(place.partition).get(place.session_number)
        return None if session is None else replace(session, batch_id=place.batch_id)

    def set_irrelevant(self, place: Place) -> bool:
        with self.lock:
            slots = self._slots(place.partition)
            session = slots.get(place.session_number)
            if session is None:
                return False
            slots[place.session_number] = replace(session, is_irrelevant=True)
            return True

    def shard_page(self, batch_id: str, partition: str, after_number: int, limit: int, start: Any = None) -> ShardPage:
        """Like one Query with Limit: at most `limit` slots read (tombstones count), a continuation when it
        stopped at the limit."""
        after = after_number if start is None else int(start["session_number"])
        slots = self._slots(partition)
        read = sorted(number for number in slots if number > after)[:limit]
        sessions = [replace(session, batch_id=batch_id) for number in read if (session := slots[number]) is not None]
        erased = tuple(number for number in read if (partition, number) in self.erased)
        return ShardPage(sessions, {"session_number": read[-1]} if len(read) == limit else None, erased)

    def slots_between(self, partition: str, first: int, last: int) -> Iterator[Slot]:
        return (slot for slot in self.slots(partition) if first <= slot.session_number <= last)

    def expire(self, place: Place, at_seconds: int) -> None:
        if place.session_number in self._slots(place.partition):
            self.expiries[(place.partition, place.session_number)] = at_seconds

    def slots(self, partition: str) -> Iterator[Slot]:
        for number in sorted(dict(self._slots(partition))):
            yield self._slot(partition, number)


def _chronological(event: StoredEvent) -> str:
    return f"{event.created_at:013d}#{event.event_id}"


@dataclass
class MemoryEvents:
    items: dict[str, dict[str, StoredEvent]] = field(default_factory=dict)
    expiries: dict[tuple[str, str], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, session_id: str, event: StoredEvent) -> bool:
        with self.lock:
            events = self.items.setdefault(session_id, {})
            if event.event_id in events:
                return False
            events[event.event_id] = event
            return True

    def first(self, session_id: str, limit: int) -> list[StoredEvent]:
        return self.read(session_id, limit).events

    def all(self, session_id: str) -> list[StoredEvent]:
        return sorted(self.items.get(session_id, {}).values(), key=_chronological)

    def read(self, session_id: str, limit: int, after: str | None = None) -> EventsRead:
        events = [event for event in self.all(session_id) if after is None or _chronological(event) > after]
        taken = events[: max(limit, 0)]
        last_key = _chronological(taken[-1]) if taken else None
        return EventsRead(taken, last_key if len(taken) == limit else None)

    def exist_for(self, session_id: str) -> bool:
        return bool(self.items.get(session_id))

    def ids(self, session_id: str) -> list[str]:
        return sorted(self.items.get(session_id, {}))

    def expire(self, session_id: str, event_id: str, at_seconds: int) -> None:
        if event_id in self.items.get(session_id, {}):
            self.expiries[(session_id, event_id)] = at_seconds

    def delete_all(self, session_id: str) -> int:
        with self.lock:
            events = self.items.pop(session_id, {})
            for event_id in events:
                self.expiries.pop((session_id, event_id), None)
            return len(events)


@dataclass
class MemoryTasks:
    items: dict[str, StoredTask] = field(default_factory=dict)
    expiries: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put_pending(self, task: StoredTask, expires_at: int | None) -> bool:
        with self.lock:
            current = self.items.get(task.session_id)
            same_session = current is not None and (current.batch_id, current.session_number) == (
                task.batch_id,
                task.session_number,
            )
            if current is not None and current.status == "pending" and same_session:
                return False
            self.items[task.session_id] = StoredTask(
                task.session_id, task.batch_id, task.session_number, "pending", task.requested_at
            )
            if expires_at is None:
                self.expiries.pop(task.session_id, None)
            else:
                self.expiries[task.session_id] = expires_at
            return True

    def complete(
        self, session_id: str, status: str, completed_at: int, error: str | None, requested_at: int | None
    ) -> StoredTask | None:
        with self.lock:
            task = self.items.get(session_id)
            if task is None or task.status != "pending":
                return None
            if requested_at is not None and task.requested_at != requested_at:
                return None
            done = replace(
                task, status=status, completed_at=completed_at, error=error if error is not None else task.error
            )
            self.items[session_id] = done
            return done

    def get(self, session_id: str) -> StoredTask | None:
        return self.items.get(session_id)

    def oldest(self, status: str, limit: int, after: str | None) -> tuple[list[StoredTask], bool]:
        tasks = sorted(
            (task for task in self.items.values() if task.status == status),
            key=lambda task: task_cursor(task.requested_at, task.session_id),
        )
        tasks = [task for task in tasks if after is None or task_cursor(task.requested_at, task.session_id) > after]
        return tasks[:limit], len(tasks) > limit

    def expire(self, session_id: str, batch_id: str, at_seconds: int) -> None:
        task = self.items.get(session_id)
        if task is not None and task.batch_id == batch_id:
            self.expiries[session_id] = at_seconds

    def delete(self, session_id: str, batch_id: str, session_number: int) -> bool:
        with self.lock:
            task = self.items.get(session_id)
            if task is None or (task.batch_id, task.session_number) != (batch_id, session_number):
                return False
            del self.items[session_id]
            self.expiries.pop(session_id, None)
            return True


@dataclass
class MemoryExperiments:
    """`experiment#<id>` items: the batches named for each experiment; the sums are on the batch records."""

    batches: MemoryBatchRecords
    named: dict[str, set[str]] = field(default_factory=dict)

    def add_batch(self, experiment_id: str, batch_id: str) -> None:
        self.named.setdefault(experiment_id, set()).add(batch_id)

    def batches_of(self, experiment_id: str) -> list[str]:
        return sorted(self.named.get(experiment_id, set()))

    def sums_in(self, batch_id: str, experiment_id: str) -> BatchExperiment:
        record = self.batches.get(batch_id)
        if record is None:
            return BatchExperiment(batch_id, exported=False, sums=None)
        return BatchExperiment(
            batch_id, record.dataset.status == "exported", record.dataset.experiment_sums.get(experiment_id)
        )


@dataclass
class MemoryErasures:
    """Erasure records, the open erasure of each user, and the users being erased now."""

    items: dict[str, Erasure] = field(default_factory=dict)
    open_by_user: dict[str, str] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, erasure: Erasure) -> Erasure:
        with self.lock:
            standing = self.open_by_user.setdefault(erasure.user_key, erasure.erasure_id)
            return self.items.setdefault(standing, erasure)

    def get(self, erasure_id: str) -> Erasure | None:
        return self.items.get(erasure_id)

    def begin(self, erasure_id: str, now: int) -> Erasure | None:
        with self.lock:
            erasure = self.items.get(erasure_id)
            if erasure is None or not erasure.is_open:
                return erasure
            erasure = self.items[erasure_id] = replace(erasure, status="running", started_at=erasure.started_at or now)
            self.active.add(erasure.user_key)
            return erasure

    def record_counts(self, erasure_id: str, counts: ErasureCounts) -> None:
        with self.lock:
            erasure = self.items.get(erasure_id)
            if erasure is not None and erasure.is_open:
                given = {name: value for name, value in vars(counts).items() if value is not None}
                self.items[erasure_id] = replace(erasure, **given)

    def close(self, erasure_id: str, status: str, now: int, error: str | None = None) -> Erasure | None:
        with self.lock:
            erasure = self.items.get(erasure_id)
            if erasure is None:
                return None
            if erasure.is_open:
                erasure = replace(erasure, status=status, completed_at=now, error=error, stored_user_id=None)
                self.items[erasure_id] = erasure
            if self.open_by_user.get(erasure.user_key) == erasure_id:
                del self.open_by_user[erasure.user_key]
            if erasure.user_key not in self.open_by_user:  # a newer erasure of the user keeps its guard
                self.active.discard(erasure.user_key)
            return erasure

    def active_user_keys(self) -> frozenset[str]:
        return frozenset(self.active)


@dataclass
class MemoryUserDatasets:
    items: set[tuple[str, str]] = field(default_factory=set)

    def add(self, user_key: str, batch_id: str) -> None:
        self.items.add((user_key, batch_id))

    def batches_of(self, user_key: str) -> list[str]:
        return sorted(batch for key, batch in self.items if key == user_key)

    def remove(self, user_key: str, batch_id: str) -> None:
        self.items.discard((user_key, batch_id))


@dataclass
class MemoryStores:
    """Every table, in memory (satisfies `clickstream.domain.ports.Stores`)."""

    claims: MemoryClaims = field(default_factory=MemoryClaims)
    pointer: MemoryPointer = field(default_factory=MemoryPointer)
    releases: MemoryReleases = field(default_factory=MemoryReleases)
    batches: MemoryBatchRecords = field(default_factory=MemoryBatchRecords)
    sessions: MemorySlots = field(default_factory=MemorySlots)
    events: MemoryEvents = field(default_factory=MemoryEvents)
    tasks: MemoryTasks = field(default_factory=MemoryTasks)
    experiments: MemoryExperiments = field(init=False)
    erasures: MemoryErasures = field(default_factory=MemoryErasures)
    user_datasets: MemoryUserDatasets = field(default_factory=MemoryUserDatasets)

    def __post_init__(self) -> None:
        self.experiments = MemoryExperiments(self.batches)


@dataclass
class MemoryLake:
    objects: dict[str, bytes] = field(default_factory=dict)

    def uri(self, key: str) -> str:
        return f"memory://{key}"

    def put_file(self, key: str, path: Path) -> None:
        self.objects[key] = path.read_bytes()

    def put_bytes(self, key: str, data: bytes) -> None:
        self.objects[key] = data

    def get_bytes(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def fetch(self, key: str, path: Path) -> bool:
        if key not in self.objects:
            return False
        path.write_bytes(self.objects[key])
        return True

    def delete_noncurrent_versions(self, folder: str) -> int:
        return 0  # keeps no versions

    def keys(self, prefix: str) -> list[str]:
        return sorted(key for key in self.objects if key.startswith(prefix))

    def remove(self, key: str) -> int:
        return 0 if self.objects.pop(key, None) is None else 1


@dataclass
class MemoryBus:
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def put(self, detail_type: str, detail: dict[str, Any]) -> None:
        self.events.append((detail_type, detail))


@dataclass
class MemoryQueue:
    messages: list[dict[str, Any]] = field(default_factory=list)

    def send(self, task: dict[str, Any]) -> None:
        self.messages.append(task)
