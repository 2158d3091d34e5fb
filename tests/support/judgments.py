"""A batch worked out by hand for the judgment counts (contract 14.1): every rule has a session that
breaks it if the rule is not kept. The expected rows are written out below, not computed by the code."""

from __future__ import annotations

from typing import Any

OBJECT_QUERY = '{"a":"x","b":1}'  # {"b": 1, "a": "x"} and {"a": "x", "b": 1}: keys sorted, compact


def results(*object_ids: str) -> list[dict[str, Any]]:
    return [{"object_id": object_id} for object_id in object_ids]


# (session body, events as (object_id, event_type), marked irrelevant). Held out by the hash of 14.4:
# j-4 and j-7 (int(sha256(id)[:8], 16) % 10 == 0); the others are not.
SESSIONS: list[tuple[dict[str, Any], list[tuple[str, str]], bool]] = [
    # a listed twice (3 is not an impression); c clicked twice counts once; zz is not listed; a is only
    # viewed. c's nearest clicked position above is b's, 2.
    (
        {"session_id": "j-1", "search_query": "Red  Shoes ", "search_results": results("a", "b", "a", "c")},
        [("c", "click"), ("c", "click"), ("b", "click"), ("zz", "click"), ("a", "view")],
        False,
    ),
    # full-width letters and an ideographic space: NFKC makes it "RED shoes", then "red shoes"
    (
        {"session_id": "j-2", "search_query": "\uff32\uff25\uff24\u3000shoes", "search_results": results("a", "b")},
        [("a", "click")],
        False,
    ),
    ({"session_id": "j-3", "search_query": "\tRED\nshoes\n", "search_results": results("d")}, [], False),
    # a payload search is not counted, held out or not
    (
        {"session_id": "j-4", "search_query": "red shoes", "search_results": results("a"), "is_payload_search": True},
        [("a", "click")],
        False,
    ),
    # no results: nothing shown, nothing counted
    ({"session_id": "j-5", "search_query": "red shoes", "search_results": []}, [("a", "click")], False),
    # 22 results: o21 and o22 are past position 20, their clicks count nowhere
    (
        {
            "session_id": "j-6",
            "search_query": {"b": 1, "a": "x"},
            "search_results": results(*(f"o{n}" for n in range(1, 23))),
        },
        [("o3", "click"), ("o21", "click"), ("o22", "click"), ("o3", "click")],
        False,
    ),
    # held out; the duplicate o1 at position 2 is not an impression
    (
        {"session_id": "j-7", "search_query": {"a": "x", "b": 1}, "search_results": results("o1", "o1")},
        [("o1", "click")],
        False,
    ),
    # marked irrelevant: its results were shown, so it is counted
    ({"session_id": "j-8", "search_query": "RED SHOES", "search_results": results("b", "a")}, [("a", "click")], True),
]

# (query, object_id, position, previous_click, held_out, impressions, clicks), sorted
EXPECTED_ROWS: list[tuple[str, str, int, int, bool, int, int]] = sorted(
    [
        ("red shoes", "a", 1, 0, False, 2, 1),  # j-1 (not clicked), j-2 (clicked)
        ("red shoes", "a", 2, 0, False, 1, 1),  # j-8: b above it was not clicked
        ("red shoes", "b", 1, 0, False, 1, 0),  # j-8
        ("red shoes", "b", 2, 0, False, 1, 1),  # j-1
        ("red shoes", "b", 2, 1, False, 1, 0),  # j-2: a above it was clicked
        ("red shoes", "c", 4, 2, False, 1, 1),  # j-1
        ("red shoes", "d", 1, 0, False, 1, 0),  # j-3
        (OBJECT_QUERY, "o1", 1, 0, True, 1, 1),  # j-7
        # j-6: o1..o20 at their positions, o3 clicked, so everything below it has previous click 3
        *((OBJECT_QUERY, f"o{p}", p, 0 if p <= 3 else 3, False, 1, 1 if p == 3 else 0) for p in range(1, 21)),
    ]
)
EXPECTED_SESSIONS = 6  # j-1, j-2, j-3, j-6, j-7, j-8
EXPECTED_HELD_OUT_SESSIONS = 1  # j-7 (j-4 is held out by its hash but not counted)

# Per (query, object): impressions, clicks, distinct positions, mean position - what a judgment line says
EXPECTED_PAIRS: dict[tuple[str, str], tuple[int, int, int, float]] = {
    ("red shoes", "a"): (3, 2, 2, 4 / 3),
    ("red shoes", "b"): (3, 1, 2, 5 / 3),
    ("red shoes", "c"): (1, 1, 1, 4.0),
    ("red shoes", "d"): (1, 0, 1, 1.0),
    (OBJECT_QUERY, "o1"): (2, 1, 1, 1.0),
    **{(OBJECT_QUERY, f"o{p}"): (1, 1 if p == 3 else 0, 1, float(p)) for p in range(2, 21)},
}
