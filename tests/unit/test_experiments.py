"""The experiments report (contract 15.2) against a fixture worked out by hand: every figure below is derived in
the comments from the sessions, not read off the code. Also: exact across any cut into ranges, the closed forms
of the chi-square and sign tests at textbook values, and null where a denominator is 0."""

from __future__ import annotations

import math
from typing import Any

import pytest

from clickstream.domain.datasets.experiments import experiments_report, recordable_sums, report_of_recorded
from clickstream.domain.datasets.statistics import Z, chi_square_survival, sign_test, wilson
from tests.support.experiments import TaggedSession, clicks, plain, range_sums, sums_cut_into, teamed

CONTROL, B, C, MIX = ("ranker-v7", "control"), ("ranker-v7", "b"), ("ranker-v7", "c"), ("mix", "interleaved")

SESSIONS = [
    plain(CONTROL, "xyz", clicks("y")),  # reciprocal rank 1/2, clicked
    plain(CONTROL, "xy", []),  # rr 0, not clicked
    plain(CONTROL, "x", clicks("x")),  # rr 1, clicked
    plain(CONTROL, "", clicks("q")),  # no results: a session of the variant, nothing else
    plain(B, "xy", clicks("x", "y")),  # best position 1: rr 1
    plain(B, "xyzw", clicks("q", "w")),  # off-list click and position 4: rr 1/4, clicked
    plain(B, "x", [*clicks("q"), *clicks("x", kind="view")]),  # clicked (off the list), no position: rr 0
    plain(C, "xyz", clicks("z")),  # rr 1/3, clicked: the only session of c
    plain(("other", "v"), "xy", []),  # an experiment of one variant
    teamed(MIX, "x:a y:b z:a", clicks("x", "z")),  # a clicked twice: a wins
    teamed(MIX, "x:b y:a", clicks("x", "x")),  # the same result twice counts once: b wins
    teamed(MIX, "x:a y:b", clicks("y", "x")),  # one each: a tie
    teamed(MIX, "x:a y:b", []),  # no click: not counted
    teamed(MIX, "x:a y:b", clicks("q")),  # a click on no teamed result: not counted
    teamed(MIX, "x:a y:b x:b", clicks("x")),  # x is first shown by a: a wins
]
UNTAGGED = [  # no experiment: counted by no experiment, teams or not
    TaggedSession(None, [("x", None)], clicks("x")),
    TaggedSession(None, [("x", "a")], clicks("x")),
]


def by_id(report: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry["id"]: entry for entry in report}


@pytest.fixture(scope="module")
def report() -> dict[str, dict[str, Any]]:
    return by_id(experiments_report(range_sums(SESSIONS + UNTAGGED)))


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p, z2 = k / n, Z * Z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return centre - half, centre + half


def test_every_experiment_is_reported_ascending_and_untagged_sessions_are_not(report: dict[str, Any]) -> None:
    assert list(report) == ["mix", "other", "ranker-v7"]


def test_variants_carry_their_counts_ctr_and_mrr_with_intervals(report: dict[str, Any]) -> None:
    variants = {variant["variant"]: variant for variant in report["ranker-v7"]["variants"]}
    assert list(variants) == ["b", "c", "control"]
    control, b, c = variants["control"], variants["b"], variants["c"]
    assert (control["sessions"], control["sessions_with_results"]) == (4, 3)
    assert (b["sessions"], b["sessions_with_results"], c["sessions"]) == (3, 3, 1)
    # control: 2 of 3 clicked; reciprocal ranks 1/2, 0, 1: mean 1/2, s^2 = (0 + 1/4 + 1/4) / 2 = 1/4.
    low, high = wilson_by_hand(2, 3)
    assert control["click_through_rate"] == pytest.approx({"value": 2 / 3, "low": low, "high": high})
    half = Z * 0.5 / math.sqrt(3)
    assert control["mean_reciprocal_rank"] == pytest.approx({"value": 0.5, "low": 0.5 - half, "high": 0.5 + half})
    # b: 3 of 3 clicked (Wilson's upper bound stays at 1); rr 1, 1/4, 0: mean 5/12,
    # s^2 = ((7/12)^2 + (2/12)^2 + (5/12)^2) / 2 = 78/288 = 13/48.
    low, high = wilson_by_hand(3, 3)
    assert b["click_through_rate"] == pytest.approx({"value": 1.0, "low": low, "high": 1.0})
    assert high == pytest.approx(1.0)
    half = Z * math.sqrt(13 / 48 / 3)
    assert b["mean_reciprocal_rank"] == pytest.approx({"value": 5 / 12, "low": 5 / 12 - half, "high": 5 / 12 + half})
    # c: one session: a mean, no interval.
    assert c["mean_reciprocal_rank"] == pytest.approx({"value": 1 / 3, "low": None, "high": None})


def test_every_variant_is_compared_with_control_on_both_metrics(report: dict[str, Any]) -> None:
    comparisons = {(entry["variant"], entry["metric"]): entry for entry in report["ranker-v7"]["comparisons"]}
    assert list(comparisons) == [
        ("b", "click_through_rate"),
        ("b", "mean_reciprocal_rank"),
        ("c", "click_through_rate"),
        ("c", "mean_reciprocal_rank"),
    ]
    assert {entry["baseline"] for entry in comparisons.values()} == {"control"}
    # CTR b - control = 1 - 2/3; Wald half-width z sqrt(0 + (2/3)(1/3)/3); pooled 5/6: se sqrt(5/6 1/6 2/3).
    half, z = Z * math.sqrt(2 / 27), (1 / 3) / math.sqrt(5 / 54)
    expected = {"difference": 1 / 3, "low": 1 / 3 - half, "high": 1 / 3 + half, "p_value": math.erfc(z / math.sqrt(2))}
    assert comparisons[("b", "click_through_rate")] == pytest.approx(
        {"variant": "b", "baseline": "control", "metric": "click_through_rate", **expected}
    )
    # MRR b - control = 5/12 - 1/2 = -1/12; Welch se sqrt(13/48/3 + 1/4/3) = sqrt(25/144) = 5/12: z = -1/5.
    expected = {"difference": -1 / 12, "low": -1 / 12 - Z * 5 / 12, "high": -1 / 12 + Z * 5 / 12}
    assert comparisons[("b", "mean_reciprocal_rank")] == pytest.approx(
        {
            "variant": "b",
            "baseline": "control",
            "metric": "mean_reciprocal_rank",
            **expected,
            "p_value": math.erfc(0.2 / math.sqrt(2)),
        }
    )
    # CTR c - control: pooled 3/4, se sqrt(3/16 (1 + 1/3)) = 1/2, z = 2/3.
    assert comparisons[("c", "click_through_rate")]["p_value"] == pytest.approx(math.erfc((2 / 3) / math.sqrt(2)))
    # MRR c: one session has no variance: the difference, and nothing that needs one.
    mrr = comparisons[("c", "mean_reciprocal_rank")]
    assert (mrr["difference"], mrr["low"], mrr["high"], mrr["p_value"]) == (
        pytest.approx(1 / 3 - 1 / 2),
        None,
        None,
        None,
    )


def test_the_sample_ratio_check_is_chi_square_against_an_equal_split(report: dict[str, Any]) -> None:
    # sessions b 3, c 1, control 4: expected 8/3 each; X^2 = (1/9 + 25/9 + 16/9) / (8/3) = 7/4, 2 degrees:
    # P(X >= 7/4) = e^(-7/8).
    assert report["ranker-v7"]["sample_ratio_p_value"] == pytest.approx(math.exp(-7 / 8))
    assert report["other"]["sample_ratio_p_value"] is None  # one variant


def test_interleaving_credits_the_team_with_more_distinct_clicked_results(report: dict[str, Any]) -> None:
    assert report["ranker-v7"]["interleaving"] is None
    mix = report["mix"]
    # a wins 2 (sessions 1 and 6), b 1 (session 2), 1 tie (session 3); 6 interleaved sessions in all.
    # preference = (1 - 2) / (3 + 1); sign test: n = 3, 2 P(X <= 1) = 2 (1 + 3) / 8 = 1.
    assert mix["interleaving"] == {
        "sessions": 6,
        "teams": ["a", "b"],
        "wins": {"a": 2, "b": 1},
        "ties": 1,
        "preference": -0.25,
        "p_value": 1.0,
    }
    # Interleaved sessions count as the variant's sessions, never in its CTR or MRR.
    (variant,) = mix["variants"]
    assert (variant["sessions"], variant["sessions_with_results"]) == (6, 0)
    assert (
        variant["click_through_rate"] == variant["mean_reciprocal_rank"] == {"value": None, "low": None, "high": None}
    )
    assert mix["comparisons"] == []


def test_more_than_two_teams_have_no_preference_or_p_value() -> None:
    three = [teamed(MIX, "x:a y:b z:c", clicks("z")), teamed(MIX, "x:a y:b z:c", clicks("x"))]
    (entry,) = experiments_report(range_sums(three))
    assert entry["interleaving"] == {
        "sessions": 2,
        "teams": ["a", "b", "c"],
        "wins": {"a": 1, "b": 0, "c": 1},
        "ties": 0,
        "preference": None,
        "p_value": None,
    }


@pytest.mark.parametrize("cuts", [[], [1], [3, 4, 9], list(range(1, len(SESSIONS)))])
def test_the_report_is_the_same_however_the_ranges_cut_the_sessions(cuts: list[int]) -> None:
    whole = experiments_report(range_sums(SESSIONS))
    assert experiments_report(sums_cut_into(SESSIONS, cuts)) == whole  # exactly, not approximately


def test_the_batch_record_keeps_the_sums_that_give_the_same_report() -> None:
    sums = range_sums(SESSIONS)
    recorded, truncated = recordable_sums(sums)
    assert not truncated
    assert report_of_recorded(recorded) == experiments_report(sums)


def test_the_record_keeps_the_largest_experiments_when_all_would_not_fit() -> None:
    many = [plain((f"exp-{number:04d}-" + "x" * 200, "v" * 200), "x", clicks("x")) for number in range(400)]
    many += [plain(("exp-big", "control"), "x", []), plain(("exp-big", "b"), "x", [])]
    recorded, truncated = recordable_sums(range_sums(many))
    assert truncated
    assert "exp-big" in recorded  # two sessions: kept before the one-session experiments
    assert 0 < len(recorded) < 401


def test_the_sums_the_record_keeps_fit_its_budget_however_deep_the_clicks() -> None:
    # Clicks spread over 1000 positions make the sums far larger than the report they give.
    deep = {
        "sessions": 1000,
        "with_results": 1000,
        "clicked": 1000,
        "best_positions": {str(p): 1 for p in range(1, 1001)},
    }
    sums = {f"exp-{number:03d}": {"variants": {"a": deep, "b": deep}, "interleaving": None} for number in range(120)}
    recorded, truncated = recordable_sums(sums)
    assert truncated
    assert 0 < sum(len(text.encode("utf-8")) for text in recorded.values()) <= 96_000
    assert report_of_recorded(recorded) == experiments_report({name: sums[name] for name in recorded})


@pytest.mark.parametrize(
    ("statistic", "degrees"),
    [
        (3.841458820694124, 1),
        (5.991464547107979, 2),
        (7.814727903251178, 3),
        (9.487729036781154, 4),
        (18.307038053275146, 10),
        (124.34211340400407, 100),
    ],
)
def test_chi_square_survival_is_5_percent_at_the_tabled_95th_percentiles(statistic: float, degrees: int) -> None:
    assert chi_square_survival(statistic, degrees) == pytest.approx(0.05, rel=1e-9)
    assert chi_square_survival(0.0, degrees) == 1.0


def test_the_sign_test_is_exact() -> None:
    assert sign_test((2, 8)) == sign_test((8, 2)) == (1 + 10 + 45) * 2 / 1024
    assert sign_test((5, 5)) == 1.0
    assert sign_test((0, 0)) == 1.0  # nothing decided: no evidence either way
    assert sign_test((0, 20)) == 2 / 2**20
    # Past the exact range, the log-space sum agrees with the normal approximation's order of magnitude
    # and stays a probability.
    assert 0 < sign_test((14_000, 16_000)) < 1e-25
    assert sign_test((15_000, 15_000)) == 1.0


def test_a_proportion_without_sessions_has_no_estimate() -> None:
    empty = wilson(0, 0)
    assert (empty.value, empty.low, empty.high) == (None, None, None)
