"""What a container trusts of what it read (domain/remembered.py), the cache of the batch states (late writes)
and of the users being erased (registration's guard): for at most its interval, for good once final."""

from __future__ import annotations

from clickstream.domain.remembered import Remembered
from tests.support.late import FakeClock

TRUST_MS = 10_000


class Reads:
    """A stored value that changes under the cache, counting how often it is read."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return self.value


def test_a_value_is_trusted_for_less_than_its_interval_then_read_again() -> None:
    clock = FakeClock(1_000_000)
    cache: Remembered[str, str] = Remembered(clock, TRUST_MS, capacity=4)
    stored = Reads("open")
    assert cache.get("b-1", stored) == "open"
    stored.value = "fenced"
    clock.advance(TRUST_MS - 1)
    assert cache.get("b-1", stored) == "open"  # stale, within the interval
    assert stored.count == 1
    clock.advance(1)
    assert cache.get("b-1", stored) == "fenced"
    assert stored.count == 2


def test_with_no_interval_every_get_reads() -> None:
    cache: Remembered[str, str] = Remembered(FakeClock(0), 0, capacity=4)
    stored = Reads("x")
    for _ in range(3):
        cache.get("k", stored)
    assert stored.count == 3


def test_a_final_value_is_kept_for_good() -> None:
    clock = FakeClock(0)
    cache: Remembered[str, str] = Remembered(clock, TRUST_MS, capacity=4, final=lambda value: value == "exported")
    stored = Reads("exported")
    cache.get("b-1", stored)
    clock.advance(100 * TRUST_MS)
    assert cache.get("b-1", stored) == "exported"
    assert stored.count == 1


def test_the_oldest_key_is_forgotten_first_and_last_read_keeps_what_was_seen() -> None:
    clock = FakeClock(0)
    cache: Remembered[str, str] = Remembered(clock, TRUST_MS, capacity=2)
    assert cache.last_read("a") is None
    cache.get("a", Reads("1"))
    cache.get("b", Reads("2"))
    cache.get("b", Reads("2 again"))  # known: nothing forgotten
    assert cache.last_read("a") == "1"
    cache.get("c", Reads("3"))
    assert cache.last_read("a") is None
    assert (cache.last_read("b"), cache.last_read("c")) == ("2", "3")
    clock.advance(100 * TRUST_MS)
    assert cache.last_read("c") == "3"  # however old
