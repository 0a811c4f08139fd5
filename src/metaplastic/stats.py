"""Statistics of the paper (docs/protocol.md section 6), as pure functions over arrays.

The memorized-item test compares an item's performance with its performance
under random permutations of the test labels (paper, Methods 2.5). With the
predictions fixed, the shuffled score of item i is hypergeometric: the
population is every test image of the sequence, the successes are the images
predicted as i, and the draws are item i's test images. So the p-value needs
no sampling; the Monte Carlo version is kept to check it.

p-value convention: the paper calls an item memorized when its real
performance is *higher* than the shuffled one in at least 950 of 1,000
shuffles, i.e. when P(shuffled >= observed) < 0.05. (docs/protocol.md words it as
"fewer than 5% score strictly higher", which would call an item that is never
predicted, performance 0, memorized; we follow the paper.)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import optimize, special
from scipy import stats as sps

ALPHA_MEMORIZED = 0.05


def item_performance(predictions: np.ndarray, labels: np.ndarray, n_items: int) -> np.ndarray:
    """Fraction of each item's test images whose arg-max readout is that item (Methods 2.6)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    correct = np.bincount(labels[predictions == labels], minlength=n_items)
    counts = np.bincount(labels, minlength=n_items)
    return correct / np.maximum(counts, 1)


def memorized_pvalues(predictions: np.ndarray, labels: np.ndarray, n_items: int) -> np.ndarray:
    """Exact p-value per item: P(score under shuffled labels >= observed score)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    population = len(labels)
    predicted_as = np.bincount(predictions, minlength=n_items)[:n_items]
    draws = np.bincount(labels, minlength=n_items)
    correct = np.bincount(labels[predictions == labels], minlength=n_items)
    return sps.hypergeom.sf(correct - 1, population, predicted_as, draws)


def memorized_pvalues_monte_carlo(predictions: np.ndarray, labels: np.ndarray, n_items: int,
                                  rng: np.random.Generator, shuffles: int = 1000) -> np.ndarray:
    """The paper's procedure: the fraction of label shuffles scoring >= the observed score."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    observed = np.bincount(labels[predictions == labels], minlength=n_items)
    at_least = np.zeros(n_items)
    for _ in range(shuffles):
        shuffled = rng.permutation(labels)
        score = np.bincount(shuffled[predictions == shuffled], minlength=n_items)
        at_least += score >= observed
    return at_least / shuffles


def is_memorized(p_values: np.ndarray) -> np.ndarray:
    return np.asarray(p_values) < ALPHA_MEMORIZED


def memorized_count(p_values: np.ndarray) -> np.ndarray:
    """Number of memorized items; ``p_values`` is ``[..., items]``."""
    return is_memorized(p_values).sum(axis=-1)


def gross_memory(performance: np.ndarray) -> np.ndarray:
    """Sum of the items' performances (Fig. 3e); ``performance`` is ``[..., items]``."""
    return np.asarray(performance).sum(axis=-1)


def lowest_performance(performance: np.ndarray) -> np.ndarray:
    """The lowest item performance (Fig. 4d)."""
    return np.asarray(performance).min(axis=-1)


def performance_range(performance: np.ndarray) -> np.ndarray:
    """Highest minus lowest item performance (Supp. Fig. 4c)."""
    performance = np.asarray(performance)
    return performance.max(axis=-1) - performance.min(axis=-1)


def _quiet(test, *args, **kwargs):
    """Run a scipy test without its precision-loss warning on nearly identical samples: the
    callers below already treat samples without spread explicitly, and the warning means
    nothing to a user of the lab."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        return test(*args, **kwargs)


def one_sample(samples: np.ndarray, value: float, alternative: str = "greater") -> tuple[float, float]:
    """One-sided one-sample t-test of the mean over trials against ``value``: (t, p).

    Samples without spread (e.g. every trial at performance 1.0) have no t
    statistic; they give (+-inf, 0) when every sample lies on the tested side
    and (nan or -+inf, 1) otherwise.
    """
    samples = np.asarray(samples, dtype=float)
    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be 'greater' or 'less', got {alternative!r}")
    sign = 1.0 if alternative == "greater" else -1.0
    if len(samples) == 0:
        return float("nan"), float("nan")
    if np.ptp(samples) == 0:
        difference = sign * (samples[0] - value)
        return (float(sign * np.sign(difference) * np.inf) if difference else float("nan"),
                0.0 if difference > 0 else 1.0)
    result = _quiet(sps.ttest_1samp, samples, value, alternative=alternative)
    return float(result.statistic), float(result.pvalue)


def above_chance(samples: np.ndarray, chance: float) -> tuple[float, float]:
    """One-sided one-sample t-test of the mean over trials against chance: (t, p)."""
    return one_sample(samples, chance, "greater")


def compare(a: np.ndarray, b: np.ndarray, alternative: str = "two-sided") -> tuple[float, float]:
    """Two-sample t-test between two profiles' per-trial values: (t, p).

    Without any spread in either sample the test is decided by the means alone:
    p = 0 when they differ in the tested direction, 1 when they do not.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        difference = a[0] - b[0]
        wanted = {"greater": difference > 0, "less": difference < 0,
                  "two-sided": difference != 0}[alternative]
        return float(np.sign(difference) * np.inf) if difference else float("nan"), 0.0 if wanted else 1.0
    result = _quiet(sps.ttest_ind, a, b, alternative=alternative)
    return float(result.statistic), float(result.pvalue)


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman rank correlation (Fig. 5): (rho, p); (nan, nan) when either side is constant."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    result = sps.spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


def binomial_greater(successes: int, trials: int, rate: float) -> float:
    """P-value that the rate of successes exceeds ``rate`` (one-sided exact binomial test)."""
    return float(sps.binomtest(int(successes), int(trials), rate, alternative="greater").pvalue)


def binomial_less(successes: int, trials: int, rate: float) -> float:
    """P-value that the rate of successes falls below ``rate`` (one-sided exact binomial test)."""
    return float(sps.binomtest(int(successes), int(trials), rate, alternative="less").pvalue)


def trials_for_power(effect_size: float, two_sample: bool = False, alpha: float = 0.05,
                     power: float = 0.8, limit: int = 10**7) -> int | None:
    """Trials (per group, for a two-sample test) that a one-sided t-test at level ``alpha`` needs
    to detect a standardised effect ``effect_size`` (Cohen's d) with probability ``power``.

    Exact, from the noncentral t distribution. None when the effect is not positive or would
    need more than ``limit`` trials.

    >>> trials_for_power(0.5)        # one-sample, d = 0.5: the textbook 27
    27
    """
    if not np.isfinite(effect_size) or effect_size <= 0:
        return None

    def achieved(n: int) -> float:
        df = 2 * n - 2 if two_sample else n - 1
        noncentrality = effect_size * np.sqrt(n / 2 if two_sample else n)
        return float(sps.nct.sf(sps.t.ppf(1 - alpha, df), df, noncentrality))

    low, high = 2, 2
    while achieved(high) < power:
        low, high = high, high * 2
        if high > limit:
            return None
    while low < high:           # smallest n in [low, high] with enough power
        middle = (low + high) // 2
        low, high = (middle + 1, high) if achieved(middle) < power else (low, middle)
    return low


# --- Margin tests: "at chance", "does not change", "converges" ------------------------------------------
#
# A non-significant difference is no evidence of equality; the claims judge instead asks whether the
# mean is significantly *inside* a margin (non-inferiority / equivalence testing).


@dataclass(frozen=True)
class MarginTest:
    """Result of a one-sided test against a margin.

    ``statistic`` is the t statistic of the test (see each function for its sign), ``p`` its p-value,
    ``n`` the number of values, ``mean`` their mean and ``hypothesis`` the alternative that ``holds``
    when ``p < alpha``.
    """

    statistic: float
    p: float
    n: int
    mean: float
    hypothesis: str
    alpha: float = 0.05

    @property
    def holds(self) -> bool:
        return bool(self.p < self.alpha)


def _spread(values: np.ndarray) -> tuple[float, float]:
    """(mean, sample SD); the mean of a constant array is its value, free of rounding."""
    if np.ptp(values) == 0:
        return float(values[0]), 0.0
    return float(values.mean()), float(values.std(ddof=1))


def below_margin(values: np.ndarray, margin: float, alpha: float = 0.05) -> MarginTest:
    """One-sided one-sample t-test of H1: mean < ``margin`` (e.g. "the item is at chance": the
    performance is significantly below chance + a tolerance).

    ``statistic`` is t = (mean - margin) / (sd / sqrt(n)), so negative values support the claim.
    Fewer than two values give no variance estimate and so no evidence: statistic nan, p = 1.
    Values without spread decide exactly: p = 0 (t = -inf) when their value is below the margin,
    else p = 1 (t = +inf, or nan when it equals the margin).
    """
    values = np.asarray(values, dtype=float).ravel()
    n, hypothesis = len(values), f"mean < {margin:g}"
    if n < 2:
        mean = float(values[0]) if n else float("nan")
        return MarginTest(float("nan"), 1.0, n, mean, hypothesis, alpha)
    mean, sd = _spread(values)
    if sd == 0:
        gap = mean - margin
        statistic = float(np.sign(gap) * np.inf) if gap else float("nan")
        return MarginTest(statistic, 0.0 if gap < 0 else 1.0, n, mean, hypothesis, alpha)
    t = (mean - margin) / (sd / np.sqrt(n))
    return MarginTest(float(t), float(sps.t.cdf(t, n - 1)), n, mean, hypothesis, alpha)


def within_margin(differences: np.ndarray, margin: float, alpha: float = 0.05) -> MarginTest:
    """Equivalence test (TOST) of H1: -margin < mean < margin, for "does not change" or "converges"
    claims; pass the paired differences.

    Both one-sided tests run at ``alpha``; the equivalence holds when both reject, so p is the larger
    of the two p-values. ``statistic`` is the smaller of t(mean > -margin) and t(mean < margin),
    each signed so that positive supports the claim, and p = P(T > statistic).
    Fewer than two values: statistic nan, p = 1. Differences without spread decide exactly:
    p = 0 (statistic +inf) when their value lies strictly inside the margins, else p = 1.
    """
    if not margin > 0:
        raise ValueError(f"margin must be positive, got {margin!r}")
    differences = np.asarray(differences, dtype=float).ravel()
    n, hypothesis = len(differences), f"{-margin:g} < mean < {margin:g}"
    if n < 2:
        mean = float(differences[0]) if n else float("nan")
        return MarginTest(float("nan"), 1.0, n, mean, hypothesis, alpha)
    mean, sd = _spread(differences)
    room = margin - abs(mean)       # distance to the nearer margin: the binding one-sided test
    if sd == 0:
        statistic = float(np.sign(room) * np.inf) if room else float("nan")
        return MarginTest(statistic, 0.0 if room > 0 else 1.0, n, mean, hypothesis, alpha)
    t = room / (sd / np.sqrt(n))
    return MarginTest(float(t), float(sps.t.sf(t, n - 1)), n, mean, hypothesis, alpha)


def trials_needed(values: np.ndarray, margin: float, alternative: str = "less", alpha: float = 0.05,
                  power: float = 0.8, limit: int = 10**7) -> int | None:
    """Trials a one-sided one-sample t-test of the mean against ``margin`` would need to reject at
    ``alpha`` with probability ``power``, if the true mean and SD were the observed ones.

    ``alternative="less"`` is the test of :func:`below_margin` (H1: mean < margin), ``"greater"``
    its mirror. None when the observed mean is not on the tested side of the margin (no number of
    trials helps at that effect), when fewer than two values give no SD, or beyond ``limit``.
    Values without spread on the tested side need the smallest testable sample, 2.
    """
    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be 'greater' or 'less', got {alternative!r}")
    values = np.asarray(values, dtype=float).ravel()
    if len(values) < 2:
        return None
    mean, sd = _spread(values)
    gap = (margin - mean) if alternative == "less" else (mean - margin)
    if gap <= 0:
        return None
    if sd == 0:
        return 2
    return trials_for_power(gap / sd, alpha=alpha, power=power, limit=limit)


# --- Effect sizes ---------------------------------------------------------------------------------------


class EffectSize(NamedTuple):
    """Cohen's d with the bounds of its confidence interval."""

    d: float
    low: float
    high: float


_NAN_EFFECT = EffectSize(float("nan"), float("nan"), float("nan"))


def _noncentrality_for(t_observed: float, df: float, quantile: float) -> float:
    """The noncentrality at which ``t_observed`` sits at ``quantile`` of the noncentral t.

    The cdf falls as the noncentrality grows, so the root is bracketed by widening a window around
    the observed t; +-inf when no finite window brackets it.
    """
    def gap(noncentrality: float) -> float:
        return float(sps.nct.cdf(t_observed, df, noncentrality)) - quantile

    width = 2.0 + abs(t_observed)
    for _ in range(60):
        low, high = t_observed - width, t_observed + width
        if gap(low) > 0 > gap(high):
            return float(optimize.brentq(gap, low, high, xtol=1e-12, rtol=1e-12))
        width *= 2
    return float(np.inf if gap(t_observed) > 0 else -np.inf)


def _effect_from_t(t_observed: float, df: float, scale: float, confidence: float) -> EffectSize:
    """d = t * scale with its interval from inverting the noncentral t distribution of t."""
    tail = (1 - confidence) / 2
    low = _noncentrality_for(t_observed, df, 1 - tail)
    high = _noncentrality_for(t_observed, df, tail)
    return EffectSize(float(t_observed * scale), float(low * scale), float(high * scale))


def _degenerate_effect(shift: float) -> EffectSize:
    """No spread at all: d is +-inf (nan without a shift), and so is the whole interval, which
    :func:`compare_effect` reads as stronger (or weaker) than any finite effect."""
    if shift == 0:
        return _NAN_EFFECT
    infinite = float(np.sign(shift) * np.inf)
    return EffectSize(infinite, infinite, infinite)


def cohens_d_one_sample(values: np.ndarray, reference: float, confidence: float = 0.95) -> EffectSize:
    """d = (mean - reference) / sd with its confidence interval (noncentral t, df = n - 1).

    Fewer than two values: all nan. No spread: see :func:`_degenerate_effect`.
    """
    values = np.asarray(values, dtype=float).ravel()
    n = len(values)
    if n < 2:
        return _NAN_EFFECT
    mean, sd = _spread(values)
    if sd == 0:
        return _degenerate_effect(mean - reference)
    return _effect_from_t((mean - reference) / sd * np.sqrt(n), n - 1, 1 / np.sqrt(n), confidence)


def cohens_d_paired(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> EffectSize:
    """d_z = mean(a - b) / sd(a - b) with its confidence interval; the edge cases of
    :func:`cohens_d_one_sample` apply to the differences."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    return cohens_d_one_sample(a - b, 0.0, confidence)


def cohens_d_two_sample(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> EffectSize:
    """d = (mean(a) - mean(b)) / pooled sd with its confidence interval (df = n_a + n_b - 2).

    All nan when a sample is empty or there are fewer than three values (no pooled SD). No spread
    in either sample: see :func:`_degenerate_effect`.
    """
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    n_a, n_b = len(a), len(b)
    if min(n_a, n_b) < 1 or n_a + n_b < 3:
        return _NAN_EFFECT
    (mean_a, sd_a), (mean_b, sd_b) = _spread(a), _spread(b)
    df = n_a + n_b - 2
    pooled = np.sqrt(((n_a - 1) * sd_a**2 + (n_b - 1) * sd_b**2) / df)
    if pooled == 0:
        return _degenerate_effect(mean_a - mean_b)
    scale = np.sqrt(1 / n_a + 1 / n_b)         # d = t * scale
    return _effect_from_t((mean_a - mean_b) / pooled / scale, df, scale, confidence)


# scipy's t distribution computes its tail in plain doubles: it fails below the smallest normal
# double (~2.2e-308), exactly where the paper's "p < 2.23e-308" sits, and for few degrees of freedom
# already far above it (its inverse returns -inf, or a t whose tail is not p). Where it fails, t is
# found with a log-space tail of our own.
_RELATIVE_ROUND_TRIP = 1e-9


def _t_log_sf(t: float, df: float) -> float:
    """log P(T > t) for t > 0, free of underflow.

    P(T > t) = I_x(df/2, 1/2) / 2 with x = df / (df + t^2), and
    I_x(a, b) = x^a (1-x)^b / (a B(a, b)) * 2F1(a+b, 1; a+1; x), whose series terms shrink by less
    than x each: every factor but the series is taken in logs.
    """
    a, b = df / 2, 0.5
    log_1p = np.log1p(df / t / t)                   # log(1 + df/t^2), without squaring a huge t
    log_x, log_1mx = np.log(df) - 2 * np.log(t) - log_1p, -log_1p
    terms_needed = int(np.ceil(40 / max(-log_x, 1e-6))) + 2      # until x^k < e^-40
    k = np.arange(terms_needed - 1)
    ratios = (a + b + k) / (a + 1 + k) * np.exp(log_x)
    series = 1 + np.cumprod(ratios).sum()
    return float(np.log(0.5) + a * log_x + b * log_1mx - np.log(a) - special.betaln(a, b) + np.log(series))


def _t_upper_asymptote(log_p: float, df: float) -> float:
    """The t at which the power law K * nu^((nu+1)/2) * t^-nu / nu, which bounds the t distribution's
    tail from above for every t > 0, equals exp(log_p): never below the exact t."""
    log_k = special.gammaln((df + 1) / 2) - special.gammaln(df / 2) - 0.5 * np.log(df * np.pi)
    with np.errstate(over="ignore"):        # beyond the largest double, t is inf
        return float(np.exp((log_k + (df - 1) / 2 * np.log(df) - log_p) / df))


def _t_isf_log(log_p: float, df: float) -> float:
    """t with log P(T > t) = ``log_p`` (T: Student t with ``df``), also far below double precision.

    scipy's answer is kept when its tail gives p back. Otherwise the root is sought in log t between
    half the normal quantile's leading term sqrt(-2 log p) (the t tail is heavier than the normal one,
    so the root lies above) and the power-law bound (which lies above the root).
    """
    if log_p == -np.inf:
        return float("inf")
    p = float(np.exp(log_p))
    if p > 0:
        t = float(sps.t.isf(p, df))
        if np.isfinite(t) and abs(float(sps.t.sf(t, df)) / p - 1) < _RELATIVE_ROUND_TRIP:
            return t
    high = _t_upper_asymptote(log_p, df)
    if not np.isfinite(high):
        return high                                 # t beyond the largest double

    def gap(log_t: float) -> float:
        return _t_log_sf(float(np.exp(log_t)), df) - log_p

    if gap(np.log(high)) >= 0:
        return high                                 # the bound already meets p, to rounding
    low = float(np.log(np.sqrt(-2 * log_p) / 2))
    return float(np.exp(optimize.brentq(gap, low, np.log(high), xtol=1e-14, rtol=1e-14)))


def implied_d(p: float, n: int, *, kind: str = "one_sample", n2: int | None = None,
              sided: str = "two") -> float:
    """The Cohen's d that a reported t-test p-value at sample size ``n`` implies.

    t is the value whose tail probability is p (p / 2 when ``sided="two"``); then d = t / sqrt(n)
    for ``kind="one_sample"`` or ``"paired"`` (df = n - 1), and d = t * sqrt(1/n + 1/n2) for
    ``"two_sample"`` (df = n + n2 - 2; n2 defaults to n). Tiny p-values such as the paper's
    "p < 2.23e-308" are inverted in log space, so they give a finite d; p = 0 gives inf.
    One-sided p above 0.5 gives a negative d; a two-sided p gives |d|.

    d falls as p grows, so a p reported as an upper bound ("p < x") gives a lower bound: the true d
    is at least ``implied_d(x, ...)``.
    """
    if not 0 <= p <= 1:
        raise ValueError(f"p must lie in [0, 1], got {p!r}")
    if sided not in ("one", "two"):
        raise ValueError(f"sided must be 'one' or 'two', got {sided!r}")
    if kind in ("one_sample", "paired"):
        df, scale = n - 1, 1 / np.sqrt(n)
    elif kind == "two_sample":
        n2 = n if n2 is None else n2
        df, scale = n + n2 - 2, np.sqrt(1 / n + 1 / n2)
    else:
        raise ValueError(f"kind must be 'one_sample', 'paired' or 'two_sample', got {kind!r}")
    if df < 1:
        raise ValueError(f"too few values for a t-test: df = {df}")
    with np.errstate(divide="ignore"):      # log(0) = -inf is the intended "p = 0"
        log_tail = np.log(p) - (np.log(2) if sided == "two" else 0.0)
    return float(_t_isf_log(float(log_tail), df) * scale)


def compare_effect(measured_low: float, measured_high: float, paper_d: float, *,
                   paper_is_lower_bound: bool = False) -> str:
    """How a measured effect's confidence interval compares with the paper's effect size.

    "as large" when the paper's d lies inside [low, high], "weaker" when it lies above the interval,
    "stronger" when below; "undetermined" when any input is nan. With ``paper_is_lower_bound``
    (a d from :func:`implied_d` of a "p < x" bound) the paper only says "at least paper_d", so an
    interval above it is "as large" too. Both effects must share a sign convention.
    """
    if np.isnan([measured_low, measured_high, paper_d]).any():
        return "undetermined"
    if paper_d > measured_high:
        return "weaker"
    if paper_d < measured_low and not paper_is_lower_bound:
        return "stronger"
    return "as large"
