"""The formulas of the experiments report (contract 15.2), with the standard library only.

Every function returns None where a denominator is 0, as the contract says. Intervals are 95 %
(`Z`, the 0.975 quantile of the normal distribution, as the contract fixes it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z = 1.959963984540054
_EXACT_SIGN_TEST_MAX = 20_000  # above this many decisive sessions, the binomial tail is summed in log space


@dataclass(frozen=True)
class Estimate:
    value: float | None
    low: float | None
    high: float | None

    def as_json(self) -> dict[str, float | None]:
        return {"value": self.value, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Moments:
    """A sample summarised: its size, mean and sample variance (n - 1; None for n < 2)."""

    n: int
    mean: float | None
    variance: float | None


@dataclass(frozen=True)
class Difference:
    difference: float | None
    low: float | None
    high: float | None
    p_value: float | None


NO_DIFFERENCE = Difference(None, None, None, None)


def normal_p_value(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    return math.erfc(abs(z) / math.sqrt(2))


def wilson(successes: int, n: int) -> Estimate:
    """A proportion with its Wilson score interval."""
    if n == 0:
        return Estimate(None, None, None)
    p = successes / n
    z2 = Z * Z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(moments: Moments) -> Estimate:
    """A mean with its normal interval mean +- z s / sqrt(n); the interval is None for n < 2."""
    if moments.mean is None or moments.variance is None:
        return Estimate(moments.mean, None, None)
    half = Z * math.sqrt(moments.variance / moments.n)
    return Estimate(moments.mean, moments.mean - half, moments.mean + half)


def proportion_difference(successes: tuple[int, int], n: tuple[int, int]) -> Difference:
    """p1 - p0 (variant minus baseline) with the unpooled (Wald) interval, and the two-sided p-value of the
    pooled two-proportion z-test. `successes` and `n` are (variant, baseline)."""
    (k1, k0), (n1, n0) = successes, n
    if n1 == 0 or n0 == 0:
        return NO_DIFFERENCE
    p1, p0 = k1 / n1, k0 / n0
    difference = p1 - p0
    half = Z * math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    pooled = (k1 + k0) / (n1 + n0)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    p_value = None if pooled_se == 0 else normal_p_value(difference / pooled_se)
    return Difference(difference, difference - half, difference + half, p_value)


def mean_difference(variant: Moments, baseline: Moments) -> Difference:
    """mean1 - mean0 with the Welch interval +- z sqrt(s1^2/n1 + s0^2/n0) and its two-sided normal p-value."""
    if variant.mean is None or baseline.mean is None:
        return NO_DIFFERENCE
    difference = variant.mean - baseline.mean
    if variant.variance is None or baseline.variance is None:
        return Difference(difference, None, None, None)
    se = math.sqrt(variant.variance / variant.n + baseline.variance / baseline.n)
    p_value = None if se == 0 else normal_p_value(difference / se)
    return Difference(difference, difference - Z * se, difference + Z * se, p_value)


def chi_square_survival(statistic: float, degrees: int) -> float:
    """P(X >= statistic) for X ~ chi-square with `degrees` degrees of freedom: the regularized upper gamma
    function Q(degrees / 2, statistic / 2), in closed form (a finite sum for whole and half-whole orders)."""
    x = statistic / 2
    if x <= 0:
        return 1.0
    log_x = math.log(x)
    if degrees % 2 == 0:  # Q(a, x) = e^-x sum_{i < a} x^i / i!
        terms = [math.exp(i * log_x - x - math.lgamma(i + 1)) for i in range(degrees // 2)]
        return min(1.0, math.fsum(terms))
    # Q(m + 1/2, x) = erfc(sqrt x) + sum_{j < m} x^(j + 1/2) e^-x / Gamma(j + 3/2)
    terms = [math.exp((j + 0.5) * log_x - x - math.lgamma(j + 1.5)) for j in range(degrees // 2)]
    return min(1.0, math.fsum([math.erfc(math.sqrt(x)), *terms]))


def sample_ratio_p_value(counts: list[int]) -> float | None:
    """The chi-square goodness-of-fit p-value of `counts` against an equal split; None for one count."""
    total = sum(counts)
    if len(counts) < 2 or total == 0:
        return None
    expected = total / len(counts)
    statistic = math.fsum((count - expected) ** 2 / expected for count in counts)
    return chi_square_survival(statistic, len(counts) - 1)


def sign_test(wins: tuple[int, int]) -> float:
    """The two-sided exact sign test: min(1, 2 P(X <= min(w1, w2))), X ~ Binomial(w1 + w2, 1/2)."""
    n, least = wins[0] + wins[1], min(wins)
    if n <= _EXACT_SIGN_TEST_MAX:  # exact integers: sum of C(n, i) for i <= least, over 2^n
        tail, term = 0, 1
        for i in range(least + 1):
            tail += term
            term = term * (n - i) // (i + 1)
        return min(1.0, 2 * tail / (1 << n))
    log_half = n * math.log(0.5)
    log_n = math.lgamma(n + 1)
    terms = [math.exp(log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half) for i in range(least + 1)]
    return min(1.0, 2 * math.fsum(terms))
