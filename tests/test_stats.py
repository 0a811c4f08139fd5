import numpy as np
import pytest
from scipy import stats as sps

from metaplastic import stats as st


def random_predictions(seed, n_items=5, per_item=40, skill=0.3):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_items), per_item)
    predictions = rng.integers(0, n_items, size=len(labels))
    keep = rng.random(len(labels)) < skill * rng.random(n_items)[labels]   # item-dependent skill
    predictions[keep] = labels[keep]
    return predictions, labels


def test_item_performance_by_hand():
    labels = np.array([0, 0, 1, 1, 2, 2])
    predictions = np.array([0, 1, 1, 1, 0, 0])
    assert st.item_performance(predictions, labels, 3).tolist() == [0.5, 1.0, 0.0]


@pytest.mark.parametrize("seed", range(4))
def test_exact_and_monte_carlo_p_values_agree(seed):
    predictions, labels = random_predictions(seed)
    exact = st.memorized_pvalues(predictions, labels, 5)
    shuffles = 2000
    mc = st.memorized_pvalues_monte_carlo(predictions, labels, 5, np.random.default_rng(seed),
                                          shuffles=shuffles)
    sampling_sd = np.sqrt(exact * (1 - exact) / shuffles)
    assert np.all(np.abs(mc - exact) <= 4 * sampling_sd + 1e-3)


def test_exact_p_value_by_direct_enumeration():
    # Tiny case: enumerate every distinct shuffle of the labels.
    from itertools import permutations

    labels = np.array([0, 0, 1, 1, 2])
    predictions = np.array([0, 1, 0, 2, 0])
    observed = st.item_performance(predictions, labels, 3)
    shuffles = np.array(list(permutations(labels)))
    scores = np.array([st.item_performance(predictions, s, 3) for s in shuffles])
    expected = (scores >= observed - 1e-12).mean(axis=0)
    np.testing.assert_allclose(st.memorized_pvalues(predictions, labels, 3), expected)


def test_never_predicted_item_is_not_memorized():
    labels = np.repeat(np.arange(3), 10)
    predictions = np.zeros(30, dtype=int)
    p = st.memorized_pvalues(predictions, labels, 3)
    assert p[1] == 1.0 and p[2] == 1.0
    assert st.memorized_count(p) == 0


def test_perfect_predictions_are_memorized():
    labels = np.repeat(np.arange(4), 25)
    assert st.memorized_count(st.memorized_pvalues(labels, labels, 4)) == 4


def test_summaries_by_hand():
    perf = np.array([[0.1, 0.5, 0.9], [0.2, 0.2, 0.2]])
    np.testing.assert_allclose(st.gross_memory(perf), [1.5, 0.6])
    np.testing.assert_allclose(st.lowest_performance(perf), [0.1, 0.2])
    np.testing.assert_allclose(st.performance_range(perf), [0.8, 0.0])


def test_t_tests_match_scipy_and_hand_formula():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.3, 0.1, 20), rng.normal(0.2, 0.1, 25)
    t, p = st.above_chance(a, 0.1)
    t_hand = (a.mean() - 0.1) / (a.std(ddof=1) / np.sqrt(len(a)))
    assert t == pytest.approx(t_hand)
    assert p == pytest.approx(sps.t.sf(t_hand, len(a) - 1))
    t2, p2 = st.compare(a, b)
    pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    t2_hand = (a.mean() - b.mean()) / (pooled * np.sqrt(1 / len(a) + 1 / len(b)))
    assert t2 == pytest.approx(t2_hand)
    assert p2 == pytest.approx(2 * sps.t.sf(abs(t2_hand), len(a) + len(b) - 2))


def test_spearman_by_hand():
    x = np.array([1, 2, 3, 4, 5])
    y = np.array([5, 6, 7, 8, 7.5])
    rho, _ = st.spearman(x, y)
    rank_y = sps.rankdata(y)
    d = np.arange(1, 6) - rank_y
    assert rho == pytest.approx(1 - 6 * (d**2).sum() / (5 * (25 - 1)))


def test_above_chance_without_spread():
    assert st.above_chance(np.array([1.0, 1.0, 1.0]), 0.1) == (np.inf, 0.0)
    assert st.above_chance(np.array([0.0, 0.0]), 0.1)[1] == 1.0
