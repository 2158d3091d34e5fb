"""Held-out evaluation (SPEC 14.4): every model fitted on the fitting sessions' rows, scored on the held-out
sessions' rows by mean log-likelihood per impression and by perplexity over positions 1..10."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clickstream.domain.judgments.em import Counts, FactorFit, Floats, Prior, clipped, fit_factors, shrunk, totals
from clickstream.domain.judgments.observations import (
    PERPLEXITY_POSITIONS,
    POSITIONS,
    UBM_PREVIOUS,
    Observations,
)

PRIOR_STRENGTH = 2.0  # pseudo-impressions at the global click rate, for pair_ctr and the models' attractiveness
DIGITS = 6  # published figures are rounded: stable bytes, no false precision

Predictor = Callable[[Observations], Floats]


def rounded(value: float) -> float:
    return round(float(value), DIGITS)


def prior_of(observations: Observations) -> Prior:
    shown = float(observations.shown.sum())
    return Prior(float(observations.clicks.sum()) / shown if shown else 0.0, PRIOR_STRENGTH)


def _fitted(counts: Counts) -> FactorFit:
    """EM's fit with its attractiveness shrunk by the prior (what every use of a model sees)."""
    fit = fit_factors(counts)
    attractiveness, _ = shrunk(fit, counts, PRIOR_STRENGTH)
    return FactorFit(attractiveness, fit.examination, fit.slot_shown, fit.iterations, fit.converged)


def pbm_counts(observations: Observations) -> Counts:
    return observations.counts(observations.position_slots(), POSITIONS)


def fit_pbm(observations: Observations) -> FactorFit:
    return _fitted(pbm_counts(observations))


def fit_ubm(observations: Observations) -> FactorFit:
    return _fitted(observations.counts(observations.position_and_previous_slots(), POSITIONS * UBM_PREVIOUS))


def _seen_only(fit: FactorFit, pair_shown: Floats, slot_group: Callable[[int], int]) -> FactorFit:
    """What the fitted model says about rows it never saw: an unseen pair gets the mean fitted attractiveness;
    an unseen slot the impression-weighted mean examination of its group (UBM: its position), else of all."""
    attractiveness = fit.attractiveness.copy()
    seen = pair_shown > 0
    attractiveness[~seen] = float(np.mean(attractiveness[seen])) if seen.any() else 0.0
    examination = fit.examination.copy()
    shown = fit.slot_shown
    overall = float(np.average(examination, weights=shown)) if shown.sum() else 1.0
    groups = np.array([slot_group(slot) for slot in range(len(shown))])
    for slot in np.flatnonzero(shown == 0):
        same = (groups == groups[slot]) & (shown > 0)
        examination[slot] = float(np.average(examination[same], weights=shown[same])) if same.any() else overall
    return FactorFit(attractiveness, examination, shown, fit.iterations, fit.converged)


def _factor_predictor(fitting: Observations, ubm: bool) -> Predictor:
    fit = fit_ubm(fitting) if ubm else fit_pbm(fitting)
    pair_shown = totals(fitting.pair, fitting.shown, len(fitting.keys))
    model = _seen_only(fit, pair_shown, (lambda slot: slot // UBM_PREVIOUS) if ubm else (lambda slot: -1))

    def predict(scored: Observations) -> Floats:
        slots = scored.position_and_previous_slots() if ubm else scored.position_slots()
        return model.click_probability(scored.rows(slots, len(model.examination)))

    return predict


def _rank_ctr(fitting: Observations) -> Predictor:
    """P(click) depends on the position only: its click rate in the fitting rows."""
    shown = totals(fitting.position, fitting.shown, POSITIONS + 1)
    clicks = totals(fitting.position, fitting.clicks, POSITIONS + 1)
    overall = prior_of(fitting).mean
    rate = np.divide(clicks, shown, out=np.full(POSITIONS + 1, overall), where=shown > 0)
    return lambda scored: clipped(rate[scored.position])


def _pair_ctr(fitting: Observations) -> Predictor:
    """P(click) depends on the pair only: its click rate smoothed by a Beta prior of PRIOR_STRENGTH
    pseudo-impressions at the global click rate (an unseen pair gets the global rate)."""
    prior = prior_of(fitting)
    pairs = len(fitting.keys)
    shown = totals(fitting.pair, fitting.shown, pairs)
    clicks = totals(fitting.pair, fitting.clicks, pairs)
    rate = (clicks + prior.mean * prior.strength) / (shown + prior.strength)
    return lambda scored: clipped(rate[scored.pair])


def score(probability: Floats, scored: Observations) -> dict[str, float | None]:
    """Mean ln P(observed) per impression; perplexity = mean over positions 1..10 that have held-out
    impressions (the others are skipped) of 2^(-mean log2 P(observed) at that position)."""
    if not scored.shown.sum():
        return {"log_likelihood": None, "perplexity": None}
    per_row = scored.clicks * np.log(probability) + (scored.shown - scored.clicks) * np.log1p(-probability)
    shown_at = totals(scored.position, scored.shown, POSITIONS + 1)
    log_at = totals(scored.position, per_row, POSITIONS + 1)
    top = np.arange(1, PERPLEXITY_POSITIONS + 1)
    top = top[shown_at[top] > 0]
    # 2^(-mean log2 P) = e^(-mean ln P)
    perplexity = float(np.mean(np.exp(-log_at[top] / shown_at[top]))) if len(top) else None
    return {
        "log_likelihood": rounded(per_row.sum() / scored.shown.sum()),
        "perplexity": None if perplexity is None else rounded(perplexity),
    }


MODELS: dict[str, Callable[[Observations], Predictor]] = {
    "rank_ctr": _rank_ctr,
    "pair_ctr": _pair_ctr,
    "pbm": lambda fitting: _factor_predictor(fitting, ubm=False),
    "ubm": lambda fitting: _factor_predictor(fitting, ubm=True),
}


def held_out_models(observations: Observations) -> dict[str, dict[str, float | None]]:
    """Each model fitted on the rows of fitting sessions, scored on the held-out ones."""
    fitting = observations.subset(~observations.held_out)
    scored = observations.subset(observations.held_out)
    if not fitting.shown.sum() or not scored.shown.sum():
        return {name: {"log_likelihood": None, "perplexity": None} for name in MODELS}
    return {name: score(fit(fitting)(scored), scored) for name, fit in MODELS.items()}
