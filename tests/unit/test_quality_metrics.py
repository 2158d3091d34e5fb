"""The quality report (contract 7.3) against values worked out by hand, on sessions where every definition
matters: clicks off the result list, repeated clicks, non-click events, sessions without results, a
result shown twice, positions past 10 and 20, ties in the top lists, and empty denominators."""

from __future__ import annotations

import statistics
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.domain.datasets.metrics import (
    PartAggregate,
    median_of_sorted,
    merge,
    query_text,
    report,
    top_queries,
)
from clickstream.records import StoredEvent

T = 1_000_000


def event(kind: str, object_id: str, after: int, event_id: str = "") -> StoredEvent:
    return StoredEvent(event_id or f"{kind}-{object_id}-{after}", object_id, kind, T + after, None)


def results(*object_ids: str) -> list[dict[str, Any]]:
    return [{"object_id": object_id, "rank": None, "meta": None} for object_id in object_ids]


# (query, results, (irrelevant, payload search), events)
SESSIONS: list[tuple[Any, list[dict[str, Any]], tuple[bool, bool], list[StoredEvent]]] = [
    # S1: two clicks on the list (positions 2, then 1) and a view before them: best position 1, first click 100.
    (
        "shoes",
        results("a", "b", "c"),
        (False, False),
        [event("view", "c", 50), event("click", "b", 100), event("click", "a", 300)],
    ),
    # S2: results, only a view: no click.
    ("shoes", results("a", "b"), (False, False), [event("view", "a", 10)]),
    # S3: a click on an object not shown: a click (click-through), but no position.
    ({"q": "boots", "size": 42}, results("x"), (False, False), [event("click", "z", 500)]),
    # S4: no results, a click anyway: counted as a click, no position, first click 20.
    ("hats", [], (False, False), [event("click", "h", 20)]),
    # S5: no results, no events, irrelevant.
    ("hats", [], (True, False), []),
    # S6: 25 results, r3 shown at 3 and again at 7: clicks at 25, 12, and twice on r3 (position 3 both times).
    (
        "socks",
        results(*(f"r{n}" if n != 7 else "r3" for n in range(1, 26))),
        (False, False),
        [
            event("click", "r25", 40),
            event("click", "r12", 60),
            event("click", "r3", 80),
            event("click", "r3", 90, "again"),
        ],
    ),
    # S7: results, no events, a payload search.
    ("shoes", results("a"), (False, True), []),
    # S8: a click at position 1, a second after.
    ("boots", results("b"), (False, False), [event("click", "b", 1000)]),
    # S9, S10: no results, one session each: a tie, broken by the query's compact JSON text.
    ({"b": 1}, [], (False, False), []),
    ("alpha", [], (False, False), []),
]

EXPECTED: dict[str, Any] = {
    "sessions": 10,
    "events": 11,
    "clicks": 9,
    "click_through_rate": 4 / 6,  # S1, S3, S6, S8 of the 6 with results
    "no_click_rate": 1 - 4 / 6,
    "no_results_rate": 4 / 10,
    "mean_reciprocal_rank": (1 + 0 + 0 + 1 / 3 + 0 + 1) / 6,
    "mean_click_position": (2 + 1 + 25 + 12 + 3 + 3 + 1) / 7,
    "click_position_histogram": {
        "1": 2,
        "2": 1,
        "3": 2,
        "4": 0,
        "5": 0,
        "6": 0,
        "7": 0,
        "8": 0,
        "9": 0,
        "10": 0,
        "11-20": 1,
        "21+": 1,
    },
    "irrelevant_rate": 1 / 10,
    "payload_search_rate": 1 / 10,
    "median_time_to_first_click_ms": 100,  # of 20, 40, 100, 500, 1000
    "top_no_click_queries": [{"query": "shoes", "sessions": 2}],
    "top_no_results_queries": [
        {"query": "hats", "sessions": 2},
        {"query": "alpha", "sessions": 1},  # '"alpha"' sorts before '{"b":1}'
        {"query": {"b": 1}, "sessions": 1},
    ],
}


def aggregate(sessions: list[Any]) -> PartAggregate:
    part = PartAggregate()
    for query, shown, flags, events in sessions:
        part.add({"search_query": query, "search_results": shown}, T, flags, events)
    return part


def report_of(parts: list[PartAggregate]) -> dict[str, Any]:
    """What the finish step does: merge the scalars, stream the sorted lists together."""
    delays = [iter(sorted(part.first_click_delays)) for part in parts]
    count = sum(len(part.first_click_delays) for part in parts)
    top = {
        "no_click": top_queries(iter(sorted(part.no_click_queries.items())) for part in parts),
        "no_results": top_queries(iter(sorted(part.no_results_queries.items())) for part in parts),
    }
    return report(merge(part.scalars() for part in parts), median_of_sorted(delays, count), top)


@pytest.mark.parametrize("cuts", [[10], [3, 7], [1, 4, 5], [5, 0, 5]], ids=lambda cuts: f"parts-{cuts}")
def test_the_report_matches_the_values_worked_out_by_hand_however_the_parts_are_cut(cuts: list[int]) -> None:
    parts, start = [], 0
    for size in cuts:
        parts.append(aggregate(SESSIONS[start : start + size]))
        start += size
    metrics = report_of(parts)
    assert metrics.keys() == EXPECTED.keys()
    for name, value in EXPECTED.items():
        assert metrics[name] == (pytest.approx(value) if isinstance(value, float) else value), name


def test_empty_denominators_are_null() -> None:
    no_results_no_clicks = aggregate([("q", [], (False, False), [event("view", "x", 5)])])
    metrics = report_of([no_results_no_clicks])
    for name in ("click_through_rate", "no_click_rate", "mean_reciprocal_rank", "mean_click_position"):
        assert metrics[name] is None, name
    assert metrics["median_time_to_first_click_ms"] is None
    assert metrics["no_results_rate"] == 1.0
    empty = report_of([PartAggregate()])
    assert {name for name, value in empty.items() if value is None} == {
        "click_through_rate",
        "no_click_rate",
        "no_results_rate",
        "mean_reciprocal_rank",
        "mean_click_position",
        "irrelevant_rate",
        "payload_search_rate",
        "median_time_to_first_click_ms",
    }
    assert set(empty["click_position_histogram"].values()) == {0}
    assert list(empty["click_position_histogram"]) == list(EXPECTED["click_position_histogram"])
    assert empty["top_no_click_queries"] == empty["top_no_results_queries"] == []


def test_the_top_lists_keep_twenty_most_sessions_first_ties_by_text() -> None:
    counts = {f"q{n:02d}": n % 4 + 1 for n in range(40)}  # many ties
    parts = [sorted((query_text(q), c) for q, c in counts.items() if hash(q) % 2 == side) for side in (0, 1)]
    top = top_queries(iter(part) for part in parts)
    expected = sorted(counts.items(), key=lambda item: (-item[1], query_text(item[0])))[:20]
    assert [(entry["query"], entry["sessions"]) for entry in top] == expected


def test_a_query_is_grouped_by_its_exact_text_keys_as_sent() -> None:
    part = aggregate(
        [
            ({"a": 1, "b": 2}, [], (False, False), []),
            ({"b": 2, "a": 1}, [], (False, False), []),
            ("Shoes", [], (False, False), []),
            ("shoes", [], (False, False), []),
        ]
    )
    assert sorted(part.no_results_queries.values()) == [1, 1, 1, 1]  # no case folding, no key sorting


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(-1000, 10**9), max_size=30), min_size=1, max_size=5))
def test_the_merged_median_is_statistics_median_always_as_a_float(parts: list[list[int]]) -> None:
    values = [value for part in parts for value in part]
    expected = statistics.median(values) if values else None
    median = median_of_sorted((iter(sorted(part)) for part in parts), len(values))
    assert median == expected
    assert type(median) is (float if values else type(None))  # 100.0 for an odd count too, never 100
