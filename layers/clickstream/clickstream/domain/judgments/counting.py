"""What a batch's click models are fitted on (contract 14.1): impressions and clicks counted per
(query key, object, position, previous click, held out), gathered while the export writes its ranges.

A range keeps its counts as a sorted gzip list of JSON arrays beside its report lists; after the ranges,
`merge_rows` streams the lists together adding equal keys, so nothing holds more than the distinct keys.
Standard library only: every export worker imports this, and only the judge step pays for numpy.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import astuple, dataclass, field
from itertools import groupby
from typing import Any

from clickstream.domain.datasets.metrics import CLICK
from clickstream.records import StoredEvent

MAX_POSITION = 20  # results shown past this are not impressions
HELD_OUT_MODULUS = 10  # one session in ten is held out (contract 14.4)

Key = tuple[str, str, int, int, bool]  # query, object_id, position, previous_click, held_out


@dataclass(frozen=True, order=True)
class CountRow:
    query: str  # the query key (`query_key`)
    object_id: str
    position: int  # 1..20, the object's first occurrence in the results
    previous_click: int  # the nearest clicked position above this one in the session, 0 when none
    held_out: bool
    impressions: int
    clicks: int

    def key(self) -> Key:
        return (self.query, self.object_id, self.position, self.previous_click, self.held_out)

    def as_list(self) -> list[Any]:
        """One line of a range's counts list."""
        return list(astuple(self))

    @classmethod
    def from_list(cls, values: list[Any]) -> CountRow:
        query, object_id, position, previous_click, held_out, impressions, clicks = values
        return cls(str(query), str(object_id), int(position), int(previous_click), bool(held_out), impressions, clicks)


def query_key(query: Any) -> str:
    """A string query normalised (NFKC, casefolded, whitespace runs made one space, stripped); any other
    JSON value as its compact JSON text with sorted keys."""
    if isinstance(query, str):
        return " ".join(unicodedata.normalize("NFKC", query).casefold().split())
    return json.dumps(query, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def is_held_out(session_id: str) -> bool:
    return int(hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:8], 16) % HELD_OUT_MODULUS == 0


def impressions_of(results: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(position, object_id) of each object's first occurrence at positions 1..20, in order."""
    seen: set[str] = set()
    shown = []
    for position, result in enumerate(results[:MAX_POSITION], start=1):
        object_id = str(result.get("object_id"))
        if object_id not in seen:
            seen.add(object_id)
            shown.append((position, object_id))
    return shown


@dataclass
class JudgmentCounter:
    """One range's counts: fed one session at a time, read back sorted."""

    sessions: int = 0
    held_out_sessions: int = 0
    counts: Counter[Key] = field(default_factory=Counter)
    clicks: Counter[Key] = field(default_factory=Counter)

    def add(
        self, session_id: str, document: dict[str, Any], is_payload_search: bool, events: list[StoredEvent]
    ) -> None:
        """One exported session: its id, search document, payload-search flag and events."""
        results = document.get("search_results") or []
        if not results or is_payload_search:
            return
        held_out = is_held_out(session_id)
        self.sessions += 1
        self.held_out_sessions += held_out
        query = query_key(document.get("search_query"))
        clicked = {event.object_id for event in events if event.event_type == CLICK}
        previous_click = 0
        for position, object_id in impressions_of(results):
            key = (query, object_id, position, previous_click, held_out)
            self.counts[key] += 1
            if object_id in clicked:
                self.clicks[key] += 1
                previous_click = position

    def rows(self) -> list[CountRow]:
        return [CountRow(*key, impressions, self.clicks[key]) for key, impressions in sorted(self.counts.items())]

    def scalars(self) -> dict[str, int]:
        """Additive, merged with the report's scalars: the fit needs sessions, which rows do not carry."""
        return {"judged_sessions": self.sessions, "judged_held_out_sessions": self.held_out_sessions}


def merge_rows(streams: Iterable[Iterable[CountRow]]) -> Iterator[CountRow]:
    """Sorted streams of rows merged into one sorted stream with unique keys, equal keys added up."""
    for key, group in groupby(heapq.merge(*streams), key=CountRow.key):
        impressions = clicks = 0
        for row in group:
            impressions += row.impressions
            clicks += row.clicks
        yield CountRow(*key, impressions, clicks)
