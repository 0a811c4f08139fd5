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

import numpy as np
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
