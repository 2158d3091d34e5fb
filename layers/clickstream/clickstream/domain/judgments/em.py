"""Expectation-maximisation for the click models that factor a click into two independent events:
P(click) = attractiveness[pair] x examination[slot].

PBM's slot is the position; UBM's is the position together with the position of the nearest click above
(Chuklin, Markov and de Rijke, "Click Models for Web Search", 2015, chapters 3 and 4). Both are fitted on
aggregated counts, so an iteration costs the number of distinct rows, not of sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

MAX_ITERATIONS = 1000  # EM steps (a SQUAREM cycle takes three)
RELATIVE_TOLERANCE = 1e-9  # per cycle; at 1e-6 plain EM left the examination ~0.01 short of its optimum
PROBABILITY_FLOOR = 1e-6  # no probability is taken as 0 or 1: a log-likelihood is never infinite
REFERENCE_SLOT = 0  # position 1 (and, for UBM, no click above): its examination is 1 by convention
# Pairs shown fewer times are left out of fitting the examination curve (their attractiveness is then
# fitted on it): a pair clicked once in three impressions low on the page says "a = 1" to the maximum
# likelihood, which then raises the curve there (the many-nuisance-parameters bias; 0.1 at a median of
# 3 impressions a pair in the simulations, 0.01 with this threshold).
MIN_PAIR_IMPRESSIONS = 30

Floats = npt.NDArray[np.float64]
Indices = npt.NDArray[np.int64]


def totals(index: Indices, weights: Floats, length: int) -> Floats:
    """Sum of `weights` per value of `index` (numpy's stubs type a weighted bincount as integers)."""
    return cast(Floats, np.bincount(index, weights=weights, minlength=length))


@dataclass(frozen=True)
class Counts:
    """Row i: `shown[i]` impressions of pair `pair[i]` in slot `slot[i]`, of which `clicks[i]` were clicked."""

    pair: Indices
    slot: Indices
    shown: Floats
    clicks: Floats
    pairs: int
    slots: int

    def subset(self, rows: npt.NDArray[np.bool_]) -> Counts:
        return Counts(self.pair[rows], self.slot[rows], self.shown[rows], self.clicks[rows], self.pairs, self.slots)

    def pair_totals(self, weights: Floats) -> Floats:
        return totals(self.pair, weights, self.pairs)

    def slot_totals(self, weights: Floats) -> Floats:
        return totals(self.slot, weights, self.slots)


@dataclass(frozen=True)
class Prior:
    """A Beta prior on attractiveness: `strength` pseudo-impressions clicked at rate `mean`."""

    mean: float
    strength: float


@dataclass(frozen=True)
class FactorFit:
    attractiveness: Floats  # per pair; a pair without impressions gets the prior mean
    examination: Floats  # per slot, the reference slot 1.0; 0.0 for a slot never shown
    slot_shown: Floats  # impressions per slot (0: never shown, its examination means nothing)
    iterations: int
    converged: bool

    def click_probability(self, counts: Counts) -> Floats:
        return clipped(self.attractiveness[counts.pair] * self.examination[counts.slot])


def clipped(probability: Floats) -> Floats:
    return np.clip(probability, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)


def log_likelihood(probability: Floats, shown: Floats, clicks: Floats) -> float:
    """Total natural log of the probability of what happened: `clicks` clicks and the rest not."""
    probability = clipped(probability)
    return float(np.dot(clicks, np.log(probability)) + np.dot(shown - clicks, np.log1p(-probability)))


class _Steps:
    """The EM map on one vector of parameters (attractiveness per pair, then examination per slot); with
    `examination` given, that part is held fixed."""

    def __init__(self, counts: Counts, examination: Floats | None = None) -> None:
        self.counts = counts
        self.fixed = examination
        self.pair_shown = counts.pair_totals(counts.shown)
        self.slot_shown = counts.slot_totals(counts.shown)
        self.misses = counts.shown - counts.clicks

    def split(self, parameters: Floats) -> tuple[Floats, Floats]:
        return parameters[: self.counts.pairs], parameters[self.counts.pairs :]

    def log_likelihood(self, parameters: Floats) -> float:
        attractiveness, examination = self.split(parameters)
        probability = attractiveness[self.counts.pair] * examination[self.counts.slot]
        return log_likelihood(probability, self.counts.shown, self.counts.clicks)

    def step(self, parameters: Floats) -> Floats:
        """E-step: a click was examined and attractive; a skip was attractive-but-unexamined with
        probability a(1-e)/(1-ae), examined-but-unattractive with e(1-a)/(1-ae). M-step: each parameter
        is its expected share of its impressions."""
        counts = self.counts
        attractiveness, examination = self.split(parameters)
        pair_attractiveness = attractiveness[counts.pair]
        slot_examination = examination[counts.slot]
        skipped = self.misses / (1.0 - clipped(pair_attractiveness * slot_examination))
        attractive = counts.clicks + skipped * pair_attractiveness * (1.0 - slot_examination)
        examined = counts.clicks + skipped * slot_examination * (1.0 - pair_attractiveness)
        return self.normalised(
            np.concatenate(
                [
                    _share(counts.pair_totals(attractive), self.pair_shown),
                    _share(counts.slot_totals(examined), self.slot_shown),
                ]
            )
        )

    def normalised(self, parameters: Floats) -> Floats:
        """Probabilities, and examination(reference) = 1: the model only knows the product, so the scale
        moves to attractiveness (a slot examined more than position 1 is capped at 1)."""
        attractiveness, examination = self.split(np.clip(parameters, 0.0, 1.0))
        if self.fixed is not None:
            return np.concatenate([attractiveness, self.fixed])
        shown = self.slot_shown > 0
        if shown[REFERENCE_SLOT] and examination[REFERENCE_SLOT] > 0:
            scale = float(examination[REFERENCE_SLOT])
        elif np.any(examination[shown] > 0):
            scale = float(np.max(examination[shown]))
        else:
            scale = 1.0
        return np.concatenate([np.minimum(attractiveness * scale, 1.0), np.minimum(examination / scale, 1.0)])


def _share(part: Floats, whole: Floats) -> Floats:
    return np.divide(part, whole, out=np.zeros(len(whole)), where=whole > 0)


def _extrapolated(steps: _Steps, start: Floats, first: Floats, second: Floats) -> Floats:
    """SQUAREM (Varadhan and Roland, 2008): a step along the path of two EM steps, as far as their
    shape says; alpha = -1 is the second step itself."""
    change = first - start
    curvature = second - 2.0 * first + start
    bend = float(np.dot(curvature, curvature))
    if bend <= 0.0:
        return second
    alpha = min(-1.0, -float(np.sqrt(np.dot(change, change) / bend)))
    return steps.normalised(start - 2.0 * alpha * change + alpha * alpha * curvature)


def _ascend(steps: _Steps, parameters: Floats) -> tuple[Floats, int, bool]:
    """SQUAREM cycles: two EM steps, an extrapolation along them and one EM step from there, kept only if
    the likelihood did not fall (else the second step is), until a cycle improves the log-likelihood by
    less than RELATIVE_TOLERANCE of itself. Returns the parameters, the EM steps taken, and whether it
    settled before MAX_ITERATIONS."""
    current = steps.log_likelihood(parameters)
    iterations, settled = 0, False
    while iterations < MAX_ITERATIONS and not settled:
        first = steps.step(parameters)
        second = steps.step(first)
        candidate = steps.step(_extrapolated(steps, parameters, first, second))
        iterations += 3
        value = steps.log_likelihood(candidate)
        if not value >= current:  # (also when not a number)
            candidate, value = second, steps.log_likelihood(second)
        settled = abs(value - current) <= RELATIVE_TOLERANCE * abs(current)
        parameters, current = candidate, value
    return parameters, iterations, settled


def _curve_rows(counts: Counts) -> npt.NDArray[np.bool_]:
    """The rows the examination is fitted on: pairs shown MIN_PAIR_IMPRESSIONS times or more, and every
    row of a slot no such pair was shown in (that slot has nothing better)."""
    well_shown = counts.pair_totals(counts.shown)[counts.pair] >= MIN_PAIR_IMPRESSIONS
    covered = counts.slot_totals(counts.shown * well_shown) > 0
    return np.asarray(well_shown | ~covered[counts.slot])


def fit_factors(counts: Counts) -> FactorFit:
    """Maximum-likelihood examination and attractiveness by EM, accelerated by SQUAREM (`_ascend`): the
    examination on the well-shown pairs' rows (`_curve_rows`), then every pair's attractiveness on all
    rows with that examination held fixed. No prior here: one would pull the examination where sparse
    pairs are shown (`shrunk` smooths attractiveness once examination is fitted)."""
    steps = _Steps(counts)
    ctr = _share(counts.pair_totals(counts.clicks), steps.pair_shown)
    start = np.concatenate([ctr, np.full(counts.slots, 0.5)])  # not 1 everywhere: a fixed point of EM
    rows = _curve_rows(counts)
    if rows.all():
        parameters, iterations, settled = _ascend(steps, start)
        attractiveness, examination = steps.split(parameters)
        return FactorFit(attractiveness, examination, steps.slot_shown, iterations, settled)
    curve = _Steps(counts.subset(rows))
    fitted, curve_iterations, curve_settled = _ascend(curve, start)
    fitted_attractiveness, examination = curve.split(fitted)
    attractiveness = np.where(curve.pair_shown > 0, fitted_attractiveness, ctr)
    pairs = _Steps(counts, examination)
    parameters, iterations, settled = _ascend(pairs, np.concatenate([attractiveness, examination]))
    attractiveness, _ = pairs.split(parameters)
    total = curve_iterations + iterations
    return FactorFit(attractiveness, examination, steps.slot_shown, total, curve_settled and settled)


def examined_impressions(fit: FactorFit, counts: Counts) -> Floats:
    """Per pair, its impressions weighted by their examination: the trials its attractiveness rests on."""
    return counts.pair_totals(counts.shown * fit.examination[counts.slot])


def information_trials(fit: FactorFit, counts: Counts) -> Floats:
    """Per pair, the trials a binomial share would need to be as precise as the PBM's estimate of its
    attractiveness a (its Fisher information, examination known): sum of n e (1-a) / (1-ae). Fewer than
    the examined impressions (sum of n e): clicks vary more, n ae(1-ae), than n e trials of a would."""
    attractiveness = fit.attractiveness[counts.pair]
    examination = fit.examination[counts.slot]
    information = counts.shown * examination * (1.0 - attractiveness) / (1.0 - clipped(attractiveness * examination))
    return counts.pair_totals(information)


def shrunk(fit: FactorFit, counts: Counts, strength: float) -> tuple[Floats, Prior]:
    """Attractiveness shrunk toward the mean by a Beta prior of `strength` pseudo-trials: (n a + k m) /
    (n + k), n the pair's examined impressions, m = all clicks / all examined impressions."""
    trials = examined_impressions(fit, counts)
    total = float(trials.sum())
    prior = Prior(float(counts.clicks.sum()) / total if total > 0 else 0.0, strength)
    smoothed = (trials * fit.attractiveness + prior.mean * strength) / np.maximum(trials + strength, 1e-12)
    return smoothed, prior
