"""Pages of a batch (contract 2.2, 8.1, 8.8): ascending numbers after a cursor, within the size cap.

The batch's shards are read concurrently and merged (`shards`). A page's sessions get their first events
in one concurrent wave (up to DYNAMODB_MAX_CONCURRENCY sessions, 64 by default): each session's first read
is capped so that the wave cannot read more than half a page of events even if every event were as large
as allowed; a session with more events than its cap is read on when its turn to be rendered comes, and
only if it still fits. So a page cut short by the size cap reads little it does not send, and the first
session is always taken (the size rules make any one session fit), so paging always moves on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clickstream.codec import wire_size
from clickstream.domain.batches import BatchDirectory
from clickstream.domain.context import Context
from clickstream.domain.rules import MAX_EVENT_BYTES, MAX_RESPONSE_BYTES
from clickstream.domain.shards import sessions_after
from clickstream.records import EventsRead, StoredEvent, StoredSession
from clickstream.views import render_page, render_session

_PAGE_ENVELOPE_BYTES = 1_024


@dataclass
class _Page:
    """Rendered sessions of one page and the wire bytes they take."""

    budget: int
    texts: list[str] = field(default_factory=list)
    last_number: int | None = None
    used: int = 0

    def fits(self, text: str) -> bool:
        """Whether `text` would be added (the first session always is)."""
        return not self.texts or self.used + wire_size(text) + 1 <= self.budget

    def add(self, session_number: int, text: str) -> bool:
        if not self.fits(text):
            return False
        size = wire_size(text) + 1  # and a comma
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


class Pager:
    def __init__(self, context: Context, directory: BatchDirectory) -> None:
        self._storage = context.storage
        self._fanout = context.fanout
        self._directory = directory

    def page_json(self, batch_id: str, after_number: int, limit: int, events_limit: int) -> str:
        """One page of a batch as response text, never over MAX_RESPONSE_BYTES."""
        shards = self._directory.shards_of(batch_id)
        page = _Page(budget=MAX_RESPONSE_BYTES - _PAGE_ENVELOPE_BYTES)
        most = self._fanout.max_concurrency
        chunk: list[StoredSession] = []
        chunk_floor = 0  # wire size of the chunk's documents: the least its sessions will take
        chunk_size = max(1, min(limit, most))
        # One more than `limit` tells whether more follow; the read stops there.
        stream = sessions_after(
            self._storage, self._fanout, batch_id, shards, after_number=after_number, wanted=limit + 1
        )
        for session in stream:
            if len(page.texts) + len(chunk) == limit:
                return self._finish(page, chunk, events_limit, batch_id, cut=True)
            document_size = wire_size(session.document)
            if (page.texts or chunk) and page.used + chunk_floor + document_size > page.budget:
                # Cannot fit even without its events: not worth reading them.
                return self._finish(page, chunk, events_limit, batch_id, cut=True)
            chunk.append(session)
            chunk_floor += document_size
            if len(chunk) == chunk_size:
                if not self._add_to_page(page, chunk, events_limit):
                    return page.render(batch_id, has_more=True)
                chunk, chunk_floor = [], 0
                chunk_size = page.room_for(limit - len(page.texts), most)
        return self._finish(page, chunk, events_limit, batch_id, cut=False)

    def _finish(self, page: _Page, chunk: list[StoredSession], events_limit: int, batch_id: str, *, cut: bool) -> str:
        if chunk and not self._add_to_page(page, chunk, events_limit):
            cut = True
        return page.render(batch_id, has_more=cut)

    def _add_to_page(self, page: _Page, chunk: list[StoredSession], events_limit: int) -> bool:
        """Render `chunk` into `page` with each session's first events; False when the page filled up."""
        room = max(0, page.budget - page.used) // 2
        first_read = max(1, min(events_limit, room // (len(chunk) * MAX_EVENT_BYTES))) if events_limit else 0
        reads = self._fanout.map(lambda session: self._storage.events.read(session.session_id, first_read), chunk)
        for session, read in zip(chunk, reads, strict=True):
            text = render_session(session, read.events)
            if read.last_key is not None and len(read.events) < events_limit and page.fits(text):
                text = render_session(session, self._read_on(session, read, events_limit))
            if not page.add(session.session_number, text):
                return False
        return True

    def _read_on(self, session: StoredSession, read: EventsRead, events_limit: int) -> list[StoredEvent]:
        """The session's first `events_limit` events, reading on from a first read cut at its cap."""
        rest = self._storage.events.read(session.session_id, events_limit - len(read.events), after=read.last_key)
        return [*read.events, *rest.events]
