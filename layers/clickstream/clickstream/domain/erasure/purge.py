"""The Purge step (contract 17): each found session's events, its improvement task, and its slot replaced by
an erased tombstone (a numbered gap, never renumbered).

It runs after the claims are gone and the second wait, so nothing new is written for these sessions: what is
there is counted first, the counts recorded (never lowered: a purge run again after a crash finds less, its
first count stands), and only then deleted. A slot is erased only while it holds the found session (a number
whose registration never wrote it stays for settle to tombstone, and is no erased session).
"""

from __future__ import annotations

from dataclasses import dataclass

from clickstream.domain.context import Context
from clickstream.domain.erasure.worklist import FoundSession
from clickstream.records import ErasureCounts


@dataclass(frozen=True)
class Held:
    """What one found session still has in DynamoDB."""

    found: FoundSession
    events: int
    task: bool
    slot: bool  # the slot holds the session (or is erased by this erasure already)


class Purge:
    def __init__(self, context: Context) -> None:
        self._storage = context.storage
        self._fanout = context.fanout

    def count(self, erasure_id: str, sessions: list[FoundSession]) -> tuple[list[Held], ErasureCounts]:
        held = self._fanout.map(lambda found: self._held(erasure_id, found), sessions)
        counts = ErasureCounts(
            sessions=len(sessions), events=sum(item.events for item in held), tasks=sum(item.task for item in held)
        )
        return held, counts

    def delete(self, erasure_id: str, held: list[Held]) -> int:
        """Delete what `count` found; the events deleted (late ones, expired ones included)."""
        return sum(self._fanout.map(lambda item: self._delete(erasure_id, item), held))

    def _held(self, erasure_id: str, found: FoundSession) -> Held:
        events = len(self._storage.events.ids(found.session_id))
        place = found.place
        if place is None:
            return Held(found, events, task=False, slot=False)
        task = self._storage.tasks.get(found.session_id)
        ours = task is not None and (task.batch_id, task.session_number) == (place.batch_id, place.session_number)
        slot = self._storage.sessions.get_slot(place)
        holds = slot is not None and (slot.session_id == found.session_id or slot.erased_by == erasure_id)
        return Held(found, events, task=ours, slot=holds)

    def _delete(self, erasure_id: str, item: Held) -> int:
        """Events and task first, the slot last: a purge stopped half-way is found again by the same list."""
        deleted = self._storage.events.delete_all(item.found.session_id)
        place = item.found.place
        if place is not None:
            self._storage.tasks.delete(item.found.session_id, place.batch_id, place.session_number)
            if item.slot:
                self._storage.sessions.erase(place, erasure_id)
        return deleted
