"""The rules of the service (SPEC sections 2 to 5), over `Storage`; no HTTP and no boto3 here.

Numbering and release need only single-item conditional writes:

* Register: claim the session_id -> ADD 1 on the collecting pointer (batch id, number n) -> record
  the slot in the claim -> put the session at (batch, n) if that slot is free -> mark registered.
  A retry of a crashed or stalled registration takes the claim over and finishes in the recorded
  slot, so a session_id never lands in two slots.
* Release: seal the pointer (freezes the last number N) -> bind release_id to the batch -> write the
  batch record -> delete the pointer (the next registration opens a new batch) -> settle: every
  number 1..N still empty after a short grace gets a tombstone, so a registration that was handed a
  number before the seal but had not written it yet moves to the next batch -> record the count.
  Every step is conditional and repeatable: calling release again with the same id completes it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from clickstream.codec import encode_json, wire_size
from clickstream.errors import (
    BatchNotFound,
    ConflictError,
    InvalidField,
    NoCollectingBatch,
    PayloadTooLarge,
    SessionNotFound,
)
from clickstream.models import (
    EventsAdded,
    ImprovementDecision,
    ImprovementTask,
    IrrelevantMark,
    NewEvent,
    NewSession,
    Registration,
    Release,
)
from clickstream.settings import Settings
from clickstream.storage import (
    Pointer,
    PointerUnavailable,
    ReleaseRecord,
    SessionIdRecord,
    Storage,
    StoredEvent,
    StoredSession,
    StoredTask,
)
from clickstream.views import render_event, render_page, render_session

# Sizes are wire sizes (`codec.wire_size`): what a text takes in Lambda's response, never less than its
# UTF-8 size. A session must fit one DynamoDB item (400 KB) with room for its keys and flags; 1000 events
# of the largest size plus the largest session fit one 5 MB response (SPEC 2.2), so paging always moves on.
MAX_SESSION_BYTES = 350_000
MAX_EVENT_BYTES = 4_500
MAX_RESPONSE_BYTES = 5_000_000
_PAGE_ENVELOPE_BYTES = 1_024


class Recorder(Protocol):
    """Where the domain reports what happened (metrics); the runtime wires Powertools Metrics in."""

    def count(self, name: str, value: int = 1, **dimensions: str) -> None: ...


class _Silent:
    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        return None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_batch_id() -> str:
    # Time-ordered prefix so batch ids sort by opening time in listings and logs.
    return f"b-{now_ms():013d}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class _Search:
    """A validated session body, ready to be stored."""

    session_id: str
    created_at: int
    user_id: str | None
    is_payload_search: bool
    document: str


@dataclass
class _Page:
    """Rendered sessions of one `GET /batch/sessions` answer and the wire bytes they take."""

    budget: int
    texts: list[str] = field(default_factory=list)
    last_number: int | None = None
    used: int = 0

    def add(self, session_number: int, text: str) -> bool:
        size = wire_size(text) + 1  # and a comma
        # The size caps make any one session fit; the first is always taken so paging moves on.
        if self.texts and self.used + size > self.budget:
            return False
        self.texts.append(text)
        self.last_number = session_number
        self.used += size
        return True

    def room_for(self, wanted: int, most: int) -> int:
        """How many sessions to read next: about what still fits at the average size so far, plus one."""
        average = self.used / len(self.texts)
        fitting = int((self.budget - self.used) / average) + 1
        return max(1, min(wanted, most, fitting))

    def render(self, batch_id: str, has_more: bool) -> str:
        return render_page(batch_id, self.last_number, has_more, self.texts)


class Clickstream:
    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        *,
        recorder: Recorder | None = None,
        clock: Callable[[], int] = now_ms,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._storage = storage
        self._settings = settings
        self._recorder = recorder or _Silent()
        self._clock = clock
        self._sleep = sleep

    @property
    def storage(self) -> Storage:
        return self._storage

    # --- input rules (SPEC 4) -----------------------------------------------------------------

    def _timestamp(self, field: str, value: int | None, now: int) -> int:
        if value is None:
            return now
        earliest = now - self._settings.timestamp_past_ms
        latest = now + self._settings.timestamp_future_ms
        if not earliest <= value <= latest:
            raise InvalidField(
                field,
                f"must lie between {earliest} and {latest} (now - {self._settings.timestamp_past_ms} ms, "
                f"now + {self._settings.timestamp_future_ms} ms); got {value}",
            )
        return value

    @staticmethod
    def _json_text(field: str, value: object) -> str:
        try:
            return encode_json(value)
        except UnicodeEncodeError:
            raise InvalidField(field, "contains text that is not valid Unicode (a lone surrogate)") from None
        except ValueError:  # 1e400 parses as infinity, which JSON cannot carry
            raise InvalidField(field, "contains a number out of the range of a double (e.g. 1e400)") from None

    # --- POST /session -------------------------------------------------------------------------

    def register(self, new: NewSession) -> Registration:
        now = self._clock()
        try:
            search = self._search(new, now)
        except InvalidField:
            # A client retrying long after its first call (its created_at now outside the window) gets
            # that first registration back rather than a 422.
            registered = _registration_of(self._storage.get_session_id(new.session_id))
            if registered is None:
                raise
            return registered
        token = uuid.uuid4().hex
        if self._storage.claim_session_id(search.session_id, token, now):
            registration = self._place(search, token, slot=None)
            self._recorder.count("SessionsRegistered")
            return registration
        return self._follow_claim(search)

    def _search(self, new: NewSession, now: int) -> _Search:
        members = {
            "search_query": new.search_query,
            "search_results": [result.model_dump() for result in new.search_results],
            "search_meta": new.search_meta,
            "payload_filter": new.payload_filter,
            "sort_by": None if new.sort_by is None else new.sort_by.model_dump(),
        }
        try:
            document = encode_json(members)
        except ValueError:
            for name, member in members.items():  # name the member at fault
                self._json_text(name, member)
            raise
        size = wire_size(document) + wire_size(new.session_id) + wire_size(new.user_id or "")
        if size > MAX_SESSION_BYTES:
            raise PayloadTooLarge("session", size, MAX_SESSION_BYTES)
        return _Search(
            session_id=new.session_id,
            created_at=self._timestamp("created_at", new.created_at, now),
            user_id=new.user_id,
            is_payload_search=new.is_payload_search,
            document=document,
        )

    def _follow_claim(self, search: _Search) -> Registration:
        """Someone claimed this session_id: return their registration, or finish it if they stalled."""
        delay = 0.01
        while True:
            record = self._storage.get_session_id(search.session_id)
            if record is None:  # claims are never deleted; only a wiped table gets here
                raise ConflictError(f"Registration of session {search.session_id} is in an inconsistent state")
            registered = _registration_of(record)
            if registered is not None:
                return registered
            now = self._clock()
            if now - record.claimed_at >= self._settings.registration_lease_ms:
                token = uuid.uuid4().hex
                taken = self._storage.take_over_claim(search.session_id, record.claim_token, token, now)
                if taken is not None:
                    registration = self._place(search, token, slot=_slot_of(taken))
                    self._recorder.count("SessionsRegistered")
                    return registration
                continue
            self._sleep(delay)
            delay = min(delay * 2, 0.2)

    def _place(self, search: _Search, token: str, slot: tuple[str, int] | None) -> Registration:
        """Write the session into its slot, taking a new number when a release tombstoned the old one."""
        while True:
            if slot is None:
                batch_id, number = self._next_number()
                if not self._storage.assign_slot(search.session_id, token, batch_id, number):
                    # A retry took our claim over; it finishes the registration.
                    return self._follow_claim(search)
                slot = (batch_id, number)
            batch_id, number = slot
            stored = StoredSession(
                batch_id=batch_id,
                session_number=number,
                session_id=search.session_id,
                created_at=search.created_at,
                user_id=search.user_id,
                is_irrelevant=False,
                is_payload_search=search.is_payload_search,
                document=search.document,
            )
            if not self._storage.put_session(stored):
                occupant = self._storage.get_slot(batch_id, number)
                if occupant is None:
                    continue  # cannot happen (slots are never emptied); try the write again
                if occupant.session_id != search.session_id:
                    slot = None  # tombstoned by a release: this registration goes to the next batch
                    continue
            if not self._storage.mark_registered(search.session_id, batch_id, number):
                # The claim now points elsewhere: never acknowledge a slot the claim does not record.
                raise ConflictError(f"Registration of session {search.session_id} moved while writing; retry")
            return Registration(session_id=search.session_id, batch_id=batch_id, session_number=number)

    def _next_number(self) -> tuple[str, int]:
        delay = 0.005
        sealed_seen_at: int | None = None
        while True:
            try:
                return self._storage.next_number()
            except PointerUnavailable as unavailable:
                pointer = unavailable.pointer
            if pointer is None:
                self._storage.open_batch(new_batch_id(), self._clock())
                continue
            # Sealed: a release is handing the batch over. Wait for it; finish its hand-over if it stalls.
            now = self._clock()
            sealed_seen_at = sealed_seen_at if sealed_seen_at is not None else now
            if now - sealed_seen_at >= self._settings.sealed_batch_wait_ms:
                self._hand_over(pointer)
                sealed_seen_at = None
                continue
            self._sleep(delay)
            delay = min(delay * 2, 0.1)

    # --- POST /session/events ------------------------------------------------------------------

    def add_events(self, session_id: str, events: list[NewEvent]) -> EventsAdded:
        now = self._clock()
        stored: list[StoredEvent] = []
        seen: set[str] = set()
        for index, event in enumerate(events):
            field = f"events[{index}]"
            item = StoredEvent(
                event_id=event.event_id,
                object_id=event.object_id,
                event_type=event.event_type,
                created_at=self._timestamp(f"{field}.created_at", event.created_at, now),
                meta=None if event.meta is None else self._json_text(f"{field}.meta", event.meta),
            )
            size = wire_size(render_event(item))
            if size > MAX_EVENT_BYTES:
                raise PayloadTooLarge(field, size, MAX_EVENT_BYTES)
            if item.event_id not in seen:  # within one call the first occurrence wins
                seen.add(item.event_id)
                stored.append(item)
        self._registered(session_id)
        written = self._storage.map_concurrently(lambda event: self._storage.put_event(session_id, event), stored)
        accepted = sum(written)
        self._recorder.count("EventsAccepted", accepted)
        return EventsAdded(session_id=session_id, accepted=accepted, duplicates=len(events) - accepted)

    def _registered(self, session_id: str) -> tuple[str, int]:
        """The slot of a registered session. A session already written to its slot counts as registered
        even if its registration stopped before saying so (it is in the batch); that step is completed here."""
        record = self._storage.get_session_id(session_id)
        slot = None if record is None else _slot_of(record)
        if record is None or slot is None:
            raise SessionNotFound(session_id)
        if record.state != "registered":
            occupant = self._storage.get_slot(*slot)
            if occupant is None or occupant.session_id != session_id:
                raise SessionNotFound(session_id)
            self._storage.mark_registered(session_id, *slot)
        return slot

    # --- POST /session/irrelevant ---------------------------------------------------------------

    def mark_irrelevant(self, session_id: str) -> IrrelevantMark:
        batch_id, number = self._registered(session_id)
        if not self._storage.set_irrelevant(batch_id, number):
            raise SessionNotFound(session_id)
        return IrrelevantMark(session_id=session_id)

    # --- GET /session ----------------------------------------------------------------------------

    def session_json(self, session_id: str, events_limit: int) -> str:
        session = self._stored_session(session_id)
        events = self._storage.first_events(session_id, events_limit)
        return render_session(session, events, with_batch_id=True)

    def _stored_session(self, session_id: str) -> StoredSession:
        session = self._storage.get_session(*self._registered(session_id))
        if session is None:
            raise SessionNotFound(session_id)
        return session

    # --- POST /session/use-for-improvement --------------------------------------------------------

    def use_for_improvement(self, session_id: str) -> ImprovementDecision:
        session = self._stored_session(session_id)
        if session.is_payload_search:
            return self._skipped(session_id, "payload_search")
        if not session.is_irrelevant and not self._storage.has_events(session_id):
            return self._skipped(session_id, "no_events")
        task = StoredTask(
            session_id=session_id,
            batch_id=session.batch_id,
            session_number=session.session_number,
            status="pending",
            requested_at=self._clock(),
        )
        if self._storage.put_pending_task(task):
            self._recorder.count("SessionsScheduled")
        else:
            pending = self._storage.get_task(session_id)
            if pending is None or pending.status != "pending":
                raise ConflictError(f"The task of session {session_id} changed while scheduling; retry")
            task = pending
        return ImprovementDecision(
            session_id=session_id,
            status="scheduled",
            task=ImprovementTask(
                session_id=task.session_id,
                batch_id=task.batch_id,
                session_number=task.session_number,
                status="pending",
                requested_at=task.requested_at,
            ),
        )

    def _skipped(self, session_id: str, reason: str) -> ImprovementDecision:
        self._recorder.count("SessionsSkipped", reason=reason)
        return ImprovementDecision.model_validate({"session_id": session_id, "status": "skipped", "reason": reason})

    # --- GET /batch/sessions -----------------------------------------------------------------------

    def batch_page_json(self, batch_id: str, after_number: int, limit: int, events_limit: int) -> str:
        """One page of a batch as response text, never over MAX_RESPONSE_BYTES.

        Sessions are read lazily and their events fetched a chunk at a time (concurrently within a chunk),
        the chunk sized by what still fits, so a page cut short by the size cap reads little it does not send.
        """
        page = _Page(budget=MAX_RESPONSE_BYTES - _PAGE_ENVELOPE_BYTES)
        chunk: list[StoredSession] = []
        chunk_floor = 0  # wire size of the chunk's documents: the least its sessions will take
        # The first chunk could be read in full even if little of it fits: at most twice the budget even if
        # every event is as large as allowed. Later chunks follow the sizes seen.
        worst_session = max(1, events_limit * MAX_EVENT_BYTES)
        chunk_size = max(1, min(limit, self._settings.dynamodb_max_concurrency, 2 * page.budget // worst_session))
        cut = False
        # One more than `limit` tells whether more follow; the read stops there.
        for session in self._storage.sessions_after(batch_id, after_number, page_size=limit + 1):
            if len(page.texts) + len(chunk) == limit:
                cut = True
                break
            document_size = wire_size(session.document)
            if (page.texts or chunk) and page.used + chunk_floor + document_size > page.budget:
                cut = True  # cannot fit even without its events: not worth reading them
                break
            chunk.append(session)
            chunk_floor += document_size
            if len(chunk) == chunk_size:
                if not self._add_to_page(page, chunk, events_limit):
                    return page.render(batch_id, has_more=True)
                chunk, chunk_floor = [], 0
                chunk_size = page.room_for(limit - len(page.texts), self._settings.dynamodb_max_concurrency)
        if chunk and not self._add_to_page(page, chunk, events_limit):
            cut = True
        if not page.texts:
            self._require_batch(batch_id)
        return page.render(batch_id, has_more=cut)

    def _add_to_page(self, page: _Page, chunk: list[StoredSession], events_limit: int) -> bool:
        """Render `chunk` into `page` with each session's first events; False when the page filled up."""
        events = self._storage.map_concurrently(
            lambda session: self._storage.first_events(session.session_id, events_limit), chunk
        )
        for session, session_events in zip(chunk, events, strict=True):
            if not page.add(session.session_number, render_session(session, session_events)):
                return False
        return True

    def _require_batch(self, batch_id: str) -> None:
        # Record, then pointer, then record again: a release moving the batch between the first two
        # reads has written the record by the time of the third.
        if self._storage.get_batch_record(batch_id) is not None:
            return
        pointer = self._storage.get_pointer()
        if pointer is not None and pointer.batch_id == batch_id:
            return
        if self._storage.get_batch_record(batch_id) is None:
            raise BatchNotFound(batch_id)

    # --- POST /batch/release ---------------------------------------------------------------------

    def release(self, release_id: str) -> Release:
        record = self._storage.get_release(release_id)
        while record is None:
            pointer = self._storage.seal_pointer(release_id, self._clock())
            if pointer is not None:
                if pointer.counter == 0:  # opened but nothing numbered: nothing to release
                    self._storage.unseal_pointer(pointer)
                    raise NoCollectingBatch()
                record = self._hand_over(pointer) or self._storage.get_release(release_id)
                continue
            current = self._storage.get_pointer()
            if current is not None and current.release_id is not None and current.release_id != release_id:
                self._hand_over(current)  # another release is mid-way: finish it, then look again
                continue
            record = self._storage.get_release(release_id)  # a concurrent call with our id may have bound it
            if record is None:
                if current is not None:
                    continue  # the pointer appeared or changed meanwhile; seal it
                raise NoCollectingBatch()
        if record.session_count is None:
            # A call with this id may have stopped right after binding it: finish its hand-over first
            # (both writes are conditional no-ops when done), so the batch record exists to be counted
            # and no sealed pointer is left for registrations to wait on.
            self._retire(record)
            record = self._settle(record)
            self._recorder.count("BatchesReleased")
        return Release(
            release_id=record.release_id,
            batch_id=record.batch_id,
            released_at=record.released_at,
            session_count=record.session_count or 0,
        )

    def _hand_over(self, pointer: Pointer) -> ReleaseRecord | None:
        """Bind the sealing release to the batch, record the batch, and retire the pointer."""
        if pointer.release_id is None or pointer.sealed_at is None:
            return None  # not sealed: nothing to hand over
        if pointer.counter == 0:
            # Sealed empty by a release that stopped before undoing its seal: nothing to release.
            self._storage.unseal_pointer(pointer)
            return None
        record = self._storage.bind_release(pointer.release_id, pointer.batch_id, pointer.sealed_at, pointer.counter)
        if record.batch_id != pointer.batch_id:
            # This release_id already names another batch; it must not take this one too.
            self._storage.unseal_pointer(pointer)
            return None
        self._retire(record)
        return record

    def _retire(self, record: ReleaseRecord) -> None:
        """Record the released batch, then delete the pointer if it is still the one sealed for it."""
        self._storage.put_batch_record(record)
        self._storage.delete_sealed_pointer(record.release_id, record.batch_id)

    def _settle(self, record: ReleaseRecord) -> ReleaseRecord:
        """Make the batch final: every number up to the frozen counter holds a session or a tombstone."""
        written: set[int] = set()
        session_count = 0
        for slot in self._storage.slots(record.batch_id):
            written.add(slot.session_number)
            session_count += 0 if slot.is_tombstone else 1
        missing = [number for number in range(1, record.last_number + 1) if number not in written]
        if missing:
            # Numbers handed out just before the seal are usually written within a few milliseconds.
            wait_ms = record.released_at + self._settings.release_settle_grace_ms - self._clock()
            if wait_ms > 0:
                self._sleep(wait_ms / 1000)
            closed = self._storage.map_concurrently(
                lambda number: self._storage.put_tombstone(record.batch_id, number), missing
            )
            session_count += sum(1 for tombstoned in closed if not tombstoned)
        self._storage.record_session_count(record, session_count)
        return ReleaseRecord(
            release_id=record.release_id,
            batch_id=record.batch_id,
            released_at=record.released_at,
            last_number=record.last_number,
            session_count=session_count,
        )


def _slot_of(record: SessionIdRecord) -> tuple[str, int] | None:
    if record.batch_id is None or record.session_number is None:
        return None
    return record.batch_id, record.session_number


def _registration_of(record: SessionIdRecord | None) -> Registration | None:
    """The registration a claim records, once it is complete."""
    slot = None if record is None or record.state != "registered" else _slot_of(record)
    if record is None or slot is None:
        return None
    return Registration(session_id=record.session_id, batch_id=slot[0], session_number=slot[1])
