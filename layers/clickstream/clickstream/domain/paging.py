"""Pages of a batch (contract 2.2): ascending numbers after a cursor, within the response size cap.

Sessions are read lazily and their events fetched a chunk at a time (concurrently within a chunk), the
chunk sized by what still fits, so a page cut short by the size cap reads little it does not send. The
first session is always taken (the size rules make any one session fit), so paging always moves on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clickstream.codec import wire_size
from clickstream.domain.context import Context
from clickstream.domain.rules import MAX_EVENT_BYTES, MAX_RESPONSE_BYTES
from clickstream.errors import BatchNotFound
from clickstream.records import StoredSession
from clickstream.views import render_page, render_session

_PAGE_ENVELOPE_BYTES = 1_024


@dataclass
class _Page:
    """Rendered sessions of one page and the wire bytes they take."""

    budget: int
    texts: list[str] = field(default_factory=list)
    last_number: int | None = None
    used: int = 0

    def add(self, session_number: int, text: str) -> bool:
        size = wire_size(text) + 1  # and a comma
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


class Pager:
    def __init__(self, context: Context) -> None:
        self._storage = context.storage
        self._fanout = context.fanout

    def page_json(self, batch_id: str, after_number: int, limit: int, events_limit: int) -> str:
        """One page of a batch as response text, never over MAX_RESPONSE_BYTES."""
        page = _Page(budget=MAX_RESPONSE_BYTES - _PAGE_ENVELOPE_BYTES)
        most = self._fanout.max_concurrency
        chunk: list[StoredSession] = []
        chunk_floor = 0  # wire size of the chunk's documents: the least its sessions will take
        # The first chunk could be read in full even if little of it fits: at most twice the budget even if
        # every event is as large as allowed. Later chunks follow the sizes seen.
        worst_session = max(1, events_limit * MAX_EVENT_BYTES)
        chunk_size = max(1, min(limit, most, 2 * page.budget // worst_session))
        cut = False
        # One more than `limit` tells whether more follow; the read stops there.
        for session in self._storage.sessions.sessions_after(batch_id, after_number, page_size=limit + 1):
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
                chunk_size = page.room_for(limit - len(page.texts), most)
        if chunk and not self._add_to_page(page, chunk, events_limit):
            cut = True
        if not page.texts:
            self.require_batch(batch_id)
        return page.render(batch_id, has_more=cut)

    def require_batch(self, batch_id: str) -> None:
        """BatchNotFound unless `batch_id` is released or collecting."""
        # Record, then pointer, then record again: a release moving the batch between the first two
        # reads has written the record by the time of the third.
        if self._storage.releases.get_batch_record(batch_id) is not None:
            return
        pointer = self._storage.pointer.get()
        if pointer is not None and pointer.batch_id == batch_id:
            return
        if self._storage.releases.get_batch_record(batch_id) is None:
            raise BatchNotFound(batch_id)

    def _add_to_page(self, page: _Page, chunk: list[StoredSession], events_limit: int) -> bool:
        """Render `chunk` into `page` with each session's first events; False when the page filled up."""
        events = self._fanout.map(lambda session: self._storage.events.first(session.session_id, events_limit), chunk)
        for session, session_events in zip(chunk, events, strict=True):
            if not page.add(session.session_number, render_session(session, session_events)):
                return False
        return True
