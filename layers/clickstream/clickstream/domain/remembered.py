"""What a container read and may trust for a while (BATCH_STATE_CACHE_MS): the one cache of the write paths.

Late writes keep each batch's state here (final facts for good); registration keeps the users being erased
(domain/erasure/requests.py). A value is trusted from the moment before it was read, so a container acts on
a state at most `trust_ms` older than the stored one; the protocols' waits (WRITE_SETTLE_MS) count on that.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from clickstream.domain.rules import Clock

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _never(_: object) -> bool:
    return False


class Remembered(Generic[K, V]):
    """Up to `capacity` values by key, each trusted for `trust_ms` after it was read, or for good once
    `final` says it can no longer change. The oldest key is forgotten first."""

    def __init__(self, clock: Clock, trust_ms: int, capacity: int, final: Callable[[V], bool] = _never) -> None:
        self._clock = clock
        self._trust_ms = trust_ms
        self._capacity = capacity
        self._final = final
        self._known: dict[K, tuple[V, int]] = {}  # key -> (value, read at)
        self._lock = threading.Lock()

    def get(self, key: K, read: Callable[[], V]) -> V:
        """The value as this container knows it, read again (by `read`) once it is no longer trusted."""
        now = self._clock()
        with self._lock:
            known = self._known.get(key)
        if known is not None and (self._final(known[0]) or now - known[1] < self._trust_ms):
            return known[0]
        value = read()
        with self._lock:
            if key not in self._known and len(self._known) >= self._capacity:
                self._known.pop(next(iter(self._known)))
            self._known[key] = (value, now)
        return value

    def last_read(self, key: K) -> V | None:
        """The value read last, however long ago (None: never read): for facts that hold for good once seen."""
        with self._lock:
            known = self._known.get(key)
        return None if known is None else known[0]
