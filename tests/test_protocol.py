import numpy as np
import pytest

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
    profiles = pr.load_frequency_profiles(shared_data / "frequency_profiles.csv")
    assert len(profiles) == 20 and all(len(p) == 55 for p in profiles)
    counts = np.bincount(profiles[0], minlength=11)[1:]
    assert counts.tolist() == list(range(1, 11))               # item i presented i times
    seq = pr.frequency(profiles[0])
    assert seq[0].item == profiles[0][0] - 1


def test_generated_frequency_profile_is_weakly_correlated():
    from scipy.stats import spearmanr

    order = pr.generate_frequency_profile(10, np.random.default_rng(3), max_abs_correlation=0.2)
    assert np.bincount(order, minlength=11)[1:].tolist() == list(range(1, 11))
    assert abs(spearmanr(np.arange(55), order).statistic) <= 0.2


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
