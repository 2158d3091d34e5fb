"""The search-quality report of a dataset (contract 7.3), computed while the parts are written.

Each part adds its sessions to a `PartAggregate` (counts, sums, a histogram) and keeps, sorted, the two
things that do not add up: the times to first click (for the exact median) and the per-query session
counts (for the exact top lists). The finish step merges the parts' aggregates and streams the sorted
lists together (`median_of_sorted`, `top_queries`), so it never holds a whole batch, nor reads it again.
"""

from __future__ import annotations

import heapq
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from clickstream.records import StoredEvent

HISTOGRAM_KEYS = (*(str(position) for position in range(1, 11)), "11-20", "21+")
TOP_QUERIES = 20
CLICK = "click"


def query_text(query: Any) -> str:
    """A query's grouping and ordering key: its compact JSON text, keys as sent."""
    return json.dumps(query, separators=(",", ":"), ensure_ascii=False)


def histogram_key(position: int) -> str:
    if position <= 10:
        return str(position)
    return "11-20" if position <= 20 else "21+"


@dataclass
class PartAggregate:
    """What the sessions of one part contribute to the report; merged with `merge`."""

    sessions: int = 0
    events: int = 0
    clicks: int = 0
    with_results: int = 0
    with_results_clicked: int = 0
    best_positions: Counter[int] = field(default_factory=Counter)  # sessions with results, by best position
    positioned_clicks: int = 0
    position_sum: int = 0
    histogram: Counter[str] = field(default_factory=Counter)
    irrelevant: int = 0
    payload_searches: int = 0
    first_click_delays: list[int] = field(default_factory=list)
    no_click_queries: Counter[str] = field(default_factory=Counter)
    no_results_queries: Counter[str] = field(default_factory=Counter)

    def add(
        self, document: dict[str, Any], session_created_at: int, flags: tuple[bool, bool], events: list[StoredEvent]
    ) -> None:
        """One session: its search document (query, results, ...), creation time, (irrelevant, payload
        search) flags, and its events as exported."""
        is_irrelevant, is_payload_search = flags
        self.sessions += 1
        self.events += len(events)
        self.irrelevant += is_irrelevant
        self.payload_searches += is_payload_search
        clicks = [event for event in events if event.event_type == CLICK]
        self.clicks += len(clicks)
        if clicks:
            self.first_click_delays.append(min(click.created_at for click in clicks) - session_created_at)
        results = document.get("search_results") or []
        if not results:
            self.no_results_queries[query_text(document.get("search_query"))] += 1
            return
        self.with_results += 1
        positions = _first_positions(results)
        clicked = [positions[click.object_id] for click in clicks if click.object_id in positions]
        self.positioned_clicks += len(clicked)
        self.position_sum += sum(clicked)
        self.histogram.update(histogram_key(position) for position in clicked)
        if clicked:
            self.best_positions[min(clicked)] += 1
        if clicks:
            self.with_results_clicked += 1
        else:
            self.no_click_queries[query_text(document.get("search_query"))] += 1

    def scalars(self) -> dict[str, Any]:
        """The additive part, as JSON (the sorted lists travel apart)."""
        return {
            "sessions": self.sessions,
            "events": self.events,
            "clicks": self.clicks,
            "with_results": self.with_results,
            "with_results_clicked": self.with_results_clicked,
            "best_positions": {str(position): count for position, count in sorted(self.best_positions.items())},
            "positioned_clicks": self.positioned_clicks,
            "position_sum": self.position_sum,
            "histogram": {key: self.histogram[key] for key in HISTOGRAM_KEYS},
            "irrelevant": self.irrelevant,
            "payload_searches": self.payload_searches,
            "first_clicks": len(self.first_click_delays),
        }


def _first_positions(results: list[dict[str, Any]]) -> dict[str, int]:
    """object_id -> the 1-based index of the first result showing it."""
    positions: dict[str, int] = {}
    for index, result in enumerate(results, start=1):
        positions.setdefault(str(result.get("object_id")), index)
    return positions


def merge(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The scalars of every part, added up."""
    total: dict[str, Any] = {"best_positions": Counter(), "histogram": Counter(dict.fromkeys(HISTOGRAM_KEYS, 0))}
    for part in parts:
        for name, value in part.items():
            if isinstance(value, dict):
                total[name].update(value)
            else:
                total[name] = total.get(name, 0) + value
    return total


def _ratio(numerator: float, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def report(
    total: dict[str, Any], median_first_click: float | None, top: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """The metrics of contract 7.3 from merged scalars, the median, and the top query lists."""
    sessions = total.get("sessions", 0)
    with_results = total.get("with_results", 0)
    click_through = _ratio(total.get("with_results_clicked", 0), with_results)
    reciprocal = math.fsum(count / int(position) for position, count in sorted(total["best_positions"].items()))
    return {
        "sessions": sessions,
        "events": total.get("events", 0),
        "clicks": total.get("clicks", 0),
        "click_through_rate": click_through,
        "no_click_rate": None if click_through is None else 1 - click_through,
        "no_results_rate": _ratio(sessions - with_results, sessions),
        "mean_reciprocal_rank": _ratio(reciprocal, with_results),
        "mean_click_position": _ratio(total.get("position_sum", 0), total.get("positioned_clicks", 0)),
        "click_position_histogram": {key: int(total["histogram"][key]) for key in HISTOGRAM_KEYS},
        "irrelevant_rate": _ratio(total.get("irrelevant", 0), sessions),
        "payload_search_rate": _ratio(total.get("payload_searches", 0), sessions),
        "median_time_to_first_click_ms": median_first_click,
        "top_no_click_queries": top["no_click"],
        "top_no_results_queries": top["no_results"],
    }


def median_of_sorted(streams: Iterable[Iterator[int]], count: int) -> float | None:
    """statistics.median of the values of sorted `streams` (`count` in all), in one merged pass; always a
    float (statistics.median gives an int for an odd count of ints), so the report's type never varies."""
    if count == 0:
        return None
    lower, upper = (count - 1) // 2, count // 2
    middle: list[int] = []
    for rank, value in enumerate(heapq.merge(*streams)):
        if rank >= lower:
            middle.append(value)
        if rank == upper:
            break
    return float(middle[0]) if lower == upper else (middle[0] + middle[1]) / 2


def top_queries(streams: Iterable[Iterator[tuple[str, int]]], most: int = TOP_QUERIES) -> list[dict[str, Any]]:
    """The `most` queries with most sessions, from per-part (query text, sessions) lists sorted by text;
    most sessions first, ties by the text ascending."""
    # A min-heap whose top is the worst entry kept. Texts arrive in ascending order, so among equal
    # counts a later one is worse: (sessions, -arrival) orders the worst first.
    kept: list[tuple[int, int, str]] = []
    for arrival, (text, group) in enumerate(groupby(heapq.merge(*streams), key=lambda entry: entry[0])):
        sessions = sum(count for _, count in group)
        if len(kept) < most:
            heapq.heappush(kept, (sessions, -arrival, text))
        elif sessions > kept[0][0]:
            heapq.heapreplace(kept, (sessions, -arrival, text))
    ranked = sorted(kept, key=lambda entry: (-entry[0], entry[2]))
    return [{"query": json.loads(text), "sessions": sessions} for sessions, _, text in ranked]
