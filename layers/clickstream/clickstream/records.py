"""What the tables hold, as the domain sees it. No boto3 here, so views and the domain import these freely."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

POINTER_KEY = "pointer"

# The task polling cursor (`GET /improvement/tasks?after=`): a task's position among those of its status,
# `<requested_at, 13 digits>#<32 hex digits of the session_id's SHA-256>`, as `next` gives it; the tasks
# table sorts its index by the same text (storage/tasks.py).
TASK_CURSOR_PATTERN = r"^[0-9]{13}#[0-9a-f]{32}$"


def task_cursor(requested_at: int, session_id: str) -> str:
    """The position of a task among those of its status: oldest first."""
    return f"{requested_at:013d}#{hashlib.sha256(session_id.encode('utf-8')).hexdigest()[:32]}"


def partition_of(batch_id: str, session_number: int, shards: int) -> str:
    """The partition key of a session's slot. A batch of S shards spreads its sessions over S partition
    keys, number n in shard n % S; a batch of one shard (all batches before sharding) uses its id as is."""
    return batch_id if shards == 1 else f"{batch_id}#{session_number % shards}"


def shard_partitions(batch_id: str, shards: int) -> list[str]:
    """The partition keys of a batch, shard 0 first."""
    return [batch_id] if shards == 1 else [f"{batch_id}#{shard}" for shard in range(shards)]


@dataclass(frozen=True)
class Place:
    """Where a session lives: its batch, its number, and the batch's shard count (which fixes the slot)."""

    batch_id: str
    session_number: int
    shards: int

    @property
    def partition(self) -> str:
        return partition_of(self.batch_id, self.session_number, self.shards)


@dataclass(frozen=True)
class Claim:
    """The claim on a session_id: who is registering it, and where the session lives once numbered."""

    session_id: str
    state: str  # "assigned" (numbered, session being written) -> "registered" (session written)
    claim_token: str
    claimed_at: int
    place: Place | None  # None only for claims made before numbers came first ("claimed")
    user_key: str | None = None  # domain.pseudonyms.user_key of the session's user_id; None without one

    @property
    def is_registered(self) -> bool:
        return self.state == "registered" and self.place is not None


@dataclass(frozen=True)
class Pointer:
    """The collecting pointer: the open batch and the last number handed out in it."""

    batch_id: str
    counter: int
    opened_at: int
    shards: int
    release_id: str | None
    sealed_at: int | None

    @property
    def is_sealed(self) -> bool:
        return self.release_id is not None and self.sealed_at is not None


@dataclass(frozen=True)
class ReleaseRecord:
    """`release#<id>`: the batch a release_id names, frozen at the seal."""

    release_id: str
    batch_id: str
    released_at: int
    last_number: int
    shards: int
    session_count: int | None  # None until the batch is settled
    opened_at: int | None = None  # None in records written before it was kept

    def settled(self, session_count: int) -> ReleaseRecord:
        return replace(self, session_count=session_count)


@dataclass(frozen=True)
class Dataset:
    """The export of a released batch (contract 7.2), as the batch record keeps it."""

    status: str  # "pending" -> "exporting" -> "exported" (or "failed", then "exporting" again)
    export_id: str | None = None  # the export (state machine execution) that holds it
    started_at: int | None = None
    events_until: int | None = None  # the fence (fenced_at) of the export that holds it
    exported_at: int | None = None
    session_count: int | None = None
    event_count: int | None = None
    parts: int | None = None
    metrics: str | None = None  # the quality report, JSON text
    # experiment id -> its sums (15.2), JSON text. Compared, not hashed (a mapping is not hashable): records
    # stay usable in sets, as every other record is.
    experiment_sums: Mapping[str, str] = field(default_factory=dict, hash=False)
    experiments_truncated: bool = False  # some experiments were left off the record for its size (the manifest has all)
    fenced_at: int | None = None  # set once, by the first export: later writes are refused (contract 13.5)
    judgments: str | None = None  # the judgments file's pairs, bytes and sha256, JSON text (contract 14.3)
    click_model: str | None = None  # the fitted click models' summary, JSON text


def recorded(document: str | None) -> bool:
    """A JSON text attribute of a dataset holds something: absent, or "{}", on datasets exported before it."""
    return document not in (None, "{}")


@dataclass(frozen=True)
class BatchExperiment:
    """One batch's sums of one experiment (contract 15.3), and whether the batch's dataset is exported."""

    batch_id: str
    exported: bool
    sums: str | None  # JSON text; None when the batch's record holds none for the experiment


@dataclass(frozen=True)
class BatchRecord:
    """`batch#<id>`: a released batch, and its dataset."""

    batch_id: str
    release_id: str
    released_at: int
    last_number: int
    shards: int
    session_count: int | None
    opened_at: int | None = None
    dataset: Dataset = Dataset("pending")
    erased_sessions: int = 0  # sessions of the batch erased since (contract 17.4); session_count excludes them
    erasures: frozenset[str] = frozenset()  # the erasures whose rewrite of the dataset is recorded (once each)


@dataclass(frozen=True)
class NumberBlock:
    """Numbers first..last of a batch, handed to one container by one ADD on the pointer."""

    batch_id: str
    shards: int
    first: int
    last: int


@dataclass(frozen=True)
class StoredSession:
    """A session item. `document` is the JSON object text of the search itself, stored verbatim."""

    batch_id: str
    session_number: int
    session_id: str
    created_at: int
    user_id: str | None
    is_irrelevant: bool
    is_payload_search: bool
    document: str
    experiment: str | None = None  # {"id", "variant"} as JSON text (contract 15.1); None when not tagged


@dataclass(frozen=True)
class StoredEvent:
    event_id: str
    object_id: str
    event_type: str
    created_at: int
    meta: str | None  # JSON object text


@dataclass(frozen=True)
class Slot:
    """What occupies a (batch_id, session_number): a session, or a tombstone left by a release."""

    session_number: int
    session_id: str | None
    erased_by: str | None = None  # the erasure that replaced the session with this tombstone (contract 17.4)

    @property
    def is_tombstone(self) -> bool:
        return self.session_id is None

    @property
    def is_erased(self) -> bool:
        return self.erased_by is not None


@dataclass(frozen=True)
class StoredTask:
    """A session's improvement task: "pending" until its worker reports it "done" or "failed"."""

    session_id: str
    batch_id: str
    session_number: int
    status: str
    requested_at: int
    completed_at: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class ShardPage:
    """Sessions of one shard read at once (tombstones left out; `erased`: the erased ones' numbers), and where
    the next read starts (opaque to the domain: the store's own continuation, None when the shard has no more)."""

    sessions: list[StoredSession]
    next_start: Any
    erased: tuple[int, ...] = ()


@dataclass(frozen=True)
class EventsRead:
    events: list[StoredEvent]
    last_key: str | None  # set when the read stopped at its limit: more may follow


class PointerUnavailable(Exception):
    """The collecting pointer is missing (`pointer` is None) or sealed by a release."""

    def __init__(self, pointer: Pointer | None) -> None:
        super().__init__("collecting pointer unavailable")
        self.pointer = pointer


ERASURE_STATUSES = ("pending", "running", "done", "failed")


@dataclass(frozen=True)
class Erasure:
    """`erasure#<id>`: one request to erase a user everywhere (contract 17.3).

    `stored_user_id` (the user id as this service stores it: raw, or its pseudonym with UserIdHashing=hmac)
    is kept only while the erasure is pending or running, to find the user's lines in datasets; once it is
    done or failed the record keeps only `user_key`, a hash of it."""

    erasure_id: str
    user_key: str
    status: str
    requested_at: int
    stored_user_id: str | None = None
    started_at: int | None = None
    completed_at: int | None = None
    sessions: int = 0
    events: int = 0
    tasks: int = 0
    datasets_rewritten: int = 0
    error: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in ("pending", "running")


@dataclass(frozen=True)
class ErasureCounts:
    """What an erasure removed so far: set by its steps, each repeatable (a count is set, never added)."""

    sessions: int | None = None
    events: int | None = None
    tasks: int | None = None
    datasets_rewritten: int | None = None
