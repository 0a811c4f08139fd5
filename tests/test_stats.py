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


# --- Margin tests ---------------------------------------------------------------------------------------


def test_below_margin_matches_scipy_one_sided_test():
    values = np.random.default_rng(1).normal(0.12, 0.05, 30)
    result = st.below_margin(values, 0.15)
    reference = sps.ttest_1samp(values, 0.15, alternative="less")
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p == pytest.approx(reference.pvalue)
    assert (result.n, result.hypothesis) == (30, "mean < 0.15")
    assert result.mean == pytest.approx(values.mean())


def test_below_margin_needs_enough_tight_trials():
    rng = np.random.default_rng(2)
    # The true mean (0.10) sits below chance + margin (0.15) in both cases.
    assert not st.below_margin(rng.normal(0.10, 0.2, 4), 0.15).holds
    assert st.below_margin(rng.normal(0.10, 0.01, 100), 0.15).holds
    # Above the margin it never holds, however many trials.
    assert not st.below_margin(rng.normal(0.20, 0.01, 1000), 0.15).holds


def test_below_margin_without_spread_or_values():
    assert st.below_margin(np.full(3, 0.1), 0.15).p == 0.0
    assert st.below_margin(np.full(3, 0.1), 0.15).statistic == -np.inf
    above = st.below_margin(np.full(3, 0.2), 0.15)
    assert (above.p, above.statistic, above.holds) == (1.0, np.inf, False)
    assert np.isnan(st.below_margin(np.full(3, 0.15), 0.15).statistic)
    for few in (np.array([]), np.array([0.0])):
        result = st.below_margin(few, 0.15)
        assert result.p == 1.0 and np.isnan(result.statistic) and not result.holds


def test_within_margin_is_the_larger_of_two_scipy_one_sided_tests():
    differences = np.random.default_rng(3).normal(0.02, 0.1, 40)
    result = st.within_margin(differences, 0.05)
    above_lower = sps.ttest_1samp(differences, -0.05, alternative="greater").pvalue
    below_upper = sps.ttest_1samp(differences, 0.05, alternative="less").pvalue
    assert result.p == pytest.approx(max(above_lower, below_upper))
    assert result.p == pytest.approx(sps.t.sf(result.statistic, 39))
    assert result.hypothesis == "-0.05 < mean < 0.05"


def test_within_margin_holds_and_is_contradicted():
    rng = np.random.default_rng(4)
    assert st.within_margin(rng.normal(0.0, 0.02, 50), 0.05).holds
    assert not st.within_margin(rng.normal(0.0, 0.3, 5), 0.05).holds       # too noisy to tell
    shifted = st.within_margin(rng.normal(-0.1, 0.02, 50), 0.05)           # clearly outside
    assert not shifted.holds and shifted.p > 0.99 and shifted.statistic < 0


def test_within_margin_edge_cases():
    inside, outside = st.within_margin(np.full(4, 0.01), 0.05), st.within_margin(np.full(4, -0.07), 0.05)
    assert (inside.p, inside.statistic) == (0.0, np.inf)
    assert (outside.p, outside.statistic) == (1.0, -np.inf)
    assert st.within_margin(np.full(4, 0.05), 0.05).p == 1.0          # on the margin is not inside
    assert st.within_margin(np.array([0.0]), 0.05).p == 1.0
    with pytest.raises(ValueError):
        st.within_margin(np.zeros(4), 0.0)


def standardised(n, seed=0):
    """n values with mean exactly 0 and sample SD exactly 1."""
    z = np.random.default_rng(seed).normal(size=n)
    return (z - z.mean()) / z.std(ddof=1)


def test_trials_needed_textbook_value_and_wrong_side():
    values = 0.15 - 0.5 + 1.0 * standardised(12)   # mean 0.5 SD below the margin: d = 0.5
    assert st.trials_needed(values, 0.15) == 27
    assert st.trials_needed(values, 0.15, alternative="greater") is None
    assert st.trials_needed(values + 1.0, 0.15) is None                # mean above the margin
    assert st.trials_needed(np.full(3, 0.1), 0.15) == 2
    assert st.trials_needed(np.full(3, 0.2), 0.15) is None
    assert st.trials_needed(np.array([0.1]), 0.15) is None


def test_trials_needed_gives_the_promised_power():
    rng = np.random.default_rng(5)
    n = st.trials_needed(0.1 + 0.05 * standardised(10), 0.12)          # d = 0.4
    passes = [st.below_margin(rng.normal(0.1, 0.05, n), 0.12).holds for _ in range(400)]
    assert 0.74 <= np.mean(passes) <= 0.86
    fewer = [st.below_margin(rng.normal(0.1, 0.05, n // 3), 0.12).holds for _ in range(400)]
    assert np.mean(fewer) < 0.6


# --- Effect sizes ---------------------------------------------------------------------------------------


def test_cohens_d_matches_scipy_t_statistics():
    rng = np.random.default_rng(6)
    a, b = rng.normal(0.4, 1, 25), rng.normal(0.0, 1, 25)
    assert st.cohens_d_one_sample(a, 0.1).d * np.sqrt(25) == pytest.approx(sps.ttest_1samp(a, 0.1).statistic)
    assert st.cohens_d_paired(a, b).d * np.sqrt(25) == pytest.approx(sps.ttest_rel(a, b).statistic)
    c = rng.normal(0.0, 1, 18)
    scale = np.sqrt(1 / 25 + 1 / 18)
    assert st.cohens_d_two_sample(a, c).d / scale == pytest.approx(sps.ttest_ind(a, c).statistic)
    assert st.cohens_d_one_sample(np.array([1.0, 2.0, 3.0]), 0.0).d == pytest.approx(2.0)   # by hand


def test_cohens_d_interval_inverts_the_noncentral_t():
    values = np.random.default_rng(7).normal(0.5, 1, 15)
    d, low, high = st.cohens_d_one_sample(values, 0.0)
    t = d * np.sqrt(15)
    assert low < d < high
    assert sps.nct.cdf(t, 14, low * np.sqrt(15)) == pytest.approx(0.975, abs=1e-8)
    assert sps.nct.cdf(t, 14, high * np.sqrt(15)) == pytest.approx(0.025, abs=1e-8)


def test_cohens_d_interval_approaches_the_normal_approximation():
    values = 0.8 + standardised(400, seed=8)        # d = 0.8 exactly
    d, low, high = st.cohens_d_one_sample(values, 0.0)
    half_width = 1.96 * np.sqrt(1 / 400 + d**2 / (2 * 400))
    assert d == pytest.approx(0.8)
    assert (low, high) == pytest.approx((d - half_width, d + half_width), abs=0.01)


@pytest.mark.parametrize("kind", ["one_sample", "two_sample"])
def test_cohens_d_interval_covers_the_true_effect(kind):
    rng = np.random.default_rng(9)
    true_d, covered = 0.6, []
    for _ in range(200):
        if kind == "one_sample":
            _, low, high = st.cohens_d_one_sample(rng.normal(true_d, 1, 12), 0.0)
        else:
            _, low, high = st.cohens_d_two_sample(rng.normal(true_d, 1, 10), rng.normal(0, 1, 14))
        covered.append(low <= true_d <= high)
    assert 0.9 <= np.mean(covered) <= 0.99


def test_cohens_d_without_spread_or_values():
    assert st.cohens_d_one_sample(np.full(4, 0.3), 0.1) == (np.inf, np.inf, np.inf)
    assert st.cohens_d_paired(np.zeros(4), np.ones(4)) == (-np.inf, -np.inf, -np.inf)
    assert st.cohens_d_two_sample(np.ones(3), np.zeros(3)) == (np.inf, np.inf, np.inf)
    assert np.isnan(st.cohens_d_one_sample(np.full(4, 0.1), 0.1)).all()
    assert np.isnan(st.cohens_d_one_sample(np.array([1.0]), 0.0)).all()
    assert np.isnan(st.cohens_d_two_sample(np.array([1.0]), np.array([0.0]))).all()
    with pytest.raises(ValueError):
        st.cohens_d_paired(np.zeros(3), np.zeros(4))


DESIGNS = [("one_sample", 20, None, "two"), ("paired", 100, None, "one"),
           ("two_sample", 12, 30, "two"), ("two_sample", 50, None, "one")]


@pytest.mark.parametrize("kind, n, n2, sided", DESIGNS)
@pytest.mark.parametrize("t", [0.5, 2.5, 9.0, 40.0])
def test_implied_d_round_trips_a_t_statistic(kind, n, n2, sided, t):
    n_second = n if n2 is None else n2
    df = n + n_second - 2 if kind == "two_sample" else n - 1
    p = sps.t.sf(t, df) * (2 if sided == "two" else 1)
    d = st.implied_d(p, n, kind=kind, n2=n2, sided=sided)
    scale = np.sqrt(1 / n + 1 / n_second) if kind == "two_sample" else 1 / np.sqrt(n)
    assert d / scale == pytest.approx(t, rel=1e-6)


def test_implied_d_of_the_papers_smallest_p():
    # Fig. 2k: every item p < 2.23e-308, one-sided one-sample t-test, N = 100. That p is still a
    # normal double, where scipy's inverse works at df = 99: the two must agree.
    d = st.implied_d(2.23e-308, 100, sided="one")
    assert np.isfinite(d) and d > 40
    assert d == pytest.approx(sps.t.isf(2.23e-308, 99) / 10, rel=1e-9)
    # d falls as p grows, across scipy's range and beyond it, so a p given as an upper bound gives
    # a lower bound on d.
    ps = [5e-324, 1e-320, 1e-310, 2.23e-308, 1e-301, 1e-299, 1e-100, 1e-10, 0.01, 0.5, 0.9]
    ds = [st.implied_d(p, 100, sided="one") for p in ps]
    assert all(np.isfinite(ds)) and np.all(np.diff(ds) < 0)
    assert ds[-2] == pytest.approx(0.0, abs=1e-12) and ds[-1] < 0
    assert st.implied_d(0.0, 100) == np.inf


def test_implied_d_against_closed_forms_where_scipy_fails():
    # Student t with df = 2: P(T > t) = p  <=>  t = (1 - 2p) / sqrt(2p (1 - p)); with df = 1 (Cauchy),
    # t = 1 / tan(pi p). scipy's inverse fails for these (subnormal p, or df = 1 below ~1e-155).
    for p in (1e-320, 1e-200, 1e-40):
        t = (1 - 2 * p) / np.sqrt(2 * p * (1 - p))
        assert st.implied_d(p, 3, sided="one") * np.sqrt(3) == pytest.approx(t, rel=1e-9)
    for p in (1e-301, 1e-200):
        assert st.implied_d(p, 2, sided="one") * np.sqrt(2) == pytest.approx(1 / np.tan(np.pi * p), rel=1e-9)
    assert st.implied_d(1e-310, 2, sided="one") == np.inf     # t = 3e309 is past the largest double
    # Many degrees of freedom and a subnormal p: the power law is far off, the root must be solved.
    for n in (100, 1001):
        t = st.implied_d(1e-320, n, sided="one") * np.sqrt(n)
        assert st._t_log_sf(t, n - 1) == pytest.approx(np.log(1e-320), rel=1e-10)
        assert t < st._t_upper_asymptote(np.log(1e-320), n - 1)


def test_log_tail_matches_scipy_and_closed_forms():
    for df in (1, 2, 5, 99, 1000, 20000):
        for log_p in (-3.0, -20.0, -300.0):
            t = sps.t.isf(np.exp(log_p), df)
            assert st._t_log_sf(t, df) == pytest.approx(sps.t.logsf(t, df), rel=1e-10, abs=1e-10)
    for t in (1e10, 1e100, 1e300):
        assert st._t_log_sf(t, 1) == pytest.approx(np.log(np.arctan(1 / t) / np.pi), rel=1e-12)
        assert st._t_log_sf(t, 2) == pytest.approx(-np.log(2) - 2 * np.log(t), rel=1e-12)


def test_power_law_bound_lies_above_the_exact_t_and_meets_it_far_out():
    for df, t in [(99, 1e4), (3, 1e6), (1, 1e8), (1000, 60.0)]:
        bound = st._t_upper_asymptote(sps.t.logsf(t, df), df)
        assert bound >= t * (1 - 1e-12)
        if t**2 > 1e6 * df:
            assert bound == pytest.approx(t, rel=1e-5)


def test_implied_d_rejects_bad_input():
    for bad in (dict(p=1.5, n=10), dict(p=0.1, n=1), dict(p=0.1, n=10, kind="other"),
                dict(p=0.1, n=10, sided="both")):
        with pytest.raises(ValueError):
            st.implied_d(**bad)


def test_compare_effect():
    assert st.compare_effect(0.4, 0.9, 0.6) == "as large"
    assert st.compare_effect(0.4, 0.9, 1.2) == "weaker"
    assert st.compare_effect(0.4, 0.9, 0.2) == "stronger"
    assert st.compare_effect(0.4, 0.9, 0.2, paper_is_lower_bound=True) == "as large"
    assert st.compare_effect(0.4, 0.9, 1.2, paper_is_lower_bound=True) == "weaker"
    assert st.compare_effect(np.inf, np.inf, 1234.0) == "stronger"
    assert st.compare_effect(np.nan, np.nan, 1.0) == "undetermined"
