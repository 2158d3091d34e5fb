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

MAX_ITERATIONS = 200
RELATIVE_TOLERANCE = 1e-6  # stop when the log-likelihood improves by less than this share of itself
PROBABILITY_FLOOR = 1e-6  # no probability is taken as 0 or 1: a log-likelihood is never infinite
REFERENCE_SLOT = 0  # position 1 (and, for UBM, no click above): its examination is 1 by convention

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


def _normalised(attractiveness: Floats, examination: Floats, slot_shown: Floats) -> tuple[Floats, Floats]:
    """examination(reference) = 1: the model only knows the product, so the scale moves to attractiveness.
    Both stay probabilities (a slot examined more than position 1 is capped at 1)."""
    shown = slot_shown > 0
    if shown[REFERENCE_SLOT] and examination[REFERENCE_SLOT] > 0:
        scale = float(examination[REFERENCE_SLOT])
    elif np.any(examination[shown] > 0):
        scale = float(np.max(examination[shown]))
    else:
        return attractiveness, examination
    return np.minimum(attractiveness * scale, 1.0), np.minimum(examination / scale, 1.0)


def fit_factors(counts: Counts, prior: Prior) -> FactorFit:
    """Maximum a posteriori attractiveness and maximum-likelihood examination by EM.

    E-step: a click was examined and attractive; a skip was attractive-but-unexamined with probability
    a(1-e)/(1-ae) and examined-but-unattractive with e(1-a)/(1-ae). M-step: each parameter is its
    expected share of its impressions (attractiveness with the prior's pseudo-impressions added).
    """
    pair_shown = counts.pair_totals(counts.shown)
    slot_shown = counts.slot_totals(counts.shown)
    misses = counts.shown - counts.clicks
    pseudo_clicks = prior.mean * prior.strength
    attractiveness = (counts.pair_totals(counts.clicks) + pseudo_clicks) / np.maximum(
        pair_shown + prior.strength, 1e-12
    )
    examination = np.full(counts.slots, 0.5)  # not 1: examination 1 everywhere is a fixed point of EM
    previous: float | None = None
    for iteration in range(MAX_ITERATIONS + 1):
        pair_attractiveness = attractiveness[counts.pair]
        slot_examination = examination[counts.slot]
        probability = clipped(pair_attractiveness * slot_examination)
        current = log_likelihood(probability, counts.shown, counts.clicks)
        if previous is not None and abs(current - previous) <= RELATIVE_TOLERANCE * abs(previous):
            return FactorFit(attractiveness, examination, slot_shown, iteration, True)
        if iteration == MAX_ITERATIONS:
            break
        previous = current
        skipped = misses / (1.0 - probability)
        attractive = counts.clicks + skipped * pair_attractiveness * (1.0 - slot_examination)
        examined = counts.clicks + skipped * slot_examination * (1.0 - pair_attractiveness)
        attractiveness = (counts.pair_totals(attractive) + pseudo_clicks) / np.maximum(
            pair_shown + prior.strength, 1e-12
        )
        examination = np.divide(
            counts.slot_totals(examined), slot_shown, out=np.zeros(counts.slots), where=slot_shown > 0
        )
        attractiveness, examination = _normalised(attractiveness, examination, slot_shown)
    return FactorFit(attractiveness, examination, slot_shown, MAX_ITERATIONS, False)
