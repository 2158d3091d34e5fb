"""Registration (contract 3.1; guarantees 5.1, 5.2; three writes, contract 8.2), single-item writes only.

Take a number from the container's block (`numbering`) -> claim the session_id with that place ->
put the session in its slot if the slot is empty -> mark the claim registered. In the steady state that
is three writes; a block of numbers costs one more write on the collecting pointer now and then.

* A session_id registers once: the claim is a conditional put. A second call returns the place the
  claim records once the first call has marked it, or waits for it (the unused number goes back).
* A session never lands in two places: the place is in the claim before the session is written, and a
  retry that takes a stalled claim over (after REGISTRATION_LEASE_MS) finishes in that place.
* A slot holds one session: the session put is conditional. A slot a release tombstoned (contract 2.3)
  sends the registration to a number in the next batch, recorded in the claim first.
* A session written to its slot is in the batch for good; if its registration stopped before marking
  the claim, `confirm` (called by every read of the session) completes that step.
* A session of a user being erased is refused before it is claimed (domain/erasure/requests.py).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from clickstream.domain.context import Context
from clickstream.domain.erasure.requests import ErasureGuard
from clickstream.domain.numbering import NumberBlocks
from clickstream.domain.pseudonyms import user_key
from clickstream.domain.rules import InputRules, Search
from clickstream.errors import ConflictError, InvalidField, PayloadTooLarge, SessionNotFound
from clickstream.models import NewSession, Registration
from clickstream.records import Claim, Place, Pointer, PointerUnavailable, StoredSession

if TYPE_CHECKING:
    from clickstream.domain.release import Releaser


def new_batch_id(now: int) -> str:
    # Time-ordered prefix so batch ids sort by opening time in listings and logs.
    return f"b-{now:013d}-{uuid.uuid4().hex[:12]}"


def registration_of(claim: Claim | None) -> Registration | None:
    """The registration a claim records, once it is complete."""
    if claim is None or not claim.is_registered or claim.place is None:
        return None
    return Registration(
        session_id=claim.session_id, batch_id=claim.place.batch_id, session_number=claim.place.session_number
    )


class Registrar:
    def __init__(self, context: Context, releaser: Releaser, erasures: ErasureGuard) -> None:
        self._storage = context.storage
        self._settings = context.settings
        self._telemetry = context.telemetry
        self._clock = context.clock
        self._sleep = context.sleep
        self._releaser = releaser
        self._erasures = erasures
        self._user_ids = context.user_ids
        self._rules = InputRules(context.settings)
        self._numbers = NumberBlocks(context.settings.number_block_max, context.settings.number_block_ms, context.clock)

    def register(self, new: NewSession) -> Registration:
        new = self._user_ids.at_the_door(new)  # pseudonymised (contract 17) before it is checked or stored
        self._erasures.check(new.user_id)  # a user being erased: refused before anything is claimed (17.3)
        now = self._clock()
        try:
            search = self._rules.search(new, now)
        except (InvalidField, PayloadTooLarge):
            # The first registration stands whatever the repeat carries (contract 3.1): a client retrying
            # long after its first call (created_at now outside the window), or with a body too large to
            # store, gets it back rather than a 422 or 413. A new session_id is refused as such.
            registered = registration_of(self._storage.claims.get(new.session_id))
            if registered is None:
                raise
            return registered
        place = self._numbers.take()
        if place is None:
            # A new block costs a write, and may open a batch: not for a session_id claimed already.
            claimed = self._storage.claims.get(search.session_id)
            if claimed is not None:
                return self._follow_claim(search, claimed)
            place = self._number()
        token = uuid.uuid4().hex
        key = None if search.user_id is None else user_key(search.user_id)
        if not self._storage.claims.claim(search.session_id, token, now, place, key):
            claim = self._storage.claims.get(search.session_id)
            if claim is None or claim.claim_token != token or claim.place is None:
                self._numbers.give_back(place)
                return self._follow_claim(search, claim)
            place = claim.place  # our own claim, whose answer was lost: it is ours to finish
        registration = self._place(search, token, place)
        self._telemetry.count("SessionsRegistered")
        return registration

    def confirm(self, session_id: str) -> Place:
        """The place of a registered session, for every route that reads or changes one.

        A session already written to its slot counts as registered even if its registration stopped before
        saying so (it is in the batch); that last step is completed here. SessionNotFound otherwise.
        """
        claim, place = self._registered(session_id)
        if not claim.is_registered:
            self._storage.claims.mark_registered(session_id, place)
            self._telemetry.rare(
                "RegistrationsCompletedOnRead",
                "A read completed a registration that stopped after writing its session",
                session_id=session_id,
                batch_id=place.batch_id,
                session_number=place.session_number,
            )
        return place

    def locate(self, session_id: str) -> Place:
        """The place of a registered session, as `confirm` finds it, without completing a missing mark:
        for a function whose role may not write the session-ids table (scheduling). The mark is left to
        the next collection read or retried registration; the session is in its batch either way."""
        return self._registered(session_id)[1]

    def _registered(self, session_id: str) -> tuple[Claim, Place]:
        claim = self._storage.claims.get(session_id)
        place = None if claim is None else claim.place
        if claim is None or place is None:
            raise SessionNotFound(session_id)
        if not claim.is_registered:
            occupant = self._storage.sessions.get_slot(place)
            if occupant is None or occupant.session_id != session_id:
                raise SessionNotFound(session_id)
        return claim, place

    def _follow_claim(self, search: Search, claim: Claim | None) -> Registration:
        """Someone claimed this session_id (`claim`, as just read): return their registration, or finish it
        if they stalled."""
        delay = 0.01
        while True:
            if claim is None:  # deleted only by retention, long after: a wiped table gets here
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
                    registration = self._finish_taken_over(search, token, taken.place)
                    self._telemetry.count("SessionsRegistered")
                    return registration
            else:
                self._sleep(delay)
                delay = min(delay * 2, 0.2)
            claim = self._storage.claims.get(search.session_id)

    def _finish_taken_over(self, search: Search, token: str, place: Place | None) -> Registration:
        """Finish a stalled registration in the place its claim records. The place may be in a batch being
        settled or released long ago (whose closed slots may even have expired with its retention): the
        session is in that batch only if it is in the slot. Otherwise the slot is closed first (the stalled
        owner may still write it, and would then be counted in a batch this registration left), and the
        registration moves on, as from a slot a release closed."""
        if place is not None and self._storage.batches.get(place.batch_id) is not None:
            closed = self._storage.sessions.put_tombstone(place)
            occupant = None if closed else self._storage.sessions.get_slot(place)
            if occupant is None or occupant.session_id != search.session_id:
                self._moved(search, place)
                place = None
        if place is None:
            place = self._number()
            if not self._storage.claims.assign(search.session_id, token, place):
                return self._follow_claim(search, self._storage.claims.get(search.session_id))  # taken over again
        return self._place(search, token, place)

    def _place(self, search: Search, token: str, place: Place) -> Registration:
        """Write the session into its slot, taking a new number when a release tombstoned the old one."""
        while not self._storage.sessions.put_session(_stored(search, place), place.shards):
            occupant = self._storage.sessions.get_slot(place)
            if occupant is None:  # emptied only by retention, long after: the table changed under us
                raise ConflictError(f"Registration of session {search.session_id} is in an inconsistent state")
            if occupant.session_id == search.session_id:
                break  # written by this registration before (a retried call, or its lost answer)
            self._moved(search, place)
            place = self._number()
            if not self._storage.claims.assign(search.session_id, token, place):
                # A retry took the claim over; it finishes the registration.
                return self._follow_claim(search, self._storage.claims.get(search.session_id))
        if not self._storage.claims.mark_registered(search.session_id, place):
            # The claim now points elsewhere: never acknowledge a place the claim does not record.
            raise ConflictError(f"Registration of session {search.session_id} moved while writing; retry")
        return Registration(session_id=search.session_id, batch_id=place.batch_id, session_number=place.session_number)

    def _moved(self, search: Search, closed: Place) -> None:
        """A release closed the slot this registration was numbered for: it moves to the next batch."""
        self._telemetry.rare(
            "RegistrationsMovedByRelease",
            "A release closed the slot of a registration; it moves to the next batch",
            session_id=search.session_id,
            batch_id=closed.batch_id,
            session_number=closed.session_number,
        )
        self._numbers.drop(closed.batch_id)

    def _number(self) -> Place:
        """A number in the collecting batch: from this container's block, or from a new block.

        With no collecting batch, open one. While a release holds the pointer sealed, wait (reading the
        pointer, not writing it: a sealed pointer must not become a hot key); if it stays sealed past
        SEALED_BATCH_WAIT_MS (the release stalled), complete the release's hand-over
        (`Releaser.complete_hand_over`) so the next batch can open; the stalled release's settle is
        completed when it is called again.
        """
        seen_seal: tuple[str | None, int | None] | None = None
        sealed_since = 0
        while True:
            with self._numbers.allocating:
                place = self._numbers.take()
                if place is not None:
                    return place
                try:
                    return self._numbers.hold(self._storage.pointer.next_block(self._numbers.size_wanted()))
                except PointerUnavailable as unavailable:
                    pointer = unavailable.pointer
                now = self._clock()
                if pointer is None:
                    self._storage.pointer.open_batch(new_batch_id(now), now, self._settings.batch_shards)
                    continue
                if not pointer.is_sealed:
                    continue  # the seal was undone, or the next batch opened, since the ADD failed
                if seen_seal != (pointer.release_id, pointer.sealed_at):
                    seen_seal, sealed_since = (pointer.release_id, pointer.sealed_at), now
                if now - sealed_since >= self._settings.sealed_batch_wait_ms:
                    self._hand_over_stalled(pointer)
                    seen_seal = None
                    continue
            self._wait_while_sealed(pointer, sealed_since + self._settings.sealed_batch_wait_ms)

    def _wait_while_sealed(self, sealed: Pointer, until: int) -> None:
        """Until the pointer changes (the release handed the batch over) or `until`, reading it now and then."""
        delay = 0.005
        while self._clock() < until:
            self._sleep(delay)
            delay = min(delay * 2, 0.1)
            if self._storage.pointer.get() != sealed:
                return

    def _hand_over_stalled(self, pointer: Pointer) -> None:
        self._telemetry.rare(
            "StalledReleasesHandedOver",
            "A registration completed the hand-over of a release that stalled after sealing the batch",
            batch_id=pointer.batch_id,
            release_id=pointer.release_id or "",
        )
        self._releaser.complete_hand_over(pointer)


def _stored(search: Search, place: Place) -> StoredSession:
    return StoredSession(
        batch_id=place.batch_id,
        session_number=place.session_number,
        session_id=search.session_id,
        created_at=search.created_at,
        user_id=search.user_id,
        is_irrelevant=False,
        is_payload_search=search.is_payload_search,
        document=search.document,
        experiment=search.experiment,
    )
