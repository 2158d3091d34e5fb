"""The small routes on one session (contract 3): events, the irrelevant mark, reading it back."""

from __future__ import annotations

from clickstream.domain.context import Context
from clickstream.domain.late_writes import LateWrites
from clickstream.domain.registration import Registrar
from clickstream.domain.rules import InputRules
from clickstream.errors import SessionNotFound
from clickstream.models import EventsAdded, IrrelevantMark, NewEvent
from clickstream.records import StoredSession
from clickstream.views import render_session


class Sessions:
    def __init__(self, context: Context, registrar: Registrar, late_writes: LateWrites) -> None:
        self._storage = context.storage
        self._fanout = context.fanout
        self._telemetry = context.telemetry
        self._clock = context.clock
        self._registrar = registrar
        self._late_writes = late_writes
        self._rules = InputRules(context.settings)

    def add_events(self, session_id: str, events: list[NewEvent]) -> EventsAdded:
        """Store each event once per (session_id, event_id) (guarantee 5.5): the put is conditional. Refused
        once the session's batch is fenced by its export (contract 13.5): the dataset would miss it."""
        stored = self._rules.events(events, self._clock())
        place = self._registrar.confirm(session_id)
        self._late_writes.check_open(place.batch_id)
        written = self._fanout.map(lambda event: self._storage.events.put(session_id, event), stored)
        accepted = sum(written)
        self._telemetry.count("EventsAccepted", accepted)
        return EventsAdded(session_id=session_id, accepted=accepted, duplicates=len(events) - accepted)

    def mark_irrelevant(self, session_id: str) -> IrrelevantMark:
        """The mark is in the session's dataset too: refused, as events are, once the batch is fenced."""
        place = self._registrar.confirm(session_id)
        self._late_writes.check_open(place.batch_id)
        if not self._storage.sessions.set_irrelevant(place):
            raise SessionNotFound(session_id)
        return IrrelevantMark(session_id=session_id)

    def session_json(self, session_id: str, events_limit: int) -> str:
        """`GET /session`: the session with its batch_id and first `events_limit` events, as response text."""
        session = self.stored(session_id)
        events = self._storage.events.first(session_id, events_limit)
        return render_session(session, events, with_batch_id=True)

    def stored(self, session_id: str, *, complete_registration: bool = True) -> StoredSession:
        """A registered session as stored; SessionNotFound when there is none. Without
        `complete_registration`, a registration that stopped before its mark is not completed (no write)."""
        confirm = self._registrar.confirm if complete_registration else self._registrar.locate
        session = self._storage.sessions.get_session(confirm(session_id))
        if session is None:
            raise SessionNotFound(session_id)
        return session
