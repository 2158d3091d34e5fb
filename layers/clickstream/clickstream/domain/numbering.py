"""Session numbers, handed to this container a block at a time (contract 8.1, 8.2).

One ADD on the collecting pointer hands out a block of numbers; the container gives them to its
registrations without writing again, so the pointer takes one write per block, not per session, and
a registration costs three writes in the steady state (claim, session, mark). A block is as large as
the numbers this container used in the last second (at least 1, at most NUMBER_BLOCK_MAX), so a quiet
container takes one number at a time and a busy one a second's worth. Numbers not used within
NUMBER_BLOCK_MS are let go: a release tombstones them like any number handed out and never written, and
paging a collecting batch never waits long for a number behind its cursor.
"""

from __future__ import annotations

import threading
from collections import deque

from clickstream.domain.rules import Clock
from clickstream.records import NumberBlock, Place

_RATE_WINDOW_MS = 1_000


class NumberBlocks:
    """The numbers this container holds, all of one batch; safe to share between threads."""

    def __init__(self, max_size: int, keep_ms: int, clock: Clock) -> None:
        self._max_size = max_size
        self._keep_ms = keep_ms
        self._clock = clock
        self._lock = threading.Lock()
        # One thread at a time asks the pointer for a block; the others then take from it.
        self.allocating = threading.Lock()
        self._numbers: deque[int] = deque()
        self._batch_id = ""
        self._shards = 1
        self._obtained_at = 0
        self._taken_at: deque[int] = deque()

    def take(self) -> Place | None:
        """A number of the held block, or None when there is none to give (a new block is needed)."""
        with self._lock:
            now = self._clock()
            if now - self._obtained_at > self._keep_ms:
                self._numbers.clear()
            if not self._numbers:
                return None
            self._note_taken(now)
            return Place(self._batch_id, self._numbers.popleft(), self._shards)

    def size_wanted(self) -> int:
        """How many numbers the next block should hold: the numbers used in the last second, and one."""
        with self._lock:
            self._forget_before(self._clock() - _RATE_WINDOW_MS)
            return max(1, min(self._max_size, len(self._taken_at) + 1))

    def hold(self, block: NumberBlock) -> Place:
        """Keep a new block (letting go of what is left of an older one); its first number is taken."""
        with self._lock:
            now = self._clock()
            if block.batch_id != self._batch_id or now - self._obtained_at > self._keep_ms:
                self._numbers.clear()
            self._batch_id, self._shards, self._obtained_at = block.batch_id, block.shards, now
            self._numbers.extend(range(block.first + 1, block.last + 1))
            self._note_taken(now)
            return Place(block.batch_id, block.first, block.shards)

    def give_back(self, place: Place) -> None:
        """Return a number that was not used (its registration found the session_id registered)."""
        with self._lock:
            if place.batch_id == self._batch_id:
                self._numbers.appendleft(place.session_number)

    def drop(self, batch_id: str) -> None:
        """Let go of every number of `batch_id`: a release has closed it."""
        with self._lock:
            if self._batch_id == batch_id:
                self._numbers.clear()

    def _note_taken(self, now: int) -> None:
        self._taken_at.append(now)
        self._forget_before(now - _RATE_WINDOW_MS)

    def _forget_before(self, moment: int) -> None:
        while self._taken_at and self._taken_at[0] < moment:
            self._taken_at.popleft()
        while len(self._taken_at) > self._max_size:
            self._taken_at.popleft()
