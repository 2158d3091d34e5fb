"""The judgment counts (contract 14.1) against a batch worked out by hand, and their merge across ranges."""

from __future__ import annotations

import hashlib
from itertools import pairwise
from typing import Any

import pytest

from clickstream.domain.judgments.counting import CountRow, JudgmentCounter, is_held_out, merge_rows, query_key
from clickstream.records import StoredEvent
from tests.support.judgments import EXPECTED_HELD_OUT_SESSIONS, EXPECTED_ROWS, EXPECTED_SESSIONS, SESSIONS


def stored(events: list[tuple[str, str]]) -> list[StoredEvent]:
    return [StoredEvent(f"e{n}", object_id, kind, 1_000 + n, None) for n, (object_id, kind) in enumerate(events)]


def counted(sessions: list[tuple[dict[str, Any], list[tuple[str, str]], bool]]) -> JudgmentCounter:
    counter = JudgmentCounter()
    for body, events, _irrelevant in sessions:
        counter.add(body["session_id"], body, body.get("is_payload_search", False), stored(events))
    return counter


def test_the_counts_are_the_ones_worked_out_by_hand() -> None:
    counter = counted(SESSIONS)
    assert [tuple(row.as_list()) for row in counter.rows()] == EXPECTED_ROWS
    assert counter.scalars() == {
        "judged_sessions": EXPECTED_SESSIONS,
        "judged_held_out_sessions": EXPECTED_HELD_OUT_SESSIONS,
    }


def test_ranges_counted_apart_and_merged_are_the_batch_counted_at_once() -> None:
    ranges = [counted(SESSIONS[:2]), counted(SESSIONS[2:7]), counted(SESSIONS[7:])]
    merged = list(merge_rows(counter.rows() for counter in ranges))
    assert [tuple(row.as_list()) for row in merged] == EXPECTED_ROWS
    assert all(a.key() < b.key() for a, b in pairwise(merged))  # sorted, each key once


def test_a_range_list_line_reads_back_as_the_row() -> None:
    row = CountRow("red shoes", "a", 3, 1, True, 7, 2)
    assert row.as_list() == ["red shoes", "a", 3, 1, True, 7, 2]
    assert CountRow.from_list(row.as_list()) == row


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("  Red\u00a0\u00a0Shoes\t", "red shoes"),  # no-break spaces are whitespace too
        ("STRASSE", "strasse"),
        ("Stra\u00dfe", "strasse"),  # casefold, not lower
        ("\ufb01ne", "fine"),  # the ligature fi, by NFKC
        ({"z": [1, {"b": 2, "a": 1}], "k": "\u00e9"}, '{"k":"\u00e9","z":[1,{"a":1,"b":2}]}'),
        (None, "null"),
        (["Red Shoes"], '["Red Shoes"]'),  # only a string query is normalised
    ],
)
def test_the_query_key(query: Any, key: str) -> None:
    assert query_key(query) == key


def test_one_session_in_ten_is_held_out_by_its_id_hash() -> None:
    ids = [f"session-{n}" for n in range(2_000)]
    held = [session_id for session_id in ids if is_held_out(session_id)]
    assert held == [i for i in ids if int(hashlib.sha256(i.encode()).hexdigest()[:8], 16) % 10 == 0]
    assert 150 < len(held) < 250
