"""Sessions needed to tell two rankers apart: A/B on CTR, A/B on MRR, and team-draft interleaving.

The simulator of tests/support/simulation.py (a seeded world, two rankers of known quality, a position-based
click model) draws whole experiments; the report's own functions give each its p-value. Power at n sessions
is the share of experiments that find the better ranker better at p < 0.05; the figure is the least n (to a
few per cent, by doubling then bisection) with 80 % power.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from clickstream.domain.datasets.experiments import experiment_report
from tests.support.simulation import Ranker, SearchWorld, ab_sums, interleaving_sums

WORLD_SEED = 2026
BASELINE = Ranker("control", noise=0.15)
BETTER = Ranker("better", noise=0.10)
POWER = 0.8
ALPHA = 0.05

Detects = Callable[[SearchWorld, int, np.random.Generator], bool]


def _ab(metric: str) -> Detects:
    def detects(world: SearchWorld, n: int, rng: np.random.Generator) -> bool:
        sessions = world.ab_sessions((BASELINE, BETTER), n, rng)
        report = experiment_report("e", ab_sums("e", ("control", "better"), sessions)["e"])
        (comparison,) = [entry for entry in report["comparisons"] if entry["metric"] == metric]
        p_value = comparison["p_value"]
        return p_value is not None and p_value < ALPHA and comparison["difference"] > 0

    return detects


def _interleaving(world: SearchWorld, n: int, rng: np.random.Generator) -> bool:
    sessions = world.interleaved_sessions((BASELINE, BETTER), n, rng)
    credit = experiment_report("e", interleaving_sums("e", ("a", "b"), sessions)["e"])["interleaving"]
    return bool(credit["p_value"] < ALPHA and credit["preference"] > 0)  # b is the better ranker's team


METHODS: dict[str, Detects] = {
    "ab_click_through_rate": _ab("click_through_rate"),
    "ab_mean_reciprocal_rank": _ab("mean_reciprocal_rank"),
    "interleaving": _interleaving,
}


def power(world: SearchWorld, detects: Detects, n: int, repeats: int, seed: int) -> float:
    rng = np.random.default_rng([seed, n])
    return sum(detects(world, n, rng) for _ in range(repeats)) / repeats


def sessions_for_power(world: SearchWorld, detects: Detects, repeats: int, seed: int) -> dict[str, Any]:
    """The least n (within 5 %) whose power reaches POWER: doubling from 32, then bisection."""
    low, high = 16, 32
    while (measured := power(world, detects, high, repeats, seed)) < POWER:
        low, high = high, high * 2
    at_high = measured
    while high / low > 1.05:
        middle = round(math.sqrt(low * high))
        if (measured := power(world, detects, middle, repeats, seed)) >= POWER:
            high, at_high = middle, measured
        else:
            low = middle
    return {"sessions": high, "power": at_high}


def measure(repeats: int) -> dict[str, Any]:
    started = time.monotonic()
    world = SearchWorld(WORLD_SEED)
    results: dict[str, Any] = {
        "repeats": repeats,
        "world_seed": WORLD_SEED,
        "rankers": {
            ranker.name: {"noise": ranker.noise, "click_through_rate": round(world.expected_click_through(ranker), 4)}
            for ranker in (BASELINE, BETTER)
        },
        "methods": {},
    }
    for name, detects in METHODS.items():
        results["methods"][name] = sessions_for_power(world, detects, repeats, seed=len(name))
    methods = results["methods"]
    results["ratio_ab_ctr_to_interleaving"] = round(
        methods["ab_click_through_rate"]["sessions"] / methods["interleaving"]["sessions"], 1
    )
    results["seconds"] = round(time.monotonic() - started, 1)
    return results
