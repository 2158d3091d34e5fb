"""Registration (contract 3, `POST /session`; guarantees 5.1 and 5.2), with single-item conditional writes.

Claim the session_id -> ADD 1 on the collecting pointer (batch id, number n) -> record the slot in the
claim -> put the session at (batch, n) if that slot is free -> mark the claim registered.

* A session_id registers once: the claim is a conditional put, and a second call returns the slot the
  claim records once the first call has marked it, or waits for it.
* A session never lands in two slots: the slot is recorded in the claim before the session is written,
  and a retry that takes a stalled claim over (after REGISTRATION_LEASE_MS) finishes in that slot.
* A slot holds one session: the session put is conditional. A slot a release tombstoned (contract 2.3)
  sends the registration to a number in the next batch.
* A session written to its slot is in the batch for good; if its registration stopped before marking
  the claim, `confirm` (called by every read of the session) completes that step.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from clickstream.domain.context import Context
from clickstream.domain.rules import InputRules, Search
from clickstream.errors import ConflictError, SessionNotFound, TimestampOutsideWindow
from clickstream.models import NewSession, Registration
from clickstream.records import Claim, PointerUnavailable, SlotKey, StoredSession

if TYPE_CHECKING:
    from clickstream.domain.release import Releaser


def new_batch_id(now: int) -> str:
    # Time-ordered prefix so batch ids sort by opening time in listings and logs.
    return f"b-{now:013d}-{uuid.uuid4().hex[:12]}"


def registration_of(claim: Claim | None) -> Registration | None:
    """The registration a claim records, once it is complete."""
    if claim is None or not claim.is_registered or claim.slot is None:
        return None
    batch_id, number = claim.slot
    return Registration(session_id=claim.session_id, batch_id=batch_id, session_number=number)


class Registrar:
    def __init__(self, context: Context, releaser: Releaser) -> None:
        self._storage = context.storage
        self._settings = context.settings
        self._telemetry = context.telemetry
        self._clock = context.clock
        self._sleep = context.sleep
        self._releaser = releaser
        self._rules = InputRules(context.settings)

    def register(self, new: NewSession) -> Registration:
        now = self._clock()
        try:
            search = self._rules.search(new, now)
        except TimestampOutsideWindow:
            # A client retrying long after its first call (its created_at now outside the window) gets
            # that first registration back rather than a 422. Any other broken rule is refused as such.
            registered = registration_of(self._storage.claims.get(new.session_id))
            if registered is None:
                raise
            return registered
        token = uuid.uuid4().hex
        if self._storage.claims.claim(search.session_id, token, now):
            registration = self._place(search, token, slot=None)
            self._telemetry.count("SessionsRegistered")
            return registration
        return self._follow_claim(search)

    def confirm(self, session_id: str) -> SlotKey:
        """The slot of a registered session, for every route that reads or changes one.

        A session already written to its slot counts as registered even if its registration stopped before
        saying so (it is in the batch); that last step is completed here. SessionNotFound otherwise.
        """
        claim = self._storage.claims.get(session_id)
        slot = None if claim is None else claim.slot
        if claim is None or slot is None:
            raise SessionNotFound(session_id)
        if not claim.is_registered:
            occupant = self._storage.sessions.get_slot(*slot)
            if occupant is None or occupant.session_id != session_id:
                raise SessionNotFound(session_id)
            self._storage.claims.mark_registered(session_id, *slot)
            self._telemetry.rare(
                "RegistrationsCompletedOnRead",
                "A read completed a registration that stopped after writing its session",
                session_id=session_id,
                batch_id=slot[0],
                session_number=slot[1],
            )
        return slot

    def _follow_claim(self, search: Search) -> Registration:
        """Someone claimed this session_id: return their registration, or finish it if they stalled."""
        delay = 0.01
        while True:
            claim = self._storage.claims.get(search.session_id)
            if claim is None:  # claims are never deleted; only a wiped table gets here
                raise ConflictError(f"Registration of session {search.session_id} is in an inconsistent state")
            registered = registration_of(claim)
            if registered is not None:
                return registered
            now = self._clock()
            if now - claim.claimed_at >= self._settings.registration_lease_ms:
                token = uuid.uuid4().hex
                taken = self._storage.claims.take_over(search.session_id, claim.claim_token, token, now)
                if taken is not None:
                    self._telemetry.rare(
                        "ClaimsTakenOver",
                        "A retried registration took over a stalled one",
                        session_id=search.session_id,
                        stalled_for_ms=now - claim.claimed_at,
                    )
                    registration = self._place(search, token, slot=taken.slot)
                    self._telemetry.count("SessionsRegistered")
                    return registration
                continue
            self._sleep(delay)
            delay = min(delay * 2, 0.2)

    def _place(self, search: Search, token: str, slot: SlotKey | None) -> Registration:
        """Write the session into its slot, taking a new number when a release tombstoned the old one."""
        while True:
            if slot is None:
                slot = self._next_number()
                if not self._storage.claims.assign_slot(search.session_id, token, *slot):
                    # A retry took our claim over; it finishes the registration.
                    return self._follow_claim(search)
            batch_id, number = slot
            if not self._storage.sessions.put_session(_stored(search, batch_id, number)):
                occupant = self._storage.sessions.get_slot(batch_id, number)
                if occupant is None:  # slots are never emptied: the table changed under us
                    raise ConflictError(f"Registration of session {search.session_id} is in an inconsistent state")
                if occupant.session_id != search.session_id:
                    self._telemetry.rare(
                        "RegistrationsMovedByRelease",
                        "A release closed the slot of a registration; it moves to the next batch",
                        session_id=search.session_id,
                        batch_id=batch_id,
                        session_number=number,
                    )
                    slot = None
                    continue
            if not self._storage.claims.mark_registered(search.session_id, batch_id, number):
                # The claim now points elsewhere: never acknowledge a slot the claim does not record.
                raise ConflictError(f"Registration of session {search.session_id} moved while writing; retry")
            return Registration(session_id=search.session_id, batch_id=batch_id, session_number=number)

    def _next_number(self) -> SlotKey:
        """A number in the collecting batch, opening a batch when none is open.

        While a release holds the pointer sealed, wait; if it stays sealed past SEALED_BATCH_WAIT_MS (the
        release stalled), complete the release's hand-over (`Releaser.complete_hand_over`) so the next
        batch can open. The stalled release's settle is completed when it is called again.
        """
        delay = 0.005
        sealed_seen_at: int | None = None
        while True:
            try:
                return self._storage.pointer.next_number()
            except PointerUnavailable as unavailable:
                pointer = unavailable.pointer
            now = self._clock()
            if pointer is None:
                self._storage.pointer.open_batch(new_batch_id(now), now)
                continue
            sealed_seen_at = now if sealed_seen_at is None else sealed_seen_at
            if now - sealed_seen_at >= self._settings.sealed_batch_wait_ms:
                self._telemetry.rare(
                    "StalledReleasesHandedOver",
                    "A registration completed the hand-over of a release that stalled after sealing the batch",
                    batch_id=pointer.batch_id,
                    release_id=pointer.release_id or "",
                )
                self._releaser.complete_hand_over(pointer)
                sealed_seen_at = None
                continue
            self._sleep(delay)
            delay = min(delay * 2, 0.1)


def _stored(search: Search, batch_id: str, number: int) -> StoredSession:
    return StoredSession(
        batch_id=batch_id,
        session_number=number,
        session_id=search.session_id,
        created_at=search.created_at,
        user_id=search.user_id,
        is_irrelevant=False,
        is_payload_search=search.is_payload_search,
        document=search.document,
    )
