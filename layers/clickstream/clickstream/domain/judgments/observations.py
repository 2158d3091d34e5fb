"""The merged count rows as arrays: one entry per distinct (query, object, position, previous click, held
out), pairs numbered in (query, object_id) order. Memory grows with distinct rows only."""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clickstream.domain.judgments.counting import CountRow
from clickstream.domain.judgments.em import Counts, Floats, Indices, totals

POSITIONS = 20  # impressions are counted at positions 1..20 (SPEC 14.1)
UBM_PREVIOUS = POSITIONS + 1  # previous_click is 0 (none above) or a position 1..19
PERPLEXITY_POSITIONS = 10  # perplexity is averaged over positions 1..10 (SPEC 14.4)


@dataclass(frozen=True)
class Observations:
    keys: list[tuple[str, str]]  # (query, object_id) of pair i, sorted
    pair: Indices
    position: Indices  # 1..20
    previous: Indices  # 0..19
    held_out: npt.NDArray[np.bool_]
    shown: Floats
    clicks: Floats

    @property
    def impressions(self) -> int:
        return int(self.shown.sum())

    def subset(self, mask: npt.NDArray[np.bool_]) -> Observations:
        return Observations(
            self.keys,
            self.pair[mask],
            self.position[mask],
            self.previous[mask],
            self.held_out[mask],
            self.shown[mask],
            self.clicks[mask],
        )

    def position_slots(self) -> Indices:
        """PBM's slot: the position (0-based)."""
        return self.position - 1

    def position_and_previous_slots(self) -> Indices:
        """UBM's slot: the position and the nearest click above it."""
        return (self.position - 1) * UBM_PREVIOUS + self.previous

    def counts(self, slot: Indices, slots: int) -> Counts:
        """Rows added up per (pair, slot): what an EM iteration walks."""
        key = self.pair * slots + slot
        unique, inverse = np.unique(key, return_inverse=True)
        return Counts(
            pair=unique // slots,
            slot=unique % slots,
            shown=totals(inverse, self.shown, len(unique)),
            clicks=totals(inverse, self.clicks, len(unique)),
            pairs=len(self.keys),
            slots=slots,
        )

    def rows(self, slot: Indices, slots: int) -> Counts:
        """The rows as they are (for scoring, row by row)."""
        return Counts(self.pair, slot, self.shown, self.clicks, len(self.keys), slots)


def collect(rows: Iterable[CountRow]) -> Observations:
    """Read the stream once into compact arrays (rows without impressions are skipped)."""
    numbers: dict[tuple[str, str], int] = {}
    columns = {name: array("q") for name in ("pair", "position", "previous", "held_out", "shown", "clicks")}
    pair, position, previous = columns["pair"].append, columns["position"].append, columns["previous"].append
    held_out, shown, clicks = columns["held_out"].append, columns["shown"].append, columns["clicks"].append
    last: tuple[str, str] | None = None
    number = -1
    for row in rows:
        if row.impressions <= 0 or not 0 <= row.previous_click < row.position <= POSITIONS:
            continue  # nothing shown, or not a counted impression (SPEC 14.1)
        if last is None or row.query != last[0] or row.object_id != last[1]:  # the stream is sorted: runs
            last = (row.query, row.object_id)
            number = numbers.setdefault(last, len(numbers))
        pair(number)
        position(row.position)
        previous(row.previous_click)
        held_out(1 if row.held_out else 0)
        shown(row.impressions)
        clicks(min(row.clicks, row.impressions))
    keys = list(numbers)
    order = sorted(range(len(keys)), key=keys.__getitem__)  # a no-op on a sorted stream, kept for safety
    renumbered = np.empty(len(keys), dtype=np.int64)
    renumbered[order] = np.arange(len(keys), dtype=np.int64)
    arrays = {name: np.frombuffer(column, dtype=np.int64) for name, column in columns.items()}
    return Observations(
        keys=[keys[index] for index in order],
        pair=renumbered[arrays["pair"]] if keys else arrays["pair"],
        position=arrays["position"],
        previous=arrays["previous"],
        held_out=arrays["held_out"].astype(bool),
        shown=arrays["shown"].astype(np.float64),
        clicks=arrays["clicks"].astype(np.float64),
    )
