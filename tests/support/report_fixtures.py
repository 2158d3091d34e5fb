"""Manifests in the exact shapes of contract 7.3, 14.3 and 15.2, for the report page's tests."""

from __future__ import annotations

from typing import Any

HOSTILE_QUERY = '<script>alert(1)</script> "quotes" & <b>bold</b>'


def metrics(ctr: float = 0.5, mrr: float = 0.4, sessions: int = 100) -> dict[str, Any]:
    histogram = {str(position): max(0, 40 - 6 * position) for position in range(1, 11)}
    return {
        "sessions": sessions,
        "events": 250,
        "clicks": 120,
        "click_through_rate": ctr,
        "no_click_rate": 1 - ctr,
        "no_results_rate": 0.1,
        "mean_reciprocal_rank": mrr,
        "mean_click_position": 2.5,
        "click_position_histogram": {**histogram, "11-20": 3, "21+": 1},
        "irrelevant_rate": 0.02,
        "payload_search_rate": 0.0,
        "median_time_to_first_click_ms": 1800,
        "top_no_click_queries": [{"query": HOSTILE_QUERY, "sessions": 7}, {"query": {"text": "shoe"}, "sessions": 3}],
        "top_no_results_queries": [{"query": "red <i>shoes</i>", "sessions": 4}],
    }


def click_model() -> dict[str, Any]:
    examination = {str(position): round(1 / position**0.7, 4) for position in range(1, 16)}
    examination.update({str(position): None for position in range(16, 21)})
    fit = {"log_likelihood": -0.3, "perplexity": 1.2}
    return {
        "model": "pbm",
        "sessions": 90,
        "impressions": 900,
        "iterations": 40,
        "converged": True,
        "examination": examination,
        "click_rate": {
            key: None if value is None else round(0.3 * value**1.5, 4) for key, value in examination.items()
        },
        "held_out": {
            "sessions": 10,
            "impressions": 100,
            "models": {"rank_ctr": fit, "pair_ctr": fit, "pbm": fit, "ubm": fit},
        },
    }


def _estimate(value: float, half: float) -> dict[str, float]:
    return {"value": value, "low": value - half, "high": value + half}


def experiment(experiment_id: str = "ranker-<v7>") -> dict[str, Any]:
    variants = [
        {
            "variant": name,
            "sessions": 50,
            "sessions_with_results": 45,
            "click_through_rate": _estimate(ctr, 0.08),
            "mean_reciprocal_rank": _estimate(mrr, 0.06),
        }
        for name, ctr, mrr in (("control", 0.45, 0.35), ("b", 0.55, 0.42))
    ]
    comparisons = [
        {
            "variant": "b",
            "baseline": "control",
            "metric": metric,
            "difference": 0.1,
            "low": -0.01,
            "high": 0.2,
            "p_value": 0.07,
        }
        for metric in ("click_through_rate", "mean_reciprocal_rank")
    ]
    interleaving = {
        "sessions": 30,
        "teams": ["control", "b"],
        "wins": {"control": 10, "b": 16},
        "ties": 4,
        "preference": 0.2,
        "p_value": 0.33,
    }
    return {
        "id": experiment_id,
        "sample_ratio_p_value": 0.41,
        "variants": variants,
        "comparisons": comparisons,
        "interleaving": interleaving,
    }


def manifest(batch_id: str = "b-1700000000000-000000000001", **extra: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "release_id": "release-7",
        "batch_id": batch_id,
        "released_at": 1_700_000_000_000,
        "exported_at": 1_700_000_900_000,
        "events_until": 1_700_000_900_000,
        "session_count": 100,
        "event_count": 250,
        "format": "jsonl.gz",
        "parts": [],
        "metrics": metrics(),
        **extra,
    }


def history(releases: int) -> list[dict[str, Any]]:
    """Earlier releases (a day apart, before the manifest's), newest first, with CTR rising over time."""
    return [
        {
            "batch_id": f"b-{1_700_000_000_000 - (index + 1) * 86_400_000}-00000000000{index % 10}",
            "release_id": f"release-{releases - index}",
            "released_at": 1_700_000_000_000 - (index + 1) * 86_400_000,
            "metrics": metrics(ctr=0.3 + 0.005 * (releases - index), mrr=0.3, sessions=90),
        }
        for index in range(releases)
    ]
