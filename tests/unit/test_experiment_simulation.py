"""The experiments report proved by simulation (tests/support/simulation.py): with two identical rankers (A/A)
each test is significant at 5 % in about 5 % of seeded experiments, no more; a real difference between rankers
of known quality is found; and interleaving finds it with fewer sessions than A/B on CTR. The simulator's
shortcut sums are first checked to be exactly what the export's aggregate sums for the same sessions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clickstream.domain.datasets.experiments import experiment_report
from tests.support.experiments import range_sums
from tests.support.simulation import Ranker, SearchWorld, ab_sums, interleaving_sums, tagged_sessions

SEEDS = 400
ALPHA = 0.05
# Significant results among SEEDS A/A experiments are Binomial(SEEDS, 0.05): mean 20, sd 4.4. Three sd either
# side fails a correct test about 3 times in a thousand; a test twice too liberal (10 %) lands far above.
TOLERANCE = 3 * math.sqrt(SEEDS * ALPHA * (1 - ALPHA))
BASELINE, BETTER = Ranker("control", 0.15), Ranker("better", 0.10)


@pytest.fixture(scope="module")
def world() -> SearchWorld:
    return SearchWorld(2026)


def test_the_simulators_sums_are_what_the_exports_aggregate_sums(world: SearchWorld) -> None:
    rng = np.random.default_rng(5)
    ab = world.ab_sessions((BASELINE, BETTER), 300, rng)
    assert range_sums(tagged_sessions("e", ("control", "better"), ab)) == ab_sums("e", ("control", "better"), ab)
    mixed = world.interleaved_sessions((BASELINE, BETTER), 300, rng)
    assert range_sums(tagged_sessions("e", ("control", "better"), mixed)) == interleaving_sums("e", ("a", "b"), mixed)


def test_the_better_ranker_is_better_by_construction(world: SearchWorld) -> None:
    assert world.expected_click_through(BETTER) > world.expected_click_through(BASELINE) + 0.02


def a_a_p_values(world: SearchWorld, seed: int) -> dict[str, float | None]:
    """One A/A experiment: 400 sessions split by coin between two copies of one ranker, and 400 interleaved."""
    rng = np.random.default_rng([seed, 1])
    ab = experiment_report("e", ab_sums("e", ("b", "control"), world.ab_sessions((BASELINE, BASELINE), 400, rng))["e"])
    mixed = world.interleaved_sessions((BASELINE, BASELINE), 400, rng)
    interleaving = experiment_report("e", interleaving_sums("e", ("a", "b"), mixed)["e"])["interleaving"]
    by_metric = {comparison["metric"]: comparison["p_value"] for comparison in ab["comparisons"]}
    return {
        "click_through_rate": by_metric["click_through_rate"],
        "mean_reciprocal_rank": by_metric["mean_reciprocal_rank"],
        "sample_ratio": ab["sample_ratio_p_value"],
        "interleaving": interleaving["p_value"],
    }


def test_a_a_experiments_are_significant_in_about_5_percent_of_seeds(world: SearchWorld) -> None:
    significant = dict.fromkeys(("click_through_rate", "mean_reciprocal_rank", "sample_ratio", "interleaving"), 0)
    for seed in range(SEEDS):
        for test, p_value in a_a_p_values(world, seed).items():
            assert p_value is not None
            significant[test] += p_value < ALPHA
    for test, count in significant.items():
        # The sign test is exact and discrete, so it may only be conservative: below 5 % is allowed to 0 for it.
        floor = 0 if test == "interleaving" else SEEDS * ALPHA - TOLERANCE
        assert floor <= count <= SEEDS * ALPHA + TOLERANCE, (test, count, significant)


def detected(world: SearchWorld, seed: int, ab_sessions: int, interleaved_sessions: int) -> dict[str, bool]:
    rng = np.random.default_rng([seed, 2])
    ab = experiment_report(
        "e", ab_sums("e", ("control", "better"), world.ab_sessions((BASELINE, BETTER), ab_sessions, rng))["e"]
    )
    (ctr,) = [comparison for comparison in ab["comparisons"] if comparison["metric"] == "click_through_rate"]
    mixed = world.interleaved_sessions((BASELINE, BETTER), interleaved_sessions, rng)
    credit = experiment_report("e", interleaving_sums("e", ("a", "b"), mixed)["e"])["interleaving"]
    return {
        "ab": ctr["p_value"] < ALPHA and ctr["difference"] > 0,
        "interleaving": credit["p_value"] < ALPHA and credit["preference"] > 0,  # team b: the better ranker
    }


def test_a_real_difference_is_found_and_interleaving_needs_fewer_sessions(world: SearchWorld) -> None:
    seeds = 100
    with_many = [detected(world, seed, ab_sessions=12_000, interleaved_sessions=2_000) for seed in range(seeds)]
    assert sum(run["ab"] for run in with_many) >= 0.8 * seeds
    assert sum(run["interleaving"] for run in with_many) >= 0.8 * seeds
    # With the same 1,500 sessions each, interleaving finds the better ranker far more often than A/B on CTR.
    same_budget = [detected(world, seed, ab_sessions=1_500, interleaved_sessions=1_500) for seed in range(seeds)]
    assert sum(run["interleaving"] for run in same_budget) >= 0.8 * seeds
    assert sum(run["ab"] for run in same_budget) <= 0.5 * seeds
