"""Sessions of experiments as the export sees them, for the experiments report's tests and the simulator."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from clickstream.domain.datasets.experiments import ExperimentAggregate, Sums, merge_sums
from clickstream.records import StoredEvent


@dataclass(frozen=True)
class TaggedSession:
    """One exported session: its experiment tag, results (object ids, each with its team or None), events."""

    experiment: tuple[str, str] | None
    results: Sequence[tuple[str, str | None]]
    events: Sequence[StoredEvent]

    def document(self) -> dict[str, Any]:
        shown = [{"object_id": object_id, "rank": None, "meta": None, "team": team} for object_id, team in self.results]
        return {"search_query": "q", "search_results": shown}

    def tag(self) -> str | None:
        return (
            None if self.experiment is None else json.dumps({"id": self.experiment[0], "variant": self.experiment[1]})
        )


def clicks(*object_ids: str, kind: str = "click") -> list[StoredEvent]:
    return [
        StoredEvent(f"e{index}-{object_id}", object_id, kind, 1_000 + index, None)
        for index, object_id in enumerate(object_ids)
    ]


def plain(experiment: tuple[str, str], object_ids: str, events: Sequence[StoredEvent]) -> TaggedSession:
    """A session showing one result per letter of `object_ids`, none of them teamed."""
    return TaggedSession(experiment, [(object_id, None) for object_id in object_ids], events)


def teamed(experiment: tuple[str, str], shown: str, events: Sequence[StoredEvent]) -> TaggedSession:
    """An interleaved session; `shown` is "x:a y:b": object x from team a, y from team b."""
    pairs = [entry.split(":") for entry in shown.split()]
    return TaggedSession(experiment, [(object_id, team) for object_id, team in pairs], events)


def range_sums(sessions: Iterable[TaggedSession]) -> Sums:
    """What one export range writes for these sessions."""
    aggregate = ExperimentAggregate()
    for session in sessions:
        aggregate.add(session.tag(), session.document(), list(session.events))
    return aggregate.sums()


def sums_cut_into(sessions: Sequence[TaggedSession], cuts: Sequence[int]) -> Sums:
    """The sums of `sessions` written by ranges that end at `cuts`, merged as the finish step merges them."""
    bounds = [0, *cuts, len(sessions)]
    return merge_sums(range_sums(sessions[start:end]) for start, end in pairwise(bounds))
