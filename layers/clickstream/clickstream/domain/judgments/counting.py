"""Counting impressions and clicks per (query, object, position) - the unit the click models are fitted on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class CountRow:
    query: str  # the query key of SPEC 14.1 (normalised string, or sorted compact JSON)
    object_id: str
    position: int  # 1..20, first occurrence only
    previous_click: int  # 0 when no result above was clicked, else the nearest clicked position above
    held_out: bool  # SPEC 14.4: int(sha256(session_id).hexdigest()[:8], 16) % 10 == 0
    impressions: int
    clicks: int
