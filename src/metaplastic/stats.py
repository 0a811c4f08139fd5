"""Statistics of the paper (protocol.md section 6), as pure functions over arrays.

The memorized-item test compares an item's performance with its performance
under random permutations of the test labels (paper, Methods 2.5). With the
predictions fixed, the shuffled score of item i is hypergeometric: the
population is every test image of the sequence, the successes are the images
predicted as i, and the draws are item i's test images. So the p-value needs
no sampling; the Monte Carlo version is kept to check it.

p-value convention: the paper calls an item memorized when its real
performance is *higher* than the shuffled one in at least 950 of 1,000
shuffles, i.e. when P(shuffled >= observed) < 0.05. (protocol.md words it as
"fewer than 5% score strictly higher", which would call an item that is never
predicted, performance 0, memorized; we follow the paper.)
"""

from __future__ import annotations

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


def above_chance(samples: np.ndarray, chance: float) -> tuple[float, float]:
    """One-sided one-sample t-test of the mean over trials against chance: (t, p).

    Samples without spread (e.g. every trial at performance 1.0) have no t
    statistic; they give (+inf, 0) above chance and (-inf or nan, 1) otherwise.
    """
    samples = np.asarray(samples, dtype=float)
    if np.ptp(samples) == 0:
        difference = samples[0] - chance
        return (float(np.sign(difference) * np.inf) if difference else float("nan"),
                0.0 if difference > 0 else 1.0)
    result = sps.ttest_1samp(samples, chance, alternative="greater")
    return float(result.statistic), float(result.pvalue)


def compare(a: np.ndarray, b: np.ndarray, alternative: str = "two-sided") -> tuple[float, float]:
    """Two-sample t-test between two profiles' per-trial values: (t, p)."""
    result = sps.ttest_ind(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                           alternative=alternative)
    return float(result.statistic), float(result.pvalue)


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman rank correlation (Fig. 5): (rho, p)."""
    result = sps.spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)
