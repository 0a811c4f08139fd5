"""Every claim of the catalogue judged on hand-made records tables (no training), and each verdict
rule of :mod:`metaplastic.claims.rules` on hand-made arrays.

Each experiment gets three worlds built by hand: the paper's (every claim holds), a reversed one
(every claim is contradicted) and a weak one (3 trials whose values differ from trial to trial:
every claim is not shown). Claimed absences ("at chance", "does not change", "converges") are
equivalence tests, so noisy data shows them no more than it shows an effect: they are not shown
in the weak world too, and no claim is an exception there.
"""

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from metaplastic import protocol, stats
from metaplastic.claims import BY_NAME, CONTRADICTED, HOLDS, INCONCLUSIVE, NOT_SHOWN, checks, rules
from metaplastic.claims.rules import Claim, Effect, Measured, PaperEffect
from metaplastic.experiments import EXPERIMENTS

Curve = Callable[[int, int, int], float]        # (trial, presentation, item) -> performance


def build(curves: dict[str, Curve], n_items: int, presentations: int, trials: int, *,
          memorized: dict[str, Callable[[int, int, int], bool]] | None = None,
          presented: Callable[[int, int], int] | None = None, noise: float = 0.01) -> pd.DataFrame:
    """A records table: performance from ``curves`` plus small noise, memorized where the
    performance exceeds 0.3 unless given, presented item (1-based) cycling unless given."""
    memorized = memorized or {}
    presented = presented or (lambda trial, k: (k - 1) % n_items + 1)
    rows = []
    for learner, curve in curves.items():
        rng = np.random.default_rng(len(rows))
        for trial in range(trials):
            for k in range(presentations + 1):
                for item in range(1, n_items + 1):
                    p = float(np.clip(curve(trial, k, item) + noise * rng.normal(), 0, 1))
                    flag = memorized[learner](trial, k, item) if learner in memorized else p > 0.3
                    rows.append(dict(experiment="x", learner=learner, trial=trial, seed=0,
                                     presentation=k, item=item, performance=p, memorized=bool(flag),
                                     presented_item=presented(trial, k) if k else 0, n_items=n_items))
    return pd.DataFrame(rows)


OFFSETS = (0.3, -0.1, 0.05)          # the weak world: trial-to-trial noise around chance


def weak(chance: float) -> Curve:
    return lambda t, k, i: chance + OFFSETS[t]


def first_m(counts) -> Callable[[int, int, int], bool]:
    """Memorized flags: the first counts[trial] items, whatever the presentation."""
    return lambda t, k, i: i <= counts[t]


def trained(t, k, i) -> bool:
    """Memorized flags: every item trained so far."""
    return i <= k


def _pass(k, n):
    """The 0-based pass a presentation belongs to (presentation 0: before the first pass)."""
    return (k - 1) // n if k else 0


# --------------------------------------------------------------------------- the worlds

def serial_position(world):
    n = 10

    def recency(t, k, i):                  # the last six items trained
        return 0.8 if k - 6 < i <= k else 0.02

    def primacy(t, k, i):                  # the first three items
        return 0.8 if i <= min(k, 3) else 0.02

    def everything(t, k, i):               # every item trained so far: no forgetting, counts grow
        return 0.8 if i <= k else 0.02

    if world == "paper":
        hybrid = lambda t, k, i: (0.9 if i in (1, k) else 0.5) if i <= k else 0.02  # noqa: E731
        return build({"conventional": recency, "stable": primacy, "hybrid": hybrid}, n, n, 5,
                     memorized={"stable": first_m([3, 4, 5, 4, 4])})   # about four, with spread
    if world == "reversed":
        hybrid = lambda t, k, i: (0.0 if i in (1, k) else 0.5) if i <= k else 0.02  # noqa: E731
        return build({"conventional": everything, "stable": everything, "hybrid": hybrid}, n, n, 5)
    hybrid_memorized = lambda t, k, i: i <= k and not (t == 2 and i == 1)  # noqa: E731
    return build({p: weak(0.1) for p in ("conventional", "stable", "hybrid")}, n, n, 3, noise=0,
                 memorized={"conventional": first_m([2, 9, 3]), "stable": first_m([0, 8, 0]),
                            "hybrid": hybrid_memorized})


def sequence_length(world):
    n = 12
    if world == "paper":
        # Ends 0.9, middle items sharing a gross memory that stops growing after 8 items (6.0):
        # a U, an average that falls, a gross memory that rises and then converges.
        def hybrid(t, k, i):
            if i > k:
                return 0.02
            return 0.9 if i in (1, k) else (0.7 if k <= 8 else 4.2 / (k - 2))

        conventional = lambda t, k, i: 0.8 if k - 4 < i <= k else 0.05  # noqa: E731
        return build({"conventional": conventional, "hybrid": hybrid}, n, n, 5)
    if world == "reversed":
        # The hybrid loses item 1 and holds the others low but rising (the average rises, its gross
        # memory keeps growing and stays below the conventional's); the conventional keeps item 1
        # and memorizes every item trained while its gross memory falls after 4 items.
        hybrid = lambda t, k, i: (0.0 if i == 1 else 0.02 * k) if i <= k else 0.02  # noqa: E731

        def conventional(t, k, i):
            if i > k:
                return 0.02
            return 1.0 if k <= 4 else (0.9 if i == 1 else 0.2)

        return build({"conventional": conventional, "hybrid": hybrid}, n, n, 5,
                     memorized={"conventional": trained})
    return build({p: weak(1 / n) for p in ("conventional", "hybrid")}, n, n, 3, noise=0,
                 memorized={"conventional": first_m([2, 9, 3]), "hybrid": first_m([5, 12, 3])})


def repetition(world, n=6, passes=10):
    def forgetful(t, k, i):                # the last two items presented
        return 0.8 if i in ((k - 1) % n + 1, (k - 2) % n + 1) else 0.02

    def rising(t, k, i):                   # ends high, middle items rising with each pass
        return 0.9 if i in (1, n) else 0.3 + 0.06 * _pass(k, n)

    def falling(t, k, i):
        return 0.9 if i in (1, n) else 0.84 - 0.06 * _pass(k, n)

    if world == "paper":
        return build({"conventional": forgetful, "hybrid": rising}, n, n * passes, 5)
    if world == "reversed":
        return build({"conventional": rising, "hybrid": falling}, n, n * passes, 5)
    # Weak: the conventional network's 9th pass moves by a zero-mean trial-to-trial amount.
    shift = (0.15, -0.05, -0.1)
    conventional = lambda t, k, i: 1 / n + OFFSETS[t] + (shift[t] if _pass(k, n) == 8 else 0)  # noqa: E731
    return build({"conventional": conventional, "hybrid": weak(1 / n)}, n, n * passes, 3, noise=0)


def poisoning(world, n=5, passes=10):
    def clean_then(clean, poisoned):
        return lambda t, k, i: poisoned if _pass(k, n) == passes - 1 else clean

    if world == "paper":
        return build({"conventional": clean_then(0.8, 0.02), "hybrid": clean_then(0.8, 0.7)},
                     n, passes * n, 5)
    if world == "reversed":
        return build({"conventional": clean_then(0.7, 0.7), "hybrid": clean_then(0.8, 0.0)},
                     n, passes * n, 5)
    return build({p: weak(1 / n) for p in ("conventional", "hybrid")}, n, passes * n, 3, noise=0,
                 memorized={"conventional": first_m([1, 2, 1]), "hybrid": first_m([3, 1, 2])})


def _frequency_schedules(shared_data):
    schedules = protocol.published_frequency_schedules(
        protocol.load_frequency_profiles(shared_data / protocol.FREQUENCY_SCHEDULES_FILE), 10)
    order = {t: schedules[t][1] for t in range(5)}
    last = {t: {item: max(k for k, x in enumerate(order[t], 1) if x == item) for item in range(1, 11)}
            for t in order}
    return order, last


def frequency(world, shared_data):
    order, last = _frequency_schedules(shared_data)

    def by_order(t, k, i):
        return last[t][i] / 55

    def by_frequency(t, k, i):
        return i / 10          # item i is presented i times

    def mixed(frequency_trials):
        return lambda t, k, i: by_frequency(t, k, i) if t in frequency_trials else by_order(t, k, i)

    worlds = {"paper": {"conventional": by_order, "hybrid": by_frequency},
              "reversed": {"conventional": by_frequency, "hybrid": by_order},
              "weak": {"conventional": mixed({0}), "hybrid": mixed({1})}}
    trials = 3 if world == "weak" else 5
    return build(worlds[world], 10, 55, trials, noise=0, presented=lambda t, k: order[t][k - 1])


def single_value(world):
    n = 10
    values = (0.3, 0.5, 0.72, 0.8, 0.88, 0.9, 1.0)

    def curve(v, sign, middle):
        shift = sign * 0.8 * (v - 0.3) / 0.7
        first, last = (0.9 - shift, 0.1 + shift) if sign > 0 else (0.1 - shift, 0.9 + shift)
        return lambda t, k, i: first if i == 1 else last if i == n else middle(i)

    def kept(i):
        return 0.5

    def partial(i):                        # the middle third lost, the rest kept
        return 0.02 if 4 <= i <= 7 else 0.5

    def hole(i):
        return 0.0

    if world == "weak":
        return build({f"constant:{v}": weak(0.1) for v in values}, n, n, 3, noise=0,
                     memorized={"constant:0.8": lambda t, k, i: not (t == 2 and i == 1)})
    if world == "paper":
        return build({f"constant:{v}": curve(v, 1, partial if v in (0.72, 0.88) else kept)
                      for v in values}, n, n, 5)
    # Reversed: recency for 0.3, primacy for 1.0; every 0.72 and 0.88 item above chance; 0.8 loses
    # its middle items.
    return build({f"constant:{v}": curve(v, -1, hole if v == 0.8 else kept) for v in values}, n, n, 5)


def biased_flexibility(world):
    n = 10
    ends = {"hybrid": (0.8, 0.8), "biased-stable:0.5": (0.85, 0.6), "biased-stable:0.1": (0.9, 0.4),
            "biased-flexible:0.5": (0.6, 0.85), "biased-flexible:0.1": (0.4, 0.9)}

    def curve(first, last, middle):
        return lambda t, k, i: first if i == 1 else last if i == n else middle

    if world == "weak":
        return build({p: weak(0.1) for p in ends}, n, n, 3, noise=0,
                     memorized={"hybrid": lambda t, k, i: not (t == 2 and i == 1)})
    if world == "paper":
        return build({p: curve(*e, 0.5) for p, e in ends.items()}, n, n, 5)
    mirrored = {"biased-stable:0.5": "biased-flexible:0.5", "biased-stable:0.1": "biased-flexible:0.1"}
    mirrored |= {v: k for k, v in mirrored.items()}
    return build({p: curve(*ends[mirrored.get(p, p)], 0.0 if p == "hybrid" else 0.5) for p in ends},
                 n, n, 5)


WORLDS = {"serial-position": serial_position, "sequence-length": sequence_length,
          "repetition": repetition, "poisoning": poisoning, "frequency": frequency,
          "single-value": single_value, "biased-flexibility": biased_flexibility}
WORLD_NAMES = ("paper", "reversed", "weak")
EXPECTED = {"paper": HOLDS, "reversed": CONTRADICTED, "weak": NOT_SHOWN}

#: The experiment of each claim, by claim name.
EXPERIMENT_OF = {claim.name: name for name, spec in EXPERIMENTS.items() for claim in spec.claims}

CASES = [(claim, world) for claim in EXPERIMENT_OF for world in WORLD_NAMES]


@pytest.fixture(scope="module")
def tables(shared_data):
    worlds = dict(WORLDS, frequency=lambda world: frequency(world, shared_data))
    return {(name, world): worlds[name](world) for name in EXPERIMENTS for world in WORLD_NAMES}


def test_every_experiment_has_worlds():
    assert set(WORLDS) == set(EXPERIMENTS)


def test_the_worlds_cover_every_claim_of_the_catalogue_once():
    """The cases are keyed by claim name: every catalogued claim belongs to exactly one experiment
    (so it is judged in that experiment's three worlds), and no experiment holds an uncatalogued one."""
    assert len(BY_NAME) == 52
    in_experiments = [claim.name for spec in EXPERIMENTS.values() for claim in spec.claims]
    assert sorted(in_experiments) == sorted(BY_NAME)
    assert {name for name, _ in CASES} == set(BY_NAME)
    for spec in EXPERIMENTS.values():
        for claim in spec.claims:
            assert BY_NAME[claim.name] is claim


def test_claims_have_names_statements_and_rules():
    for name, claim in BY_NAME.items():
        assert name and name == name.strip() and " " not in name, name
        assert claim.statement.strip() == claim.statement and claim.statement, name
        assert claim.rule.strip() and claim.paper.strip(), name


@pytest.mark.parametrize("name, world", CASES, ids=[f"{name}-{world}" for name, world in CASES])
def test_claim_verdict_in_each_world(tables, name, world):
    claim = BY_NAME[name]
    measured = claim.check(tables[(EXPERIMENT_OF[name], world)])
    assert measured.verdict == EXPECTED[world], (name, measured.statistic)
    if measured.verdict != NOT_SHOWN:          # trials needed: only where an effect is not shown
        assert measured.trials_needed is None, (name, measured.trials_needed)


# --------------------------------------------------------------------------- checks on special tables


def test_nine_of_ten_in_half_the_trials_does_not_hold():
    """The hybrid memorizes 9 of 10 items in half of the trials: 'memorizes all 10' must not hold."""
    n = 10
    memorized = lambda t, k, i: i <= k and not (t % 2 == 0 and i == 5)  # noqa: E731
    table = build({"hybrid": lambda t, k, i: 0.8 if i <= k else 0.02}, n, n, 10,
                  memorized={"hybrid": memorized})
    for check in (checks.memorizes_every_item("hybrid"),
                  checks.memorizes_every_item("hybrid", after_every_presentation=True)):
        assert check(table).verdict == CONTRADICTED      # 5 of 10 trials fail: significant


def test_a_single_failing_trial_is_not_shown_not_holds():
    n = 10
    memorized = lambda t, k, i: not (t == 0 and i == 5)  # noqa: E731
    table = build({"hybrid": lambda t, k, i: 0.8}, n, n, 10, memorized={"hybrid": memorized})
    measured = checks.memorizes_every_item("hybrid")(table)
    assert measured.verdict == NOT_SHOWN and "9 of 10 trials" in measured.statistic


def test_too_few_trials_or_missing_profiles_are_inconclusive():
    table = serial_position("paper")
    claim = BY_NAME["fig2d-conventional-seventh"]
    assert claim.check(table).verdict == HOLDS
    assert claim.check(table[table.trial < 2]).verdict == INCONCLUSIVE
    missing = claim.check(table[table.learner != "conventional"])
    assert missing.verdict == INCONCLUSIVE and "conventional not in this run" in missing.statistic
    short = build({"conventional": lambda t, k, i: 0.5}, 5, 5, 5)
    assert "at least 7 items" in claim.check(short).statistic


def test_no_trial_counts_significant_correlations_of_either_sign(shared_data):
    """A conventional network whose performance falls with frequency significantly in every trial
    is significant in every trial: 'significant in no trial' is contradicted, not held."""
    order, _ = _frequency_schedules(shared_data)
    table = build({"conventional": lambda t, k, i: 1 - i / 10}, 10, 55, 5, noise=0,
                  presented=lambda t, k: order[t][k - 1])
    rho, p = checks._correlations(table, "conventional", "frequency")
    assert (rho < 0).all() and (p < 0.05).all()               # the world is what it says
    measured = checks.frequency_significant("conventional", most=False)(table)
    assert measured.verdict == CONTRADICTED, measured.statistic
    assert "5 of 5 trials" in measured.statistic


# --------------------------------------------------------------------------- the rules, by hand


def test_not_shown_reports_the_trials_the_effect_would_need():
    values = np.array([0.2, 0.05, 0.3, 0.1])           # mean 0.1625 above chance 0.1, sd 0.108
    part = rules.above(values, 0.1, "item")
    assert part.verdict == NOT_SHOWN
    assert part.trials_needed == stats.trials_for_power(0.0625 / values.std(ddof=1))
    assert part.trials_needed > len(values)


def test_at_chance_with_too_few_or_noisy_trials_is_not_shown():
    single = rules.at_chance([0.1], 0.1, "item")                      # one trial: no evidence
    assert single.verdict == NOT_SHOWN
    noisy = rules.at_chance([0.02, 0.3, 0.05], 0.1, "item")           # mean 0.123, sd 0.15
    assert noisy.verdict == NOT_SHOWN
    assert noisy.trials_needed is not None and noisy.trials_needed > 3


def test_at_chance_significantly_inside_the_margin_holds():
    part = rules.at_chance([0.09, 0.1, 0.11, 0.1, 0.095, 0.105], 0.1, "item")
    assert part.verdict == HOLDS
    assert part.p_value is None and part.effect is None            # an absence: no effect to report


def test_at_chance_significantly_above_chance_is_contradicted():
    # Inside the margin (all below 0.15), yet significantly above chance: the paper's test decides.
    part = rules.at_chance([0.12, 0.13, 0.12, 0.13, 0.125], 0.1, "item")
    assert stats.below_margin(np.array([0.12, 0.13, 0.12, 0.13, 0.125]), 0.15).holds
    assert part.verdict == CONTRADICTED
    assert rules.at_chance([0.5, 0.6, 0.55], 0.1, "item").verdict == CONTRADICTED


def test_unchanged_inside_the_margin_holds():
    part = rules.unchanged([5, 5, 6, 5, 5, 5], [5, 5, 5, 5, 5, 5], 1.0, "count")
    assert part.verdict == HOLDS
    # A small but significant drift still inside the margin is no change: a curve approaching its
    # asymptote always gains a little.
    drift = rules.unchanged(np.array([5.3, 5.35, 5.3, 5.32, 5.31]), np.full(5, 5.0), 1.0, "count")
    assert drift.verdict == HOLDS


def test_unchanged_significantly_beyond_the_margin_is_contradicted():
    far = rules.unchanged([8, 9, 8, 9], [5, 5, 5, 5], 1.0, "count")
    assert far.verdict == CONTRADICTED
    below = rules.unchanged([2.0, 2.5, 1.8, 2.2], [5, 5, 5, 5], 1.0, "count")
    assert below.verdict == CONTRADICTED
    # Beyond the margin on average, but not significantly: not shown, and no number of trials
    # would show it inside; inside on average but noisy: not shown, with the trials needed.
    near = rules.unchanged([6.5, 5.5, 7.5], [5, 5, 5], 1.0, "count")
    assert near.verdict == NOT_SHOWN and near.trials_needed is None
    noisy = rules.unchanged([5.5, 4.2, 6.1], [5, 5, 5], 1.0, "count")
    assert noisy.verdict == NOT_SHOWN and noisy.trials_needed > 3


def test_unchanged_on_noisy_differences_is_not_shown():
    part = rules.unchanged([6.5, 3.5, 5.2], [5, 5, 5], 1.0, "count")   # differences 1.5, -1.5, 0.2
    assert part.verdict == NOT_SHOWN


def test_greater_is_two_sided_with_its_direction_checked():
    a, b = np.array([1.0, 1.2, 0.9, 1.1, 1.0]), np.array([2.0, 2.1, 1.8, 2.2, 1.9])
    reversed_ = rules.greater(a, b, "x")
    assert reversed_.verdict == CONTRADICTED
    assert reversed_.p_value == pytest.approx(sps.ttest_ind(a, b).pvalue)
    shown = rules.greater(b, a, "x")
    assert shown.verdict == HOLDS and shown.p_value == pytest.approx(sps.ttest_ind(b, a).pvalue)
    paired = rules.greater(a, a + np.array([0.9, 1.1, 1.0, 0.8, 1.2]), "x", paired=True)
    assert paired.verdict == CONTRADICTED
    assert paired.p_value == pytest.approx(sps.ttest_rel(a, a + np.array([0.9, 1.1, 1.0, 0.8, 1.2])).pvalue)


def test_greater_does_not_hold_on_a_one_sided_p_below_005_when_the_two_sided_is_above():
    a, b = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([0.0, 1.0, 1.5, 2.0, 2.5])
    two_sided = sps.ttest_ind(a, b).pvalue
    assert sps.ttest_ind(a, b, alternative="greater").pvalue < 0.05 < two_sided < 0.1
    part = rules.greater(a, b, "x")
    assert part.verdict == NOT_SHOWN and part.p_value == pytest.approx(two_sided)
    after = b + np.array([0.5, 1.2, -0.1, 1.0, 0.1])
    paired_p = sps.ttest_rel(after, b).pvalue
    assert sps.ttest_rel(after, b, alternative="greater").pvalue < 0.05 < paired_p < 0.1
    paired = rules.greater(after, b, "x", paired=True)
    assert paired.verdict == NOT_SHOWN and paired.p_value == pytest.approx(paired_p)


def test_about_is_an_equivalence_test():
    assert rules.about([6, 6, 6, 5, 6, 6, 7, 6], 6, 1, "x").verdict == HOLDS
    assert rules.about([6, 6, 5], 6, 1, "x").verdict == NOT_SHOWN      # inside, but not significantly
    assert rules.about([1, 1, 2], 6, 1, "x").verdict == CONTRADICTED
    assert rules.about([9, 9, 10], 6, 1, "x").verdict == CONTRADICTED
    assert rules.about([7.5, 6.5, 8.0, 7.0], 6, 1, "x").verdict == NOT_SHOWN   # beyond, not significantly


def test_most_trials_cannot_be_contradicted_by_three_trials_but_can_by_eight():
    three = rules.most_trials([False] * 3, "x")
    assert three.verdict == NOT_SHOWN
    assert "cannot be significant" in three.text
    eight = rules.most_trials([False] * 8, "x")
    assert eight.verdict == CONTRADICTED and "cannot be significant" not in eight.text
    assert rules.most_trials([True, True, False], "x").verdict == HOLDS
    assert rules.most_trials([True, False], "x").verdict == NOT_SHOWN          # half is not most


def test_no_trial_by_hand():
    assert rules.no_trial([False] * 5, "x").verdict == HOLDS
    assert rules.no_trial([True] * 3 + [False] * 2, "x").verdict == CONTRADICTED
    assert rules.no_trial([True] + [False] * 9, "x").verdict == NOT_SHOWN


def test_every_trial_prints_no_placeholder_p():
    part = rules.every_trial(np.zeros(5), "memorizes all")
    assert part.verdict == HOLDS
    assert "p =" not in part.text and part.p_value is None
    measured = rules.combine([part], "t", 5)
    assert measured.verdict == HOLDS and measured.p_value is None and measured.effect is None
    failing = rules.every_trial(np.array([0, 0, 0, 0, 2.0]), "memorizes all")
    assert failing.verdict == NOT_SHOWN and "4 of 5 trials" in failing.text
    assert rules.every_trial(np.full(5, 2.0), "memorizes all").verdict == CONTRADICTED


def test_a_claims_p_and_effect_are_its_weakest_claimed_effects():
    strong = rules.above([0.9, 0.91, 0.89, 0.9, 0.92], 0.1, "strong")
    weakest = rules.above([0.3, 0.2, 0.4, 0.25, 0.35], 0.1, "weak")
    absent = rules.at_chance([0.1, 0.1, 0.11, 0.09, 0.1], 0.1, "absent")
    assert strong.verdict == weakest.verdict == absent.verdict == HOLDS
    assert weakest.p_value > strong.p_value and weakest.effect.d < strong.effect.d
    for parts in ([strong, weakest, absent], [weakest, absent, strong], [absent, strong, weakest]):
        measured = rules.combine(parts, "t", 5)
        assert measured.verdict == HOLDS
        assert measured.p_value == weakest.p_value and measured.effect == weakest.effect


def test_the_verdict_takes_contradicted_over_not_shown_over_holds():
    held, unshown = rules.above([0.9, 0.91, 0.89], 0.1, "a"), rules.above([0.2, 0.05, 0.3, 0.1], 0.1, "b")
    contradicted = rules.above([0.01, 0.02, 0.01], 0.1, "c")
    assert rules.combine([held, unshown], "t", 5).verdict == NOT_SHOWN
    assert rules.combine([unshown, contradicted, held], "t", 5).verdict == CONTRADICTED
    assert rules.combine([held, held], "t", 5).verdict == HOLDS
    assert rules.combine([held], "t", 2).verdict == INCONCLUSIVE


def stats_p_for_d(d: float, n: int = 100) -> float:
    """The one-sided one-sample p whose implied d at n trials is ``d``."""
    return float(sps.t.sf(d * np.sqrt(n), n - 1))


def test_effect_against_paper():
    measured = rules.combine([rules.above([0.3, 0.2, 0.4, 0.25, 0.35, 0.05, 0.15], 0.1, "x")], "t", 7)
    effect = measured.effect
    assert effect.kind == "one_sample" and effect.low < effect.d < effect.high

    def claim(paper_effect):
        return Claim("x", "x", "x", "x", lambda table: measured, paper_effect)

    strong_paper = PaperEffect(1e-60, 100)                 # d about 2, above the measured interval
    assert strong_paper.d > effect.high
    assert claim(strong_paper).effect_against_paper(measured) == "weaker"
    weak_paper = PaperEffect(0.3, 100)
    assert weak_paper.d < effect.low
    assert claim(weak_paper).effect_against_paper(measured) == "stronger"
    assert claim(PaperEffect(0.3, 100, bound=True)).effect_against_paper(measured) == "as large"
    assert claim(None).effect_against_paper(measured) == "-"
    no_effect = Measured("s", "t", None, HOLDS)
    assert claim(strong_paper).effect_against_paper(no_effect) == "-"
    inside = Measured("s", "t", 0.01, HOLDS, effect=Effect(1.0, 0.5, 1.5, "one_sample"))
    assert claim(PaperEffect(stats_p_for_d(1.0), 100)).effect_against_paper(inside) == "as large"


def test_readme_counts_the_claims():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"({sum(len(e.claims) for e in EXPERIMENTS.values())} of them" in readme
