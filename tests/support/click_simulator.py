"""A seeded simulator of search sessions whose clicks follow a known click model: the truth the fitted
models must recover (issue 18, point 6).

A *world* holds the truth: queries with Zipf-like popularity, candidates per query with a known
attractiveness, an examination curve 1/position^0.8 (PBM), or, with `cascade=True`, UBM's examination
that also depends on the nearest click above. Its logging ranker orders candidates by a noisy view of
their attractiveness, and in `randomised_share` of sessions perturbs that order (each candidate's rank
plus Gaussian noise), so good objects are also shown low and pairs are seen at several positions.

A batch is simulated with numpy at once (a million sessions in seconds) and read two ways: `count_rows()`
aggregates it straight into the judgments' CountRows (sorted, as the export's merge yields them), and
`session_documents()` renders each session in the dataset's shape for the export's own counter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from clickstream.domain.judgments.counting import CountRow

Floats = npt.NDArray[np.float64]
Indices = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]

COUNTED_POSITIONS = 20
KEY_PREVIOUS = COUNTED_POSITIONS + 1


def query_name(query: int) -> str:
    return f"q{query:05d}"


def object_name(query: int, candidate: int) -> str:
    return f"o{query:05d}-{candidate:02d}"  # zero-padded: string order is number order


def is_held_out(session_id: str) -> bool:
    """SPEC 14.4."""
    return int(hashlib.sha256(session_id.encode()).hexdigest()[:8], 16) % 10 == 0


def pbm_examination(list_length: int, power: float = 0.8) -> Floats:
    return np.asarray(1.0 / np.arange(1, list_length + 1) ** power, dtype=np.float64)


def ubm_examination(list_length: int) -> Floats:
    """gamma[position - 1][previous click]: with no click above, the PBM curve; after a click at r', the
    result d = position - r' below it is examined with 0.9 / d^0.5."""
    gamma = np.zeros((list_length, KEY_PREVIOUS))
    gamma[:, 0] = pbm_examination(list_length)
    for position in range(2, list_length + 1):
        for previous in range(1, position):
            gamma[position - 1, previous] = 0.9 / (position - previous) ** 0.5
    return gamma


@dataclass(frozen=True)
class World:
    attractiveness: Floats  # [query, candidate]
    examination: Floats  # [position - 1, previous click] (PBM: the same for every previous click)
    query_share: Floats  # [query], sums to 1
    base_rank: Floats  # [query, candidate]: the logging ranker's rank of each candidate (0 = top)
    list_length: int
    randomised_share: float
    rank_noise: float

    @property
    def queries(self) -> int:
        return int(self.attractiveness.shape[0])

    @property
    def candidates(self) -> int:
        return int(self.attractiveness.shape[1])

    def true_attractiveness(self) -> dict[tuple[str, str], float]:
        return {
            (query_name(query), object_name(query, candidate)): float(self.attractiveness[query, candidate])
            for query in range(self.queries)
            for candidate in range(self.candidates)
        }


def make_world(
    *,
    queries: int = 200,
    candidates: int = 20,
    list_length: int = 10,
    cascade: bool = False,
    randomised_share: float = 0.5,
    rank_noise: float = 3.0,
    seed: int = 7,
) -> World:
    rng = np.random.default_rng(seed)
    attractiveness = rng.beta(1.2, 3.0, size=(queries, candidates))
    popularity = 1.0 / np.arange(1, queries + 1)
    noisy = attractiveness + rng.normal(0.0, 0.1, size=attractiveness.shape)  # the ranker is decent, not perfect
    base_rank = np.argsort(np.argsort(-noisy, axis=1), axis=1).astype(np.float64)
    if cascade:
        examination = ubm_examination(list_length)
    else:
        examination = np.repeat(pbm_examination(list_length)[:, None], KEY_PREVIOUS, axis=1)
    return World(
        attractiveness,
        examination,
        popularity / popularity.sum(),
        base_rank,
        list_length,
        randomised_share,
        rank_noise,
    )


@dataclass(frozen=True)
class Batch:
    world: World
    seed: int
    query: Indices  # [session]
    shown: Indices  # [session, position - 1]: candidate index
    clicked: Flags  # [session, position - 1]
    previous: Indices  # [session, position - 1]: nearest clicked position above, 0 for none
    held_out: Flags  # [session]

    def session_id(self, session: int) -> str:
        return f"sim-{self.seed}-{session:07d}"

    @property
    def sessions(self) -> int:
        return len(self.query)

    @property
    def held_out_sessions(self) -> int:
        return int(self.held_out.sum())

    def count_rows(self) -> Iterator[CountRow]:
        """Aggregated per (query, object, position, previous click, held out), in that order."""
        sessions, length = self.shown.shape
        pair = self.query[:, None] * self.world.candidates + self.shown
        position = np.broadcast_to(np.arange(length), (sessions, length))
        key = ((pair * COUNTED_POSITIONS + position) * KEY_PREVIOUS + self.previous) * 2 + self.held_out[:, None]
        unique, inverse, impressions = np.unique(key.ravel(), return_inverse=True, return_counts=True)
        clicks = np.bincount(inverse, weights=self.clicked.ravel(), minlength=len(unique)).astype(np.int64)
        held_out, rest = unique % 2, unique // 2
        previous, rest = rest % KEY_PREVIOUS, rest // KEY_PREVIOUS
        slot, pair_index = rest % COUNTED_POSITIONS, rest // COUNTED_POSITIONS
        query, candidate = pair_index // self.world.candidates, pair_index % self.world.candidates
        columns = (query, candidate, slot, previous, held_out, impressions, clicks)
        last: tuple[int, int, str, str] = (-1, -1, "", "")
        for q, c, s, p, h, shown, clicked in zip(*(column.tolist() for column in columns), strict=True):
            if (q, c) != last[:2]:
                last = (q, c, query_name(q), object_name(q, c))
            yield CountRow(last[2], last[3], s + 1, p, bool(h), shown, clicked)

    def session_documents(self, *, repeat_clicks: bool = False) -> Iterator[dict[str, Any]]:
        """Each session as the dataset holds it: search_query, search_results [{object_id, rank}],
        is_payload_search, events [{event_id, event_type, object_id, ...}] (one click per clicked result;
        with `repeat_clicks`, every clicked result at an odd position is clicked twice - still one click)."""
        for session in range(self.sessions):
            query = int(self.query[session])
            objects = [object_name(query, int(candidate)) for candidate in self.shown[session]]
            session_id = self.session_id(session)
            events: list[dict[str, Any]] = []
            for position in np.flatnonzero(self.clicked[session]).tolist():
                times = 2 if repeat_clicks and position % 2 == 0 else 1
                for _ in range(times):
                    event = {"event_id": f"{session_id}-{len(events)}", "event_type": "click"}
                    events.append({**event, "object_id": objects[position], "meta": None})
            yield {
                "session_id": session_id,
                "search_query": query_name(query),
                "search_results": [{"object_id": name, "rank": float(rank + 1)} for rank, name in enumerate(objects)],
                "is_payload_search": False,
                "events": events,
            }

    def true_log_likelihood(self, *, held_out: bool = True) -> float:
        """Mean ln P(observed) per impression of the chosen sessions under the true model."""
        chosen = self.held_out == held_out
        attractiveness = self.world.attractiveness[self.query[chosen, None], self.shown[chosen]]
        positions = np.arange(self.world.list_length)[None, :]
        probability = attractiveness * self.world.examination[positions, self.previous[chosen]]
        clicked = self.clicked[chosen]
        return float(np.mean(np.where(clicked, np.log(probability), np.log1p(-probability))))


def simulate(world: World, sessions: int, seed: int = 11) -> Batch:
    rng = np.random.default_rng(seed)
    query = rng.choice(world.queries, size=sessions, p=world.query_share).astype(np.int64)
    noise = rng.normal(0.0, world.rank_noise, size=(sessions, world.candidates))
    noise *= (rng.random(sessions) < world.randomised_share)[:, None]
    shown = np.argsort(world.base_rank[query] + noise, axis=1, kind="stable")[:, : world.list_length]
    attractive = rng.random(shown.shape) < world.attractiveness[query[:, None], shown]
    looked = rng.random(shown.shape)
    clicked = np.zeros(shown.shape, dtype=bool)
    previous = np.zeros(shown.shape, dtype=np.int64)
    last_click: Indices = np.zeros(sessions, dtype=np.int64)
    for slot in range(world.list_length):  # a cascade: examination may depend on the clicks above
        previous[:, slot] = last_click
        clicked[:, slot] = attractive[:, slot] & (looked[:, slot] < world.examination[slot, last_click])
        last_click = np.where(clicked[:, slot], slot + 1, last_click)
    held_out = np.fromiter((is_held_out(f"sim-{seed}-{session:07d}") for session in range(sessions)), bool, sessions)
    return Batch(world, seed, query, shown.astype(np.int64), clicked, previous, held_out)


def count_documents(documents: Iterable[dict[str, Any]]) -> list[CountRow]:
    """SPEC 14.1 written out plainly, session by session: the reference the vectorised counts are checked
    against (string queries taken as they are: the simulator's are normalised already)."""
    totals: dict[tuple[str, str, int, int, bool], list[int]] = {}
    for document in documents:
        if document["is_payload_search"] or not document["search_results"]:
            continue
        clicked = {event["object_id"] for event in document["events"] if event["event_type"] == "click"}
        seen: set[str] = set()
        last_click = 0
        held_out = is_held_out(document["session_id"])
        for position, result in enumerate(document["search_results"][:COUNTED_POSITIONS], start=1):
            if result["object_id"] in seen:
                continue
            seen.add(result["object_id"])
            key = (document["search_query"], result["object_id"], position, last_click, held_out)
            total = totals.setdefault(key, [0, 0])
            total[0] += 1
            if result["object_id"] in clicked:
                total[1] += 1
                last_click = position
    return [CountRow(*key, impressions, clicks) for key, (impressions, clicks) in sorted(totals.items())]
