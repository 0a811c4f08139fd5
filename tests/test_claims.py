"""Every claim of the registry judged on hand-made records tables (no training).

Each experiment gets three worlds built by hand: the paper's (every claim
holds), a reversed one (every claim is contradicted) and a weak one (effects
in trial-to-trial noise: every claim not shown, except claims that only state
non-significance, which cannot be "not shown" and hold there).
"""

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from metaplastic import claims, protocol
from metaplastic.claims import CONTRADICTED, HOLDS, INCONCLUSIVE, NOT_SHOWN
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


# --------------------------------------------------------------------------- the worlds

def serial_position(world):
    n = 10

    def recency(t, k, i):
        return 0.8 if k - 6 < i <= k else 0.02

    def primacy(t, k, i):
        return 0.8 if i <= min(k, 3) else 0.02

    if world == "paper":
        hybrid = lambda t, k, i: (0.9 if i in (1, k) else 0.5) if i <= k else 0.02  # noqa: E731
        return build({"conventional": recency, "stable": primacy, "hybrid": hybrid}, n, n, 5)
    if world == "reversed":
        hybrid = lambda t, k, i: (0.0 if i in (1, k) else 0.5) if i <= k else 0.02  # noqa: E731
        return build({"conventional": primacy, "stable": recency, "hybrid": hybrid}, n, n, 5)
    hybrid_memorized = lambda t, k, i: i <= k and not (t == 2 and i == 1)  # noqa: E731
    return build({p: weak(0.1) for p in ("conventional", "stable", "hybrid")}, n, n, 3, noise=0,
                 memorized={"conventional": first_m([2, 9, 3]), "stable": first_m([0, 8, 0]),
                            "hybrid": hybrid_memorized})


def sequence_length(world):
    n = 12
    if world == "paper":
        hybrid = lambda t, k, i: 0.9 - 0.04 * k if i <= k else 0.02  # noqa: E731
        conventional = lambda t, k, i: 0.8 if k - 4 < i <= k else 0.02  # noqa: E731
        return build({"conventional": conventional, "hybrid": hybrid}, n, n, 5)
    if world == "reversed":
        hybrid = lambda t, k, i: (0.0 if i == 1 else 0.05 + 0.03 * k) if i <= k else 0.02  # noqa: E731
        conventional = lambda t, k, i: 0.8 if i <= k else 0.02  # noqa: E731
        return build({"conventional": conventional, "hybrid": hybrid}, n, n, 5)
    return build({p: weak(1 / n) for p in ("conventional", "hybrid")}, n, n, 3, noise=0,
                 memorized={"conventional": first_m([2, 9, 3]), "hybrid": first_m([5, 12, 3])})


def _pass(k, n):
    return (k - 1) // n if k else 0


def repetition(world, n=5, passes=3):
    def forgetful(t, k, i):
        return 0.8 if i in ((k - 1) % n + 1, (k - 2) % n + 1) else 0.02

    def rising(t, k, i):
        return 0.9 if i in (1, n) else 0.3 + 0.2 * _pass(k, n)

    def falling(t, k, i):
        return 0.9 if i in (1, n) else 0.7 - 0.2 * _pass(k, n)

    if world == "paper":
        return build({"conventional": forgetful, "hybrid": rising}, n, n * passes, 5)
    if world == "reversed":
        return build({"conventional": rising, "hybrid": falling}, n, n * passes, 5)
    return build({p: weak(1 / n) for p in ("conventional", "hybrid")}, n, n * passes, 3, noise=0)


def poisoning(world, n=5):
    if world == "paper":
        return build({"conventional": lambda t, k, i: 0.02, "hybrid": lambda t, k, i: 0.7},
                     n, 3 * n, 5)
    if world == "reversed":
        return build({"conventional": lambda t, k, i: 0.7, "hybrid": lambda t, k, i: 0.0},
                     n, 3 * n, 5)
    return build({p: weak(1 / n) for p in ("conventional", "hybrid")}, n, 3 * n, 3, noise=0,
                 memorized={"conventional": first_m([1, 2, 1]), "hybrid": first_m([3, 1, 2])})


def frequency(world, shared_data):
    schedules = protocol.published_frequency_schedules(
        protocol.load_frequency_profiles(shared_data / protocol.FREQUENCY_SCHEDULES_FILE), 10)
    order = {t: schedules[t][1] for t in range(5)}
    last = {t: {item: max(k for k, x in enumerate(order[t], 1) if x == item) for item in range(1, 11)}
            for t in order}

    def by_order(t, k, i):
        return last[t][i] / 55

    def by_frequency(t, k, i):
        return i / 10          # item i is presented i times

    def mixed(frequency_trials):
        return lambda t, k, i: by_frequency(t, k, i) if t in frequency_trials else by_order(t, k, i)

    worlds = {"paper": {"conventional": by_order, "hybrid": by_frequency},
              "reversed": {"conventional": by_frequency, "hybrid": by_order},
              "weak": {"conventional": mixed({0}), "hybrid": mixed({0, 1})}}
    return build(worlds[world], 10, 55, 5, noise=0, presented=lambda t, k: order[t][k - 1])


def single_value(world):
    n = 10
    values = (0.3, 0.5, 0.72, 0.8, 0.88, 0.9, 1.0)

    def curve(v, sign, hole=False):
        shift = sign * 0.8 * (v - 0.3) / 0.7
        first, last = (0.9 - shift, 0.1 + shift) if sign > 0 else (0.1 - shift, 0.9 + shift)
        return lambda t, k, i: first if i == 1 else last if i == n else (0.0 if hole else 0.5)

    if world == "weak":
        return build({f"constant:{v}": weak(0.1) for v in values}, n, n, 3, noise=0,
                     memorized={"constant:0.8": lambda t, k, i: not (t == 2 and i == 1)})
    sign = 1 if world == "paper" else -1
    return build({f"constant:{v}": curve(v, sign, hole=world == "reversed" and v == 0.8)
                  for v in values}, n, n, 5)


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

#: Claims that only state non-significance: no "not shown" for them (they hold in the weak world).
#: Keyed by experiment and statement (claims have no names yet), never by position in the list.
NS_ONLY = {
    ("sequence-length", "with 30 items the conventional network forgets the early items"),
    ("sequence-length", "the conventional network's memorized count converges as the sequence lengthens"),
    ("repetition", "the conventional network's lowest item does not improve with repetition"),
    ("poisoning", "after the poisoned pass every conventional item is at chance"),
}

CLAIMS = {(name, claim.statement): claim for name, spec in EXPERIMENTS.items() for claim in spec.claims}

CASES = [(name, statement, world) for name, statement in CLAIMS
         for world in ("paper", "reversed", "weak")]


@pytest.fixture(scope="module")
def tables(shared_data):
    worlds = dict(WORLDS, frequency=lambda world: frequency(world, shared_data))
    return {(name, world): worlds[name](world) for name in EXPERIMENTS
            for world in ("paper", "reversed", "weak")}


def test_every_experiment_has_worlds():
    assert set(WORLDS) == set(EXPERIMENTS)


def test_claims_are_told_apart_by_their_statement_and_say_how_they_are_judged():
    """The tests key claims by statement: two claims of one experiment must not share one."""
    assert len(CLAIMS) == sum(len(spec.claims) for spec in EXPERIMENTS.values())
    for (name, statement), claim in CLAIMS.items():
        assert statement.strip() == statement, (name, statement)
        assert claim.rule.strip() and claim.paper.strip(), (name, statement)


@pytest.mark.parametrize("name, statement, world", CASES)
def test_claim_verdict_in_each_world(tables, name, statement, world):
    claim = CLAIMS[(name, statement)]
    expected = {"paper": HOLDS, "reversed": CONTRADICTED,
                "weak": HOLDS if (name, statement) in NS_ONLY else NOT_SHOWN}[world]
    measured = claim.check(tables[(name, world)])
    assert measured.verdict == expected, (claim.statement, measured.statistic)
    if measured.verdict != NOT_SHOWN:          # trials needed: only where an effect is not shown
        assert measured.trials_needed is None, (claim.statement, measured.trials_needed)


def test_ns_only_claims_are_the_claims_without_an_effect():
    """The NS_ONLY list is not a way out: each names a claim of the registry (a renamed claim
    would otherwise drop out silently), and those claims really assert no effect (their paper
    statistic is NS, 'does not' or forgetting)."""
    assert NS_ONLY <= set(CLAIMS), NS_ONLY - set(CLAIMS)
    for key in NS_ONLY:
        paper = CLAIMS[key].paper
        assert "NS" in paper or "not" in paper or "forgetting" in paper, paper


def test_nine_of_ten_in_half_the_trials_does_not_hold():
    """The hybrid memorizes 9 of 10 items in half of the trials: 'memorizes all 10' must not hold."""
    n = 10
    memorized = lambda t, k, i: i <= k and not (t % 2 == 0 and i == 5)  # noqa: E731
    table = build({"hybrid": lambda t, k, i: 0.8 if i <= k else 0.02}, n, n, 10,
                  memorized={"hybrid": memorized})
    for claim in (claims.memorizes_every_item("hybrid"),
                  claims.memorizes_every_item("hybrid", after_every_presentation=True)):
        assert claim(table).verdict == CONTRADICTED      # 5 of 10 trials fail: significant


def test_a_single_failing_trial_is_not_shown_not_holds():
    n = 10
    memorized = lambda t, k, i: not (t == 0 and i == 5)  # noqa: E731
    table = build({"hybrid": lambda t, k, i: 0.8}, n, n, 10, memorized={"hybrid": memorized})
    measured = claims.memorizes_every_item("hybrid")(table)
    assert measured.verdict == NOT_SHOWN and "9 of 10 trials" in measured.statistic


def test_too_few_trials_or_missing_profiles_are_inconclusive():
    table = serial_position("paper")
    claim = CLAIMS[("serial-position",
                    "after the 7th item the conventional network has lost item 1 and keeps item 7")]
    assert claim.check(table).verdict == HOLDS
    assert claim.check(table[table.trial < 2]).verdict == INCONCLUSIVE
    missing = claim.check(table[table.learner != "conventional"])
    assert missing.verdict == INCONCLUSIVE and "conventional not in this run" in missing.statistic
    short = build({"conventional": lambda t, k, i: 0.5}, 5, 5, 5)
    assert "at least 7 items" in claim.check(short).statistic


def test_not_shown_reports_the_trials_the_effect_would_need():
    values = np.array([0.2, 0.05, 0.3, 0.1])           # mean 0.1625 above chance 0.1, sd 0.108
    part = claims.above(values, 0.1, "item")
    assert part.verdict == NOT_SHOWN
    assert part.trials_needed == pytest.approx(claims.stats.trials_for_power(0.0625 / values.std(ddof=1)))
    assert part.trials_needed > len(values)


def test_building_blocks_by_hand():
    assert claims.not_above([0.5, 0.6, 0.55], 0.1, "x").verdict == CONTRADICTED
    assert claims.not_above([0.1, 0.05, 0.12], 0.1, "x").verdict == HOLDS
    assert claims.greater([1, 2, 3], [1.5, 2.5, 3.5], "x", paired=True).verdict == CONTRADICTED
    assert claims.about([6, 6, 5], 6, 1, "x").verdict == HOLDS
    assert claims.about([1, 1, 2], 6, 1, "x").verdict == CONTRADICTED
    assert claims.most_trials([True, True, False], "x").verdict == HOLDS
    assert claims.most_trials([False] * 6, "x").verdict == CONTRADICTED     # 0.5**6 < 0.05
    assert claims.no_trial([False] * 5, "x").verdict == HOLDS
    assert claims.no_trial([True] * 3 + [False] * 2, "x").verdict == CONTRADICTED
    assert claims.no_trial([True] + [False] * 9, "x").verdict == NOT_SHOWN


def test_readme_counts_the_claims():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"({sum(len(e.claims) for e in EXPERIMENTS.values())} of them" in readme
