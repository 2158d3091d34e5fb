"""Independent requests of one invocation, run concurrently: a page's events, a release's tombstones."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Fanout:
    """A thread pool of `max_concurrency` workers, created on first use and kept for the container."""

    def __init__(self, max_concurrency: int) -> None:
        self._max_concurrency = max_concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def max_concurrency(self) -> int:
        return self._max_concurrency

    def map(self, function: Callable[[T], R], values: Iterable[T]) -> list[R]:
        """`function` over `values` with up to `max_concurrency` calls in flight; results in order."""
        items = list(values)
        if len(items) <= 1:
            return [function(value) for value in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._max_concurrency, thread_name_prefix="fanout")
        # Each call runs in a copy of the caller's context: context variables (Powertools' thread-safe log
        # keys, the request's) follow the work into the pool, as they would if it ran inline.
        pool = self._pool
        futures = [pool.submit(contextvars.copy_context().run, function, value) for value in items]
        return [future.result() for future in futures]
