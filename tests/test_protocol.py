import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaplastic import protocol as pr


def test_serial_and_repetition():
    assert [p.item for p in pr.serial(4)] == [0, 1, 2, 3]
    rep = pr.repetition(3, 2)
    assert [(p.item, p.repetition) for p in rep] == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
    assert not any(p.poisoned for p in rep)


def test_poisoning_deranges_the_last_pass():
    seq = pr.poisoning(10, 9, np.random.default_rng(0))
    assert len(seq) == 100
    assert not any(p.poisoned for p in seq[:90])
    last = seq[90:]
    assert all(p.poisoned for p in last)                       # no item keeps its own label
    assert sorted(p.label for p in last) == list(range(10))    # a permutation


def test_derangement_has_no_fixed_point():
    rng = np.random.default_rng(1)
    for n in (2, 3, 10, 30):
        d = pr.derangement(n, rng)
        assert sorted(d) == list(range(n)) and not np.any(d == np.arange(n))


def test_frequency_profiles_from_shared_file(shared_data):
    profiles = pr.load_frequency_profiles(shared_data / pr.FREQUENCY_SCHEDULES_FILE)
    assert len(profiles) == 20 and all(len(p) == 55 for p in profiles)
    counts = np.bincount(profiles[0], minlength=11)[1:]
    assert counts.tolist() == list(range(1, 11))               # item i presented i times
    seq = pr.frequency(profiles[0])
    assert seq[0].item == profiles[0][0] - 1


def test_published_rows_for_ten_items_are_rows_1_to_17(shared_data):
    profiles = pr.load_frequency_profiles(shared_data / pr.FREQUENCY_SCHEDULES_FILE)
    schedules = pr.published_frequency_schedules(profiles, 10)
    assert [row for row, _ in schedules] == list(range(1, 18))
    for row, order in schedules:
        assert order == profiles[row - 1]
        assert pr.item_frequencies(order) == {i: i for i in range(1, 11)}
        rho = pr.schedule_correlations(order)
        assert abs(rho["last"]) <= 0.12, row                    # the published rows' property
        assert rho["first"] < -0.2, row                         # first position follows frequency


def test_no_published_row_fits_is_an_error(shared_data):
    profiles = pr.load_frequency_profiles(shared_data / pr.FREQUENCY_SCHEDULES_FILE)
    with pytest.raises(ValueError, match=r"1\.\.4;.*row 1: 1:1 2:2 3:3 4:4 5:5.*row 18: 1:6 2:10"):
        pr.published_frequency_schedules(profiles, 4)


def test_schedule_for_trial_wraps_around(shared_data):
    profiles = pr.load_frequency_profiles(shared_data / pr.FREQUENCY_SCHEDULES_FILE)
    schedules = pr.published_frequency_schedules(profiles, 10)
    assert [pr.schedule_for_trial(schedules, t)[0] for t in (0, 1, 16, 17, 18, 34, 99)] == \
        [1, 2, 17, 1, 2, 1, 99 % 17 + 1]
    assert pr.schedule_for_trial(schedules, 17)[1] == profiles[0]
    with pytest.raises(ValueError, match="trial must be >= 0"):
        pr.schedule_for_trial(schedules, -1)
    with pytest.raises(ValueError, match="no schedules"):
        pr.schedule_for_trial([], 0)


def test_schedule_correlations_against_a_direct_computation():
    from scipy.stats import spearmanr

    order = [3, 1, 3, 2, 3, 2, 4, 4, 4, 4]
    assert pr.item_frequencies(order) == {1: 1, 2: 2, 3: 3, 4: 4}
    rho = pr.schedule_correlations(order)
    frequency = [1, 2, 3, 4]
    assert rho["first"] == pytest.approx(spearmanr(frequency, [2, 4, 1, 7]).statistic)
    assert rho["last"] == pytest.approx(spearmanr(frequency, [2, 6, 5, 10]).statistic)
    assert rho["mean"] == pytest.approx(spearmanr(frequency, [2, 5, 3, 8.5]).statistic)


@settings(max_examples=200, deadline=None)
@given(n_items=st.integers(4, 45), seed=st.integers(0, 2**32 - 1))
def test_generated_schedules_present_item_i_i_times_with_bounded_recency(n_items, seed):
    order = pr.generate_frequency_profile(n_items, np.random.default_rng(seed))
    assert pr.item_frequencies(order) == {i: i for i in range(1, n_items + 1)}
    assert abs(pr.schedule_correlations(order)["last"]) <= 0.12
    assert order == pr.generate_frequency_profile(n_items, np.random.default_rng(seed))  # deterministic


def test_generated_ten_item_schedules_over_200_seeds():
    last = []
    for seed in range(200):
        order = pr.generate_frequency_profile(10, np.random.default_rng(seed))
        assert len(order) == 55 and np.bincount(order, minlength=11)[1:].tolist() == list(range(1, 11))
        last.append(pr.schedule_correlations(order)["last"])
    assert max(abs(r) for r in last) <= 0.12
    assert abs(np.mean(last)) < 0.03                            # centred, unlike a plain shuffle


def test_generated_schedule_bound_that_n_cannot_meet_is_an_error():
    with pytest.raises(ValueError, match="3 items .* cannot be below 0.500"):
        pr.generate_frequency_profile(3, np.random.default_rng(0))
    order = pr.generate_frequency_profile(3, np.random.default_rng(0), max_abs_last_correlation=0.5)
    assert abs(pr.schedule_correlations(order)["last"]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="6 items"):             # 6 items: |rho| >= 1/35
        pr.generate_frequency_profile(6, np.random.default_rng(0), max_abs_last_correlation=0.0)


@pytest.mark.parametrize("text, problem", [
    ("1,2,3\n1,x,3\n", r"row 2 \(line 2\), entry 2: 'x' is not an integer"),
    ("1,2,3\n1,2.5,3\n", r"row 2 \(line 2\), entry 2: '2.5' is not an integer"),
    ("1,2,3\n1,,3\n", r"row 2 \(line 2\), entry 2: '' is not an integer"),
    ("1,2,3\n\n3,0,1\n", r"row 2 \(line 3\), entry 2: item number 0 is below 1"),
    ("1,2,3\n2,-1,1\n", r"row 2 \(line 2\), entry 2: item number -1 is below 1"),
    ("", "empty file"),
    ("\n\n", "empty file"),
])
def test_malformed_schedule_file_names_file_and_row(tmp_path, text, problem):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=problem) as excinfo:
        pr.load_frequency_profiles(path)
    assert str(path) in str(excinfo.value)
    error = excinfo.value                                       # no csv/int traceback chained to it
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


@pytest.mark.parametrize("n_items, positives", [(10, 2000), (10, 300), (30, 2000), (3, 10), (7, 50)])
def test_task_set_composition(n_items, positives):
    rng = np.random.default_rng(0)
    current = n_items // 2
    ts = pr.task_set(pr.Presentation(current, current), n_items, positives, rng)
    per_item = round(positives / (n_items - 1))
    assert len(ts) == positives + per_item * (n_items - 1)
    positive = ts.items == current
    assert positive.sum() == positives and (ts.labels[positive] == current).all()
    assert sorted(ts.rows[positive]) == list(range(positives))  # all positives, once each
    negative = ~positive
    assert not (ts.labels[negative] == current).any()           # never the current label
    assert not (ts.labels[negative] == ts.items[negative]).any()  # never its own
    for j in range(n_items):
        if j == current:
            continue
        mine = ts.items == j
        assert mine.sum() == per_item
        assert len(set(ts.rows[mine])) == per_item               # distinct images
        counts = np.bincount(ts.labels[mine], minlength=n_items)
        allowed = [r for r in range(n_items) if r not in (current, j)]
        assert counts[allowed].max() - counts[allowed].min() <= 1  # spread evenly


def test_poisoned_positives_carry_the_wrong_label():
    ts = pr.task_set(pr.Presentation(2, 5), 6, 30, np.random.default_rng(0))
    assert (ts.labels[ts.items == 2] == 5).all()


def test_task_set_is_deterministic():
    a = pr.task_set(pr.Presentation(1, 1), 5, 40, np.random.default_rng(9))
    b = pr.task_set(pr.Presentation(1, 1), 5, 40, np.random.default_rng(9))
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.rows, b.rows)


def test_too_few_items_is_an_error():
    with pytest.raises(ValueError, match="at least 3 items"):
        pr.task_set(pr.Presentation(0, 0), 2, 10, np.random.default_rng(0))
