"""What the domain asks of the world, as ports: one Protocol per table gateway and per outside service.

The domain imports these, never `clickstream.storage`; the gateways of `clickstream.storage` satisfy them
structurally (no inheritance), and `service.py` / `runtime.py` wire the real ones. Records go in and come
out (`clickstream.records`); no boto3 type appears here, so the domain imports without boto3 and the
protocols can be tested over in-memory ports (tests/support/memory.py).

A conditional write whose condition does not hold answers False or None, as each method says, never an
exception; `PointerStore.next_block` raises `PointerUnavailable`, and a store that cannot answer raises
`StorageUnavailable` (clickstream.errors).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

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
    ReleaseRecord,
    ShardPage,
    Slot,
    StoredEvent,
    StoredSession,
    StoredTask,
)


class ClaimStore(Protocol):
    """The claim that makes a session_id register once, and the place it registered in."""

    def claim(self, session_id: str, token: str, now: int, place: Place, user_key: str | None = None) -> bool: ...
    def get(self, session_id: str) -> Claim | None: ...
    def stored(self, session_id: str) -> Claim | None:
        """The claim as stored, even past its expiry (for an erasure: TTL deletes it up to days later)."""
        ...

    def user_sessions(self, user_key: str, limit: int, after: str | None = None) -> tuple[list[str], str | None]:
        """Session ids claimed with `user_key` (domain.pseudonyms), in session_id order, `limit` at a time
        after the session_id `after`; with the session_id to continue after, None on the last page."""
        ...

    def take_over(self, session_id: str, old_token: str, new_token: str, now: int) -> Claim | None: ...
    def assign(self, session_id: str, token: str, place: Place) -> bool: ...
    def mark_registered(self, session_id: str, place: Place) -> bool: ...
    def expire(self, session_id: str, batch_id: str, at_seconds: int) -> None: ...
    def delete(self, session_id: str, place: Place | None) -> bool:
        """Delete the claim if it still places the session at `place` (an erasure); False when it does not."""
        ...


class PointerStore(Protocol):
    """The collecting pointer: the open batch, its shard count and its counter."""

    def next_block(self, size: int) -> NumberBlock: ...
    def get(self) -> Pointer | None: ...
    def open_batch(self, batch_id: str, now: int, shards: int) -> bool: ...
    def seal(self, release_id: str, now: int) -> Pointer | None: ...
    def delete_sealed(self, release_id: str, batch_id: str) -> None: ...
    def unseal(self, sealed: Pointer) -> bool: ...


class ReleaseStore(Protocol):
    """Release records: the batch each release_id names, bound once."""

    def bind(self, release_id: str, sealed: Pointer) -> ReleaseRecord: ...
    def get_release(self, release_id: str) -> ReleaseRecord | None: ...
    def record_session_count(self, release: ReleaseRecord, session_count: int) -> None: ...


class BatchRecordStore(Protocol):
    """Released-batch records and the state of each batch's dataset."""

    def put(self, release: ReleaseRecord) -> None: ...
    def get(self, batch_id: str) -> BatchRecord | None: ...
    def record_session_count(self, batch_id: str, session_count: int, erased_sessions: int = 0) -> None:
        """The batch is settled: its sessions, and its erased tombstones beside them (contract 17.4)."""
        ...

    def newest(self, limit: int, before: str | None) -> tuple[list[BatchRecord], bool]: ...
    def claim_export(
        self, batch_id: str, claim: Dataset, stale_before: int, held_before: int = 0
    ) -> BatchRecord | None: ...
    def finish_export(self, batch_id: str, dataset: Dataset) -> bool: ...
    def fail_export(self, batch_id: str, export_id: str) -> None: ...
    def account_erased(self, batch_id: str, session_count: int, erased_sessions: int) -> bool:
        """Set a settled batch's session_count and erased_sessions from a recount, unless erased_sessions
        would decrease (contract 17.4); False when not applied."""
        ...

    def release_rewrite(self, batch_id: str, erasure_id: str) -> None: ...
    def hold_rewrite(self, batch_id: str, erasure_id: str, now: int, stale_before: int) -> bool:
        """An erasure takes the exported dataset to rewrite it: one at a time (repeatable by the same one,
        a hold taken before `stale_before` is given up); False when another holds it or it is not exported."""
        ...

    def rewrite_dataset(self, batch_id: str, dataset: Dataset, erasure_id: str, removed: int) -> bool:
        """Record the rewritten dataset once per erasure (conditional on status exported and the hold),
        moving `removed` sessions from session_count to erased_sessions; release the hold. Repeatable."""
        ...


class ExperimentStore(Protocol):
    """Which batches counted an experiment, and one batch's sums of it (contract 15.3)."""

    def add_batch(self, experiment_id: str, batch_id: str) -> None: ...
    def batches_of(self, experiment_id: str) -> list[str]: ...
    def sums_in(self, batch_id: str, experiment_id: str) -> BatchExperiment: ...


class SlotStore(Protocol):
    """Sessions and tombstones in their slots, keyed by (partition, session_number)."""

    def put_session(self, session: StoredSession, shards: int) -> bool: ...
    def put_tombstone(self, place: Place) -> bool: ...
    def erase(self, place: Place, erasure_id: str) -> None:
        """Replace what the slot holds by an erased tombstone (contract 17.4): the number stays a gap, never
        reused; a slot already erased keeps its first erasure. Repeatable."""
        ...

    def get_slot(self, place: Place) -> Slot | None: ...
    def get_session(self, place: Place) -> StoredSession | None: ...
    def set_irrelevant(self, place: Place) -> bool: ...
    def shard_page(
        self, batch_id: str, partition: str, after_number: int, limit: int, start: Any = None
    ) -> ShardPage: ...
    def slots_between(self, partition: str, first: int, last: int) -> Iterable[Slot]: ...
    def expire(self, place: Place, at_seconds: int) -> None: ...
    def slots(self, partition: str) -> Iterable[Slot]: ...


class EventStore(Protocol):
    """Events of a session, stored once per event_id, read in time order."""

    def put(self, session_id: str, event: StoredEvent) -> bool: ...
    def first(self, session_id: str, limit: int) -> list[StoredEvent]: ...
    def all(self, session_id: str) -> list[StoredEvent]: ...
    def read(self, session_id: str, limit: int, after: str | None = None) -> EventsRead: ...
    def exist_for(self, session_id: str) -> bool: ...
    def ids(self, session_id: str) -> list[str]: ...
    def expire(self, session_id: str, event_id: str, at_seconds: int) -> None: ...
    def delete_all(self, session_id: str) -> int:
        """Delete every event of the session (expired ones too); how many there were. Repeatable."""
        ...


class TaskStore(Protocol):
    """One improvement task per session; `oldest` pages by `records.task_cursor`."""

    def put_pending(self, task: StoredTask, expires_at: int | None) -> bool: ...
    def complete(
        self, session_id: str, status: str, completed_at: int, error: str | None, requested_at: int | None
    ) -> StoredTask | None: ...
    def get(self, session_id: str) -> StoredTask | None: ...
    def oldest(self, status: str, limit: int, after: str | None) -> tuple[list[StoredTask], bool]: ...
    def expire(self, session_id: str, batch_id: str, at_seconds: int) -> None: ...
    def delete(self, session_id: str, batch_id: str, session_number: int) -> bool:
        """Delete the session's task if it is that session's; False when there is none."""
        ...


class ErasureStore(Protocol):
    """Erasure requests (contract 17.3): one open erasure per user, and the users being erased now."""

    def request(self, erasure: Erasure) -> Erasure:
        """Record `erasure` (pending) unless one of the same user is open; the erasure that stands: ours, or
        the open one. Repeatable after a crash half-way."""
        ...

    def get(self, erasure_id: str) -> Erasure | None: ...
    def begin(self, erasure_id: str, now: int) -> Erasure | None:
        """pending -> running (started_at set once), and the user's key among the active ones (the
        registration guard); the erasure as it stands (a closed one unchanged), None when unknown."""
        ...

    def record_counts(self, erasure_id: str, counts: ErasureCounts) -> None:
        """Set the counts given (None: unchanged) on an open erasure."""
        ...

    def close(self, erasure_id: str, status: str, now: int, error: str | None = None) -> Erasure | None:
        """done | failed: completed_at, the stored user id removed (only the hash stays), the user's open
        lock and active key removed. Repeatable; None when unknown."""
        ...

    def active_user_keys(self) -> frozenset[str]:
        """The user keys of the erasures running now (registrations with them are refused)."""
        ...


class UserDatasetStore(Protocol):
    """The exported batches that hold a user's sessions after the batch's items expired (retention): the
    claims, and with them the user index, are gone then, the dataset keeps the sessions."""

    def add(self, user_key: str, batch_id: str) -> None: ...
    def batches_of(self, user_key: str) -> list[str]: ...
    def remove(self, user_key: str, batch_id: str) -> None: ...


class Stores(Protocol):
    """Every table the domain reads and writes, as the Context carries them."""

    @property
    def claims(self) -> ClaimStore: ...
    @property
    def pointer(self) -> PointerStore: ...
    @property
    def releases(self) -> ReleaseStore: ...
    @property
    def batches(self) -> BatchRecordStore: ...
    @property
    def sessions(self) -> SlotStore: ...
    @property
    def events(self) -> EventStore: ...
    @property
    def tasks(self) -> TaskStore: ...
    @property
    def experiments(self) -> ExperimentStore: ...
    @property
    def erasures(self) -> ErasureStore: ...
    @property
    def user_datasets(self) -> UserDatasetStore: ...


class Lake(Protocol):
    """Where datasets are written: keys relative to the lake's root."""

    def uri(self, key: str) -> str:
        """The object's address for consumers (s3://... or file://...)."""

    def put_file(self, key: str, path: Path) -> None:
        """Store the file at `path` under `key` (replacing what is there)."""

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes | None:
        """The object's bytes; None when there is none."""

    def fetch(self, key: str, path: Path) -> bool:
        """Copy the object to `path`; False when there is none."""

    def delete_noncurrent_versions(self, folder: str) -> int:
        """Delete every version that is not current, and every delete marker, of the objects under `folder`
        (ends with "/"); an object whose latest version is a delete marker loses them all (it is deleted:
        only its history is left). An erasure's rewrite replaced objects there: their older versions hold
        what was erased. How many went."""

    def keys(self, prefix: str) -> list[str]:
        """The keys of the objects under `prefix` (a folder: ends with "/"), ascending."""

    def remove(self, key: str) -> int:
        """The object gone, with every version of it (a part a rewrite no longer has); how many went."""


class KeySource(Protocol):
    """The key user ids are pseudonymised with (contract 17): the stack's secret, read once per container."""

    def key(self) -> bytes: ...


class ReportPages(Protocol):
    """Renders an export's report page (contract 16): from its manifest and the earlier exported releases,
    newest first, each `{"batch_id", "release_id", "released_at", "metrics"}`. HTML, UTF-8."""

    def render(self, manifest: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> bytes: ...


class Bus(Protocol):
    """The event bus announcements go to; `put` raises StorageUnavailable when the bus did not take it."""

    def put(self, detail_type: str, detail: dict[str, Any]) -> None: ...


class ErasureStarter(Protocol):
    """Starts the erasure state machine for one erasure; False when it was started already. Raises
    StorageUnavailable when it could not be started now."""

    def start(self, erasure_id: str) -> bool: ...


class Queue(Protocol):
    """The improvement tasks queue; `send` raises StorageUnavailable when the queue did not take it."""

    def send(self, task: dict[str, Any]) -> None: ...
