"""A seeded search world with rankers of known quality, for proving the experiments report by simulation.

Each query has DOCUMENTS documents with a known attractiveness (the chance a user clicks it once they look at
it). A ranker orders them by attractiveness plus its own fixed noise: the less noise, the better the ranker.
A user looks at position r (1-based) with chance 1 / r ** EXAMINATION_DECAY and clicks what they look at with
the document's attractiveness (a position-based click model), so clicks depend on both the ranker and the
position. Sessions are drawn with numpy, a batch at a time, and summed into the very sums the export writes
(`Sums`), which the report's own functions then turn into p-values; `tagged_sessions` gives the same sessions
as the export sees them, to check that the shortcut sums exactly what the export's aggregate would.

Interleaved sessions use team-draft interleaving (Radlinski, Kurup and Joachims 2008): per round a coin
decides which ranker picks first, and each adds its best document not yet shown, tagged with its team.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from clickstream.domain.datasets.experiments import Sums
from tests.support.experiments import TaggedSession, clicks

DOCUMENTS = 20
SHOWN = 10
EXAMINATION_DECAY = 0.8
INTERLEAVINGS_PER_QUERY = 32  # team-draft lists drawn per query, one picked at random per session
EXAMINATION = 1.0 / np.arange(1, SHOWN + 1) ** EXAMINATION_DECAY

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Ranker:
    name: str
    noise: float  # standard deviation of the noise added to attractiveness; lower ranks better


@dataclass(frozen=True)
class SimulatedSessions:
    """A batch of sessions: per session its variant (0 = first ranker), shown documents, teams, clicks."""

    variant: Array  # (n,) int
    shown: Array  # (n, SHOWN) document index
    teams: Array | None  # (n, SHOWN) 0/1 team per position, interleaved sessions only
    clicked: Array  # (n, SHOWN) bool


class SearchWorld:
    def __init__(self, seed: int, queries: int = 200) -> None:
        rng = np.random.default_rng(seed)
        self.queries = queries
        self.attractiveness = rng.beta(0.3, 3.0, size=(queries, DOCUMENTS))
        self._seed = seed
        self._rankings: dict[Ranker, Array] = {}
        self._interleavings: dict[tuple[Ranker, Ranker], tuple[Array, Array]] = {}

    def ranking(self, ranker: Ranker) -> Array:
        """(queries, DOCUMENTS): every document of each query in the ranker's order (fixed per ranker)."""
        if ranker not in self._rankings:
            noise = np.random.default_rng([self._seed, int(ranker.noise * 1000)]).normal(size=self.attractiveness.shape)
            self._rankings[ranker] = np.argsort(-(self.attractiveness + ranker.noise * noise), axis=1)
        return self._rankings[ranker]

    def expected_click_through(self, ranker: Ranker) -> float:
        """The ranker's true CTR: the chance of at least one click, averaged over the queries."""
        shown = self.ranking(ranker)[:, :SHOWN]
        chance = EXAMINATION * np.take_along_axis(self.attractiveness, shown, axis=1)
        return float(np.mean(1 - np.prod(1 - chance, axis=1)))

    def ab_sessions(self, rankers: tuple[Ranker, Ranker], n: int, rng: np.random.Generator) -> SimulatedSessions:
        """n sessions, each assigned to one ranker by a fair coin."""
        query = rng.integers(self.queries, size=n)
        variant = rng.integers(2, size=n)
        lists = np.stack([self.ranking(ranker)[:, :SHOWN] for ranker in rankers])
        shown = lists[variant, query]
        return SimulatedSessions(variant, shown, None, self._clicks(query, shown, rng))

    def interleaved_sessions(
        self, rankers: tuple[Ranker, Ranker], n: int, rng: np.random.Generator
    ) -> SimulatedSessions:
        """n sessions, each shown a team-draft interleaving of the two rankers' lists."""
        documents, teams = self._team_drafts(rankers)
        query = rng.integers(self.queries, size=n)
        pick = rng.integers(INTERLEAVINGS_PER_QUERY, size=n)
        shown, team = documents[query, pick], teams[query, pick]
        return SimulatedSessions(np.zeros(n, dtype=int), shown, team, self._clicks(query, shown, rng))

    def _clicks(self, query: Array, shown: Array, rng: np.random.Generator) -> Array:
        chance = EXAMINATION * self.attractiveness[query[:, None], shown]
        clicked: Array = rng.random(shown.shape) < chance
        return clicked

    def _team_drafts(self, rankers: tuple[Ranker, Ranker]) -> tuple[Array, Array]:
        if rankers not in self._interleavings:
            rng = np.random.default_rng([self._seed, 7])
            lists = [self.ranking(ranker) for ranker in rankers]
            documents = np.zeros((self.queries, INTERLEAVINGS_PER_QUERY, SHOWN), dtype=int)
            teams = np.zeros_like(documents)
            for query in range(self.queries):
                for draw in range(INTERLEAVINGS_PER_QUERY):
                    picked, sides = team_draft(lists[0][query], lists[1][query], rng)
                    documents[query, draw], teams[query, draw] = picked, sides
            self._interleavings[rankers] = (documents, teams)
        return self._interleavings[rankers]


def team_draft(first: Array, second: Array, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """One team-draft interleaving of two rankings: SHOWN documents and the team (0 or 1) of each."""
    picked: list[int] = []
    sides: list[int] = []
    taken = [0, 0]
    rankings = (first, second)
    while len(picked) < SHOWN:
        side = int(taken[0] > taken[1] or (taken[0] == taken[1] and rng.random() < 0.5))
        document = next(int(doc) for doc in rankings[side] if int(doc) not in picked)
        picked.append(document)
        sides.append(side)
        taken[side] += 1
    return picked, sides


def ab_sums(experiment_id: str, names: tuple[str, str], sessions: SimulatedSessions) -> Sums:
    """What the export would sum for these (not interleaved) sessions: per variant, counts and best positions."""
    variants = {}
    any_click = sessions.clicked.any(axis=1)
    best = np.argmax(sessions.clicked, axis=1) + 1  # first clicked position; meaningful where any_click
    for index, name in enumerate(names):
        mine = sessions.variant == index
        positions = Counter(best[mine & any_click].tolist())
        variants[name] = {
            "sessions": int(mine.sum()),
            "with_results": int(mine.sum()),
            "clicked": int((mine & any_click).sum()),
            "best_positions": {str(position): count for position, count in sorted(positions.items())},
        }
    return {experiment_id: {"variants": variants, "interleaving": None}}


def interleaving_sums(experiment_id: str, teams: tuple[str, str], sessions: SimulatedSessions) -> Sums:
    """What the export would sum for these interleaved sessions: each team's wins, and the ties."""
    assert sessions.teams is not None
    second = (sessions.clicked & (sessions.teams == 1)).sum(axis=1)
    first = (sessions.clicked & (sessions.teams == 0)).sum(axis=1)
    n = len(sessions.variant)
    variant = {"sessions": n, "with_results": 0, "clicked": 0, "best_positions": {}}
    credit = {
        "sessions": n,
        "wins": {teams[0]: int((first > second).sum()), teams[1]: int((second > first).sum())},
        "ties": int(((first == second) & (first > 0)).sum()),
    }
    return {experiment_id: {"variants": {"interleaved": variant}, "interleaving": credit}}


def tagged_sessions(
    experiment_id: str, names: tuple[str, str], sessions: SimulatedSessions, teams: tuple[str, str] = ("a", "b")
) -> list[TaggedSession]:
    """The same sessions as the export reads them: results d<doc> (teamed when interleaved), clicks in order."""
    tagged = []
    for index in range(len(sessions.variant)):
        shown = [f"d{doc}" for doc in sessions.shown[index]]
        results: list[tuple[str, str | None]]
        if sessions.teams is None:
            experiment, results = (experiment_id, names[sessions.variant[index]]), [(doc, None) for doc in shown]
        else:
            sides = sessions.teams[index]
            experiment = (experiment_id, "interleaved")
            results = [(doc, teams[side]) for doc, side in zip(shown, sides, strict=True)]
        clicked = [shown[position] for position in np.flatnonzero(sessions.clicked[index])]
        tagged.append(TaggedSession(experiment, results, clicks(*clicked)))
    return tagged
