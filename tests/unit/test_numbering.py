"""Numbers handed to a container a block at a time (contract 8.2): sizes follow the rate, unused numbers
are let go after a while, a number not used goes back, a closed batch's numbers are dropped."""

from __future__ import annotations

from clickstream.domain.numbering import NumberBlocks
from clickstream.records import NumberBlock, Place


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def test_a_quiet_container_takes_one_number_at_a_time_and_a_busy_one_a_seconds_worth() -> None:
    clock = Clock()
    blocks = NumberBlocks(max_size=64, keep_ms=2_000, clock=clock)
    assert blocks.size_wanted() == 1
    counter = 0
    sizes = []
    for _ in range(200):  # 200 registrations a second
        clock.now += 5
        if blocks.take() is None:
            size = blocks.size_wanted()
            sizes.append(size)
            blocks.hold(NumberBlock("b-1", 8, counter + 1, counter + size))
            counter += size
    assert sizes[:4] == [1, 2, 4, 8]  # doubling while the numbers are used up within the second
    assert max(sizes) == 64  # capped
    clock.now += 10_000  # quiet again
    assert blocks.size_wanted() == 1


def test_numbers_come_in_order_and_are_let_go_when_kept_too_long() -> None:
    clock = Clock()
    blocks = NumberBlocks(max_size=64, keep_ms=2_000, clock=clock)
    assert blocks.hold(NumberBlock("b-1", 8, 11, 14)) == Place("b-1", 11, 8)
    assert blocks.take() == Place("b-1", 12, 8)
    clock.now += 2_001
    assert blocks.take() is None  # 13 and 14 are let go: a release tombstones them


def test_a_number_not_used_goes_back_and_comes_out_first() -> None:
    blocks = NumberBlocks(max_size=64, keep_ms=2_000, clock=Clock())
    first = blocks.hold(NumberBlock("b-1", 1, 1, 3))
    blocks.give_back(first)
    assert [blocks.take(), blocks.take(), blocks.take(), blocks.take()] == [
        Place("b-1", 1, 1),
        Place("b-1", 2, 1),
        Place("b-1", 3, 1),
        None,
    ]


def test_numbers_of_a_closed_batch_are_dropped_and_a_new_batch_replaces_them() -> None:
    blocks = NumberBlocks(max_size=64, keep_ms=2_000, clock=Clock())
    blocks.hold(NumberBlock("b-1", 8, 1, 10))
    blocks.drop("b-2")  # another batch: nothing happens
    assert blocks.take() == Place("b-1", 2, 8)
    blocks.drop("b-1")
    assert blocks.take() is None
    blocks.hold(NumberBlock("b-1", 8, 11, 12))
    blocks.give_back(Place("b-0", 5, 8))  # a number of an older batch is not kept
    assert blocks.hold(NumberBlock("b-2", 1, 1, 2)) == Place("b-2", 1, 1)
    assert blocks.take() == Place("b-2", 2, 1)  # b-1's number 12 was let go with its batch
    assert blocks.take() is None
