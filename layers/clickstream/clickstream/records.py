"""What the tables hold, as the domain sees it. No boto3 here, so views and the domain import these freely."""

from __future__ import annotations

from dataclasses import dataclass

# A session's place: (batch_id, session_number).
SlotKey = tuple[str, int]

POINTER_KEY = "pointer"


@dataclass(frozen=True)
class Claim:
    """The claim on a session_id: who is registering it, and where the session lives once numbered."""

    session_id: str
    state: str  # "claimed" -> "assigned" (slot chosen) -> "registered" (session written)
    claim_token: str
    claimed_at: int
    batch_id: str | None
    session_number: int | None

    @property
    def slot(self) -> SlotKey | None:
        if self.batch_id is None or self.session_number is None:
            return None
        return self.batch_id, self.session_number

    @property
    def is_registered(self) -> bool:
        return self.state == "registered" and self.slot is not None


@dataclass(frozen=True)
class Pointer:
    """The collecting pointer: the open batch and the last number handed out in it."""

    batch_id: str
    counter: int
    opened_at: int
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
    session_count: int | None  # None until the batch is settled

    def settled(self, session_count: int) -> ReleaseRecord:
        return ReleaseRecord(self.release_id, self.batch_id, self.released_at, self.last_number, session_count)


@dataclass(frozen=True)
class BatchRecord:
    """`batch#<id>`: a released batch."""

    batch_id: str
    release_id: str
    released_at: int
    last_number: int
    session_count: int | None


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

    @property
    def is_tombstone(self) -> bool:
        return self.session_id is None


@dataclass(frozen=True)
class StoredTask:
    session_id: str
    batch_id: str
    session_number: int
    status: str
    requested_at: int


class PointerUnavailable(Exception):
    """The collecting pointer is missing (`pointer` is None) or sealed by a release."""

    def __init__(self, pointer: Pointer | None) -> None:
        super().__init__("collecting pointer unavailable")
        self.pointer = pointer
