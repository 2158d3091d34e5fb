"""Click models over a batch's counts (SPEC 14.2-14.4): the manifest's `click_model` and the judgments.

The entry point the judge step calls is `fit_click_models`. Every model is first fitted on the rows of
the fitting sessions and scored on the held-out ones (`evaluation`); the published judgments then come
from PBM fitted on all rows. Attractiveness is PBM's maximum-likelihood estimate shrunk toward
the batch's mean attractiveness by a Beta prior of PRIOR_STRENGTH pseudo-trials: (n a + k m) / (n + k),
where n = the pair's examined impressions, sum of examination(position) x impressions (a pair shown low
counts for less). Its 95% interval is the Wilson score interval for that share on n* + k trials, n* the
pair's Fisher information under PBM in binomial trials (`em.information_trials`), examination taken as
known (it is fitted on the whole batch, so its own error is far smaller).
Everything is deterministic: same rows, same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from clickstream.domain.datasets.statistics import Z
from clickstream.domain.judgments.counting import CountRow
from clickstream.domain.judgments.em import FactorFit, Floats, information_trials
from clickstream.domain.judgments.evaluation import PRIOR_STRENGTH, fit_pbm, held_out_models, pbm_counts, rounded
from clickstream.domain.judgments.observations import POSITIONS, Observations, collect


@dataclass
class ClickModelFit:
    click_model: dict[str, Any]
    observations: Observations
    pbm: FactorFit | None  # PBM fitted on all rows (None: nothing was shown)

    def judgments(self) -> Iterator[dict[str, Any]]:
        """One line per (query, object_id) with impressions, sorted by query then object_id (SPEC 14.3)."""
        if self.pbm is None:
            return
        columns = _judgment_columns(self.observations, self.pbm)
        for index, (query, object_id) in enumerate(self.observations.keys):
            line: dict[str, Any] = {"query": query, "object_id": object_id}
            line.update({name: values[index] for name, values in columns.items()})
            yield line


def fit_click_models(rows: Iterable[CountRow], *, sessions: int, held_out_sessions: int) -> ClickModelFit:
    """Read the merged, sorted rows once; the session counts come from the caller (rows do not carry them)."""
    observations = collect(rows)
    pbm = fit_pbm(observations) if observations.impressions else None
    examination: dict[str, float | None] = {str(position): None for position in range(1, POSITIONS + 1)}
    if pbm is not None:
        for slot, value in enumerate(pbm.examination.tolist()):
            examination[str(slot + 1)] = rounded(value) if pbm.slot_shown[slot] > 0 else None
    held_out = observations.subset(observations.held_out)
    click_model = {
        "model": "pbm",
        "sessions": sessions,
        "impressions": observations.impressions,
        "iterations": 0 if pbm is None else pbm.iterations,
        "converged": True if pbm is None else pbm.converged,
        "examination": examination,
        "click_rate": _click_rate(observations),
        "held_out": {
            "sessions": held_out_sessions,
            "impressions": held_out.impressions,
            "models": held_out_models(observations),
        },
    }
    return ClickModelFit(click_model, observations, pbm)


def _click_rate(observations: Observations) -> dict[str, float | None]:
    """The raw click rate at each position 1..20 (clicks / impressions there; null where nothing was shown):
    what the examination curve is read against."""
    shown = np.bincount(observations.position - 1, weights=observations.shown, minlength=POSITIONS)
    clicks = np.bincount(observations.position - 1, weights=observations.clicks, minlength=POSITIONS)
    return {
        str(slot + 1): rounded(clicks[slot] / shown[slot]) if shown[slot] > 0 else None for slot in range(POSITIONS)
    }


def _wilson(successes: Floats, trials: Floats) -> tuple[Floats, Floats]:
    """statistics.wilson over arrays (one interval per pair, vectorised), on fractional trials."""
    z2 = Z * Z
    share = np.divide(successes, trials, out=np.zeros_like(trials), where=trials > 0)
    centre = (successes + z2 / 2) / (trials + z2)
    half = Z / (trials + z2) * np.sqrt(np.maximum(trials * share * (1 - share), 0.0) + z2 / 4)
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def _judgment_columns(observations: Observations, pbm: FactorFit) -> dict[str, list[Any]]:
    pairs = len(observations.keys)
    counts = pbm_counts(observations)
    impressions = counts.pair_totals(counts.shown)
    clicks = counts.pair_totals(counts.clicks)
    position_shown = counts.slot_totals(counts.shown)
    position_rate = np.divide(
        counts.slot_totals(counts.clicks), position_shown, out=np.zeros(POSITIONS), where=position_shown > 0
    )
    expected = counts.pair_totals(counts.shown * position_rate[counts.slot])
    attractiveness = pbm.attractiveness
    trials = information_trials(pbm, counts) + PRIOR_STRENGTH
    low, high = _wilson(attractiveness * trials, trials)
    coec = np.divide(clicks, expected, out=np.zeros(pairs), where=expected > 0)
    return {
        "impressions": [int(value) for value in impressions.tolist()],
        "clicks": [int(value) for value in clicks.tolist()],
        "ctr": [rounded(value) for value in (clicks / impressions).tolist()],
        "mean_position": [
            rounded(value) for value in (counts.pair_totals(counts.shown * (counts.slot + 1)) / impressions).tolist()
        ],
        "positions": [int(value) for value in np.bincount(counts.pair, minlength=pairs).tolist()],
        "attractiveness": [rounded(value) for value in attractiveness.tolist()],
        "attractiveness_low": [rounded(value) for value in low.tolist()],
        "attractiveness_high": [rounded(value) for value in high.tolist()],
        "coec": [
            rounded(value) if has else None for value, has in zip(coec.tolist(), (expected > 0).tolist(), strict=True)
        ],
    }
