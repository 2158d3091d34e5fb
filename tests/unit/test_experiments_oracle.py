"""The experiments report against an independent computation: scipy and statsmodels (test tier only), from the
raw per-session values, on seeded random experiments of every size (small samples, skewed and even splits)."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, proportions_ztest

from clickstream.domain.datasets.experiments import experiments_report
from tests.support.experiments import TaggedSession, clicks, range_sums

Z = float(stats.norm.ppf(0.975))


def random_experiment(rng: random.Random) -> tuple[list[TaggedSession], dict[str, list[tuple[bool, float]]]]:
    """Sessions of one experiment with 2-4 variants; and, per variant, each session's (clicked, reciprocal rank)."""
    names = ["control", "b", "c", "d"][: rng.randint(2, 4)]
    sessions: list[TaggedSession] = []
    truth: dict[str, list[tuple[bool, float]]] = {name: [] for name in names}
    for name in names:
        click_rate = rng.uniform(0.05, 0.95)
        for _ in range(rng.randint(2, 120)):
            shown = [f"o{position}" for position in range(1, rng.randint(1, 12) + 1)]
            clicked = rng.random() < click_rate
            events = (
                clicks(rng.choice(shown)) if clicked and rng.random() < 0.9 else clicks("off-list") if clicked else []
            )
            best = min((shown.index(event.object_id) + 1 for event in events if event.object_id in shown), default=None)
            sessions.append(TaggedSession(("exp", name), [(object_id, None) for object_id in shown], events))
            truth[name].append((clicked, 0.0 if best is None else 1 / best))
    rng.shuffle(sessions)
    return sessions, truth


def welch(values: np.ndarray[Any, Any], baseline: np.ndarray[Any, Any]) -> tuple[float, float, float, float]:
    difference = float(values.mean() - baseline.mean())
    se = math.sqrt(values.var(ddof=1) / len(values) + baseline.var(ddof=1) / len(baseline))
    return difference, difference - Z * se, difference + Z * se, float(2 * stats.norm.sf(abs(difference) / se))


@pytest.mark.parametrize("seed", range(40))
def test_variants_comparisons_and_sample_ratio_agree_with_scipy_and_statsmodels(seed: int) -> None:
    rng = random.Random(seed)
    sessions, truth = random_experiment(rng)
    (entry,) = experiments_report(range_sums(sessions))
    names = sorted(truth)
    baseline = "control"
    counts = {name: sum(clicked for clicked, _ in truth[name]) for name in names}
    ranks = {name: np.array([rank for _, rank in truth[name]]) for name in names}
    for variant in entry["variants"]:
        name, n = variant["variant"], len(truth[variant["variant"]])
        low, high = proportion_confint(counts[name], n, alpha=0.05, method="wilson")
        assert variant["click_through_rate"] == pytest.approx(
            {"value": counts[name] / n, "low": low, "high": high}, rel=1e-9, abs=1e-12
        )
        half = Z * ranks[name].std(ddof=1) / math.sqrt(n)
        mean = float(ranks[name].mean())
        assert variant["mean_reciprocal_rank"] == pytest.approx(
            {"value": mean, "low": mean - half, "high": mean + half}, rel=1e-9, abs=1e-12
        )
    for comparison in entry["comparisons"]:
        name = comparison["variant"]
        n1, n0 = len(truth[name]), len(truth[baseline])
        got = (comparison["difference"], comparison["low"], comparison["high"], comparison["p_value"])
        if comparison["metric"] == "click_through_rate":
            low, high = confint_proportions_2indep(
                counts[name], n1, counts[baseline], n0, method="wald", compare="diff"
            )
            pooled = (counts[name] + counts[baseline]) / (n1 + n0)
            _, p_value = (
                proportions_ztest([counts[name], counts[baseline]], [n1, n0]) if 0 < pooled < 1 else (None, None)
            )
            expected = (counts[name] / n1 - counts[baseline] / n0, low, high, p_value)
        else:
            expected = welch(ranks[name], ranks[baseline])
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    observed = [len(truth[name]) for name in names]
    assert entry["sample_ratio_p_value"] == pytest.approx(stats.chisquare(observed).pvalue, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("seed", range(30))
def test_interleaving_agrees_with_scipys_exact_binomial_test(seed: int) -> None:
    rng = random.Random(seed)
    sessions = []
    wins = {"a": 0, "b": 0}
    ties = 0
    for _ in range(rng.randint(1, 400)):
        teams = ["a", "b"] if rng.random() < 0.5 else ["b", "a"]
        shown = [(f"o{position}", teams[position % 2]) for position in range(6)]
        picked = rng.sample(range(6), rng.choice([0, 1, 1, 2, 3]))
        per_team = {"a": 0, "b": 0}
        for position in picked:
            per_team[shown[position][1]] += 1
        if picked and per_team["a"] == per_team["b"]:
            ties += 1
        elif picked:
            wins[max(per_team, key=per_team.__getitem__)] += 1
        sessions.append(TaggedSession(("exp", "interleaved"), shown, clicks(*(shown[p][0] for p in picked))))
    (entry,) = experiments_report(range_sums(sessions))
    interleaving = entry["interleaving"]
    assert (interleaving["wins"], interleaving["ties"]) == (wins, ties)
    decided = wins["a"] + wins["b"]
    expected = 1.0 if decided == 0 else stats.binomtest(wins["a"], decided, 0.5).pvalue
    assert interleaving["p_value"] == pytest.approx(expected, rel=1e-9)
    if decided + ties:
        assert interleaving["preference"] == pytest.approx((wins["b"] - wins["a"]) / (decided + ties))


@pytest.mark.parametrize(("decided", "seed"), [(30_000, 1), (50_001, 2), (200_000, 3)])
def test_the_sign_test_of_large_samples_agrees_with_scipy(decided: int, seed: int) -> None:
    from clickstream.domain.datasets.statistics import sign_test

    first = int(decided / 2 - random.Random(seed).uniform(0, 3) * math.sqrt(decided) / 2)
    assert sign_test((first, decided - first)) == pytest.approx(stats.binomtest(first, decided, 0.5).pvalue, rel=1e-7)


@pytest.mark.parametrize("degrees", [1, 2, 3, 7, 50, 999])
def test_the_chi_square_tail_agrees_with_scipy(degrees: int) -> None:
    from clickstream.domain.datasets.statistics import chi_square_survival

    for statistic in (0.01, degrees / 2, float(degrees), degrees + 3 * math.sqrt(2 * degrees), 4.0 * degrees + 20):
        assert chi_square_survival(statistic, degrees) == pytest.approx(
            stats.chi2.sf(statistic, degrees), rel=1e-9, abs=1e-300
        )
