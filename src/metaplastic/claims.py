"""The paper's claims as checks over a records table, judged as strictly as the paper states them.

Every quantitative statement of the paper's results (Figs. 2-5, Supp. Figs. 2-4)
is one :class:`Claim`: the statement, the paper's statistic, the rule that
decides the verdict (in words, printed in the report) and a check that
computes our statistic from a records table. The rules are fixed here, before
any run; a claim that does not hold is a finding, never a reason to change its
rule.

Verdicts
--------
* **holds**: every part of the claim is met by the paper's test at p < 0.05
  (effects significant in the claimed direction, claimed NS items not
  significant, "every trial" statements true in every trial).
* **contradicted**: some part goes the other way significantly (an effect
  reversed at p < 0.05, a claimed NS item significant, an "all" statement
  failing significantly more often than not).
* **not shown**: nothing is contradicted, but some effect is not significant;
  the report gives the trials the observed effect size would need
  (one-sided t-test, power 0.8, p < 0.05).
* **inconclusive**: fewer than ``MIN_TRIALS`` trials, a missing profile, or a
  sequence too short for the statement.

Tests: per-item claims use the paper's one-sided one-sample t-test over trials
against chance (1 / N readouts); comparisons of two networks use the paper's
two-sample t-test (one-sided, in the claimed direction); comparisons within a
network (first vs middle items, one length vs another) pair the values of each
trial. "Order" in the frequency experiment is the position of an item's last
presentation (docs/frequency.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metaplastic import stats, tables

SIGNIFICANCE = 0.05
MIN_TRIALS = 3

HOLDS, CONTRADICTED, NOT_SHOWN, INCONCLUSIVE = "holds", "contradicted", "not shown", "inconclusive"
VERDICTS = (HOLDS, CONTRADICTED, NOT_SHOWN, INCONCLUSIVE)


@dataclass(frozen=True)
class Measured:
    statistic: str               # our measured statistic, in words and numbers
    test: str                    # the test(s) behind the verdict
    p_value: float | None        # the deciding p-value (the weakest claimed effect), if any
    verdict: str                 # one of VERDICTS
    trials_needed: int | None = None  # not shown: trials the observed effect would need


@dataclass(frozen=True)
class Claim:
    statement: str
    paper: str                   # the paper's statistic
    rule: str                    # how the verdict is decided, in words
    check: Callable[[pd.DataFrame], Measured]


# --------------------------------------------------------------------------- parts of a claim


@dataclass(frozen=True)
class Part:
    """One tested statement inside a claim."""

    text: str
    verdict: str
    p_value: float | None = None        # p of a claimed effect (None for claimed NS)
    trials_needed: int | None = None


def _mean_sd(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    return float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else 0.0


def _needed(effect: float, spread: float, two_sample: bool) -> int | None:
    return stats.trials_for_power(effect / spread, two_sample) if spread > 0 else None


def above(samples, value: float, label: str) -> Part:
    """Claimed: the mean over trials lies above ``value`` (one-sided one-sample t-test)."""
    mean, sd = _mean_sd(samples)
    p = stats.one_sample(samples, value, "greater")[1]
    text = f"{label} {mean:.3f} +- {sd:.3f} (vs {value:.3g}: p = {p:.2g})"
    if p < SIGNIFICANCE:
        return Part(text, HOLDS, p)
    if stats.one_sample(samples, value, "less")[1] < SIGNIFICANCE:
        return Part(text + " reversed", CONTRADICTED, p)
    return Part(text, NOT_SHOWN, p, _needed(mean - value, sd, two_sample=False))


def not_above(samples, value: float, label: str) -> Part:
    """Claimed NS: the mean is not significantly above ``value`` (one-sided one-sample t-test)."""
    mean, sd = _mean_sd(samples)
    p = stats.one_sample(samples, value, "greater")[1]
    text = f"{label} {mean:.3f} +- {sd:.3f} (vs {value:.3g}: p = {p:.2g}, claimed NS)"
    return Part(text, HOLDS if p >= SIGNIFICANCE else CONTRADICTED)


def greater(a, b, label: str, paired: bool = False) -> Part:
    """Claimed: ``a`` exceeds ``b`` (one-sided two-sample t-test, or paired over trials)."""
    (ma, sa), (mb, sb) = _mean_sd(a), _mean_sd(b)
    if paired:
        difference = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
        p, p_reverse = (stats.one_sample(difference, 0.0, side)[1] for side in ("greater", "less"))
        spread, two_sample = _mean_sd(difference)[1], False
    else:
        p, p_reverse = (stats.compare(a, b, side)[1] for side in ("greater", "less"))
        spread, two_sample = float(np.sqrt((sa**2 + sb**2) / 2)), True
    test = "paired" if paired else "two-sample"
    text = f"{label}: {ma:.3f} +- {sa:.3f} vs {mb:.3f} +- {sb:.3f} ({test}: p = {p:.2g})"
    if p < SIGNIFICANCE:
        return Part(text, HOLDS, p)
    if p_reverse < SIGNIFICANCE:
        return Part(text + " reversed", CONTRADICTED, p)
    return Part(text, NOT_SHOWN, p, _needed(ma - mb, spread, two_sample))


def not_different(a, b, label: str) -> Part:
    """Claimed NS: ``a`` and ``b`` do not differ (two-sided two-sample t-test)."""
    (ma, sa), (mb, sb) = _mean_sd(a), _mean_sd(b)
    p = stats.compare(a, b, "two-sided")[1]
    text = f"{label}: {ma:.3f} +- {sa:.3f} vs {mb:.3f} +- {sb:.3f} (two-sided: p = {p:.2g}, claimed NS)"
    return Part(text, HOLDS if p >= SIGNIFICANCE else CONTRADICTED)


def every_trial(shortfall, label: str) -> Part:
    """Claimed: a statement true in every trial; ``shortfall`` per trial is 0 where it is true.

    Contradicted when the shortfall is significantly above 0 (one-sided one-sample
    t-test); not shown when it fails in some trials without significance.
    """
    shortfall = np.asarray(shortfall, dtype=float)
    failing = int((shortfall > 0).sum())
    text = f"{label}: in {len(shortfall) - failing} of {len(shortfall)} trials"
    if failing == 0:
        return Part(text, HOLDS, 0.0)
    p = stats.one_sample(shortfall, 0.0, "greater")[1]
    return Part(text + f" (shortfall {shortfall.mean():.2f} per trial, p = {p:.2g})",
                CONTRADICTED if p < SIGNIFICANCE else NOT_SHOWN, 1.0)


def about(counts, target: float, tolerance: float, label: str) -> Part:
    """Claimed: "about ``target``": the mean lies within target +- tolerance; contradicted when a
    one-sided t-test puts it significantly beyond the nearer bound."""
    mean, sd = _mean_sd(counts)
    text = f"{label} {mean:.2f} +- {sd:.2f} (claimed about {target:g}, within +-{tolerance:g})"
    if abs(mean - target) <= tolerance:
        return Part(text, HOLDS)
    bound, side = (target + tolerance, "greater") if mean > target else (target - tolerance, "less")
    p = stats.one_sample(counts, bound, side)[1]
    return Part(text + f", beyond {bound:g}: p = {p:.2g}", CONTRADICTED if p < SIGNIFICANCE else NOT_SHOWN)


def most_trials(flags, label: str) -> Part:
    """Claimed: true in most (more than half of the) trials; contradicted when an exact binomial
    test puts the rate significantly below one half."""
    flags = np.asarray(flags, dtype=bool)
    k, n = int(flags.sum()), len(flags)
    text = f"{label}: {k} of {n} trials"
    if 2 * k > n:
        return Part(text, HOLDS)
    p = stats.binomial_less(k, n, 0.5)
    return Part(text + f" (rate below 1/2: p = {p:.2g})", CONTRADICTED if p < SIGNIFICANCE else NOT_SHOWN)


def no_trial(flags, label: str) -> Part:
    """Claimed: true in none of the trials; contradicted when the count significantly exceeds the
    5% that chance alone gives (exact binomial test), not shown for fewer."""
    flags = np.asarray(flags, dtype=bool)
    k, n = int(flags.sum()), len(flags)
    text = f"{label}: {k} of {n} trials"
    if k == 0:
        return Part(text, HOLDS)
    p = stats.binomial_greater(k, n, SIGNIFICANCE)
    return Part(text + f" (above the 5% false-positive rate: p = {p:.2g})",
                CONTRADICTED if p < SIGNIFICANCE else NOT_SHOWN)


def combine(parts: Sequence[Part], test: str, trials: int) -> Measured:
    """The claim's verdict from its parts: any contradiction decides, then any unshown effect."""
    statistic = _summary(parts)
    p_values = [part.p_value for part in parts if part.p_value is not None]
    p = max(p_values) if p_values else None
    verdicts = {part.verdict for part in parts}
    needed = [part.trials_needed for part in parts if part.verdict == NOT_SHOWN and part.trials_needed]
    if trials < MIN_TRIALS:
        return Measured(statistic, test, p, INCONCLUSIVE)
    if CONTRADICTED in verdicts:
        return Measured(statistic, test, p, CONTRADICTED)
    if NOT_SHOWN in verdicts:
        return Measured(statistic, test, p, NOT_SHOWN, max(needed) if needed else None)
    return Measured(statistic, test, p, HOLDS)


def _summary(parts: Sequence[Part]) -> str:
    """Every part when there are few; else the count met, each part not met, and the weakest met."""
    if len(parts) <= 4:
        return "; ".join(part.text for part in parts)
    met = [part for part in parts if part.verdict == HOLDS]
    text = f"{len(met)} of {len(parts)} tests met"
    unmet = [part.text + f" [{part.verdict}]" for part in parts if part.verdict != HOLDS]
    if unmet:
        text += "; not met: " + "; ".join(unmet)
    if met:
        weakest = max(met, key=lambda part: -1.0 if part.p_value is None else part.p_value)
        text += "; weakest met: " + weakest.text
    return text


def inconclusive(why: str) -> Measured:
    return Measured(why, "-", None, INCONCLUSIVE)


# --------------------------------------------------------------------------- reading the table


def _gap(table: pd.DataFrame, profiles: Sequence[str], min_items: int = 3) -> Measured | None:
    """Why a claim cannot be judged on this table, if it cannot."""
    absent = [p for p in profiles if p not in set(table["learner"])]
    if absent:
        return inconclusive(f"profile(s) {', '.join(absent)} not in this run")
    if tables.n_items(table) < min_items:
        return inconclusive(f"the statement needs at least {min_items} items, "
                            f"the run has {tables.n_items(table)}")
    return None


def _trials(table: pd.DataFrame, profiles: Sequence[str]) -> int:
    return min(table[table.learner == p]["trial"].nunique() for p in profiles)


def _first(n: int, fraction: float) -> list[int]:
    """The first round(fraction * n) items (at least one), 1-based."""
    return list(range(1, max(1, round(fraction * n)) + 1))


def _last(n: int, fraction: float) -> list[int]:
    return list(range(n - max(1, round(fraction * n)) + 1, n + 1))


def _middle(n: int) -> list[int]:
    """The central third of the positions (items 4-7 of 10): the bottom of a U."""
    return list(range(n // 3 + 1, n - n // 3 + 1))


def _items_above(perf: pd.DataFrame, items, chance, who) -> list[Part]:
    return [above(perf[i].to_numpy(), chance, f"{who} item {i}") for i in items]


def _items_not_above(perf: pd.DataFrame, items, chance, who) -> list[Part]:
    return [not_above(perf[i].to_numpy(), chance, f"{who} item {i}") for i in items]


PER_ITEM = "one-sided one-sample t-test per item vs chance (1/N)"
TWO_SAMPLE = "one-sided two-sample t-test"


# --------------------------------------------------------------------------- Fig. 2


def after_seventh(profile: str, first_kept: bool, seventh_kept: bool) -> Callable:
    """Fig. 2d, 2g, 2j: items 1 and 7 against chance right after the 7th presentation."""

    def check(table):
        if (gap := _gap(table, [profile], min_items=7)) is not None:
            return gap
        perf, chance = tables.performance_at(table, profile, 7), tables.chance(table)
        parts = [(above if kept else not_above)(perf[i].to_numpy(), chance, f"item {i}")
                 for i, kept in ((1, first_kept), (7, seventh_kept))]
        return combine(parts, PER_ITEM, _trials(table, [profile]))
    return check


def position_effect(profile: str, kept: str, kept_fraction: float) -> Callable:
    """Fig. 2e, 2h: after the whole sequence the ``kept`` end ("last" for recency, "first" for
    primacy) is above chance item by item, every other item NS."""

    def check(table):
        if (gap := _gap(table, [profile])) is not None:
            return gap
        perf, chance, n = tables.performance_at(table, profile), tables.chance(table), tables.n_items(table)
        kept_items = (_last if kept == "last" else _first)(n, kept_fraction)
        lost_items = [i for i in range(1, n + 1) if i not in kept_items]
        parts = (_items_above(perf, kept_items, chance, profile)
                 + _items_not_above(perf, lost_items, chance, profile))
        return combine(parts, PER_ITEM, _trials(table, [profile]))
    return check


def about_memorized(profile: str, fraction: float) -> Callable:
    """Fig. 2f, 2i: about ``fraction`` * N items memorized after the whole sequence (+-1)."""

    def check(table):
        if (gap := _gap(table, [profile])) is not None:
            return gap
        n = tables.n_items(table)
        part = about(tables.memorized_counts(table, profile), fraction * n, 1.0, f"{profile} memorizes")
        return combine([part], "mean memorized count within target +- 1; one-sided t-test beyond it",
                       _trials(table, [profile]))
    return check


def all_above_chance(profile: str, u_shaped: bool = False) -> Callable:
    """Every item above chance after the whole sequence (Fig. 2k, 3b, 4f); with ``u_shaped`` also
    the first and the last item above the middle ones (paired over trials)."""

    def check(table):
        if (gap := _gap(table, [profile])) is not None:
            return gap
        perf, chance, n = tables.performance_at(table, profile), tables.chance(table), tables.n_items(table)
        parts = _items_above(perf, range(1, n + 1), chance, profile)
        test = PER_ITEM
        if u_shaped:
            middle = perf[_middle(n)].mean(axis=1).to_numpy()
            parts += [greater(perf[1].to_numpy(), middle, "first item vs middle items", paired=True),
                      greater(perf[n].to_numpy(), middle, "last item vs middle items", paired=True)]
            test += "; one-sided paired t-tests first/last vs mean of the middle third"
        return combine(parts, test, _trials(table, [profile]))
    return check


def none_above_chance(profile: str) -> Callable:
    """Every item NS against chance after the whole sequence (Fig. 4f, conventional)."""

    def check(table):
        if (gap := _gap(table, [profile])) is not None:
            return gap
        perf, chance, n = tables.performance_at(table, profile), tables.chance(table), tables.n_items(table)
        return combine(_items_not_above(perf, range(1, n + 1), chance, profile), PER_ITEM,
                       _trials(table, [profile]))
    return check


def memorizes_every_item(profile: str, after_every_presentation: bool = False) -> Callable:
    """Every item memorized (label-shuffle test) in every trial: after the last presentation, or
    (Fig. 2l) after every presentation counting the items trained so far; plus, after the last
    presentation, every item above chance by the per-item t-test."""

    def check(table):
        if (gap := _gap(table, [profile])) is not None:
            return gap
        n = tables.n_items(table)
        if after_every_presentation:
            counts = tables.per_presentation(table, profile, "memorized", "sum")
            shortfall = (counts.index.to_numpy()[:, None] - counts.to_numpy()).sum(axis=0)
            label = f"{profile} memorizes every item trained so far after each of the {n} presentations"
        else:
            shortfall = n - tables.memorized_counts(table, profile)
            label = f"{profile} memorizes all {n} items"
        perf, chance = tables.performance_at(table, profile), tables.chance(table)
        parts = [every_trial(shortfall, label)] + _items_above(perf, range(1, n + 1), chance, profile)
        return combine(parts, "memorized (p < 0.05 under label shuffles) in every trial; " + PER_ITEM,
                       _trials(table, [profile]))
    return check


# --------------------------------------------------------------------------- Fig. 3


def early_items_lost(profile: str, fraction: float) -> Callable:
    """Fig. 3b bottom: the first items are NS after the whole sequence."""

    def check(table):
        if (gap := _gap(table, [profile])) is not None:
            return gap
        perf, chance, n = tables.performance_at(table, profile), tables.chance(table), tables.n_items(table)
        return combine(_items_not_above(perf, _first(n, fraction), chance, profile), PER_ITEM,
                       _trials(table, [profile]))
    return check


def compare_final(better: str, worse: str, what: str, fn: Callable[[pd.DataFrame], float]) -> Callable:
    """``fn`` of each trial's final performances, ``better`` > ``worse`` (two-sample t-test)."""

    def check(table):
        if (gap := _gap(table, [better, worse])) is not None:
            return gap
        a, b = (tables.performance_at(table, p).apply(fn, axis=1).to_numpy() for p in (better, worse))
        return combine([greater(a, b, f"{what}, {better} vs {worse}")], TWO_SAMPLE,
                       _trials(table, [better, worse]))
    return check


def more_memorized(better: str, worse: str) -> Callable:
    def check(table):
        if (gap := _gap(table, [better, worse])) is not None:
            return gap
        a, b = tables.memorized_counts(table, better), tables.memorized_counts(table, worse)
        return combine([greater(a, b, f"memorized items, {better} vs {worse}")], TWO_SAMPLE,
                       _trials(table, [better, worse]))
    return check


def _at_lengths(table, profile, column, how, lengths):
    """Per-trial values of ``how``(``column``) over the items trained so far, at given lengths."""
    grid = tables.per_presentation(table, profile, column, how)
    return [grid.loc[length].to_numpy() for length in lengths]


def count_converges(profile: str) -> Callable:
    """Fig. 3c: the memorized count at two thirds of the sequence and at its end do not differ."""

    def check(table):
        if (gap := _gap(table, [profile], min_items=6)) is not None:
            return gap
        n = tables.n_items(table)
        early, late = _at_lengths(table, profile, "memorized", "sum", (round(2 * n / 3), n))
        part = not_different(late, early, f"{profile} memorized after {n} vs after {round(2 * n / 3)} items")
        return combine([part], "two-sided two-sample t-test (claimed NS)", _trials(table, [profile]))
    return check


def average_falls(profile: str) -> Callable:
    """Fig. 3d: the average performance over the items trained so far is lower after all N items
    than after N/3 (paired over trials)."""

    def check(table):
        if (gap := _gap(table, [profile], min_items=6)) is not None:
            return gap
        n = tables.n_items(table)
        early, late = _at_lengths(table, profile, "performance", "mean", (round(n / 3), n))
        part = greater(early, late, f"{profile} average performance after {round(n / 3)} vs {n} items",
                       paired=True)
        return combine([part], "one-sided paired t-test", _trials(table, [profile]))
    return check


def gross_memory_saturates(profile: str) -> Callable:
    """Fig. 3e: the gross memory grows less over the last third of the sequence than over the
    first third (paired over trials): it levels off."""

    def check(table):
        if (gap := _gap(table, [profile], min_items=6)) is not None:
            return gap
        n = tables.n_items(table)
        third = round(n / 3)
        g1, g_a, g_b, g_n = _at_lengths(table, profile, "performance", "sum", (1, third, n - third, n))
        part = greater(g_a - g1, g_n - g_b, f"{profile} gross-memory gain over items 1-{third} vs "
                       f"{n - third}-{n}", paired=True)
        return combine([part], "one-sided paired t-test", _trials(table, [profile]))
    return check


# --------------------------------------------------------------------------- Fig. 4, Supp. Fig. 4


def _lowest_after_passes(table, profile) -> tuple[np.ndarray, np.ndarray]:
    """Per trial: the lowest item performance after the first and after the last pass."""
    ends = tables.pass_ends(table)
    first = tables.performance_at(table, profile, ends[0]).min(axis=1).to_numpy()
    last = tables.performance_at(table, profile, ends[-1]).min(axis=1).to_numpy()
    return first, last


def lowest_rises(profile: str, claimed: bool) -> Callable:
    """Fig. 4c-d: the lowest item's performance after the last pass vs after the first, paired;
    ``claimed=False`` states that it does not rise (NS)."""

    def check(table):
        if (gap := _gap(table, [profile])) is not None:
            return gap
        if len(tables.pass_ends(table)) < 2:
            return inconclusive("the sequence has a single pass")
        first, last = _lowest_after_passes(table, profile)
        label = f"{profile} lowest item, last pass - first pass"
        part = above(last - first, 0.0, label) if claimed else not_above(last - first, 0.0, label)
        return combine([part], "one-sided one-sample t-test of the rise (paired over trials)",
                       _trials(table, [profile]))
    return check


def lowest_rises_more(better: str, worse: str) -> Callable:
    def check(table):
        if (gap := _gap(table, [better, worse])) is not None:
            return gap
        if len(tables.pass_ends(table)) < 2:
            return inconclusive("the sequence has a single pass")
        rises = [np.subtract(*reversed(_lowest_after_passes(table, p))) for p in (better, worse)]
        part = greater(rises[0], rises[1], f"rise of the lowest item, {better} vs {worse}")
        return combine([part], TWO_SAMPLE, _trials(table, [better, worse]))
    return check


def _range(row: pd.Series) -> float:
    return float(row.max() - row.min())


def smaller_range(better: str, worse: str) -> Callable:
    """Supp. Fig. 4c: highest minus lowest item performance after the last pass is smaller."""

    def check(table):
        if (gap := _gap(table, [better, worse])) is not None:
            return gap
        a, b = (tables.performance_at(table, p).apply(_range, axis=1).to_numpy() for p in (better, worse))
        part = greater(b, a, f"highest - lowest, {worse} vs {better}")
        return combine([part], TWO_SAMPLE, _trials(table, [better, worse]))
    return check


# --------------------------------------------------------------------------- Fig. 5


def _correlations(table: pd.DataFrame, profile: str, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Per trial: Spearman (rho, p) of final performance with an item-schedule column."""
    rhos, ps = [], []
    for _, trial in table[table.learner == profile].groupby("trial"):
        schedule = tables.item_schedule(trial)
        performance = tables.final_performance(trial).reindex(schedule.index)
        rho, p = stats.spearman(schedule[column].to_numpy(), performance.to_numpy())
        rhos.append(0.0 if np.isnan(rho) else rho)   # constant performance: no rank relation
        ps.append(1.0 if np.isnan(p) else p)
    return np.array(rhos), np.array(ps)


def correlates_more(better: str, worse: str, column: str, what: str) -> Callable:
    def check(table):
        if (gap := _gap(table, [better, worse])) is not None:
            return gap
        a, b = _correlations(table, better, column)[0], _correlations(table, worse, column)[0]
        return combine([greater(a, b, f"Spearman(performance, {what}), {better} vs {worse}")],
                       TWO_SAMPLE, _trials(table, [better, worse]))
    return check


def frequency_significant(profile: str, most: bool) -> Callable:
    """Fig. 5c right: a trial's performance-frequency correlation is significant (rho > 0,
    p < 0.05) in most trials (``most=True``) or in none."""

    def check(table):
        if (gap := _gap(table, [profile])) is not None:
            return gap
        rho, p = _correlations(table, profile, "frequency")
        flags = (rho > 0) & (p < SIGNIFICANCE)
        label = f"{profile} trials with a significant positive Spearman(performance, frequency)"
        part = most_trials(flags, label) if most else no_trial(flags, label)
        rule = "more than half of the trials" if most else "no trial beyond the 5% false-positive rate"
        return combine([part], f"Spearman p < 0.05 per trial; {rule} (exact binomial test)",
                       _trials(table, [profile]))
    return check


# --------------------------------------------------------------------------- Supp. Figs 2-3


def _primacy_index(row: pd.Series) -> float:
    """First minus last item performance: > 0 is primacy, < 0 recency."""
    return float(row.iloc[0] - row.iloc[-1])


def _primacy(table, profile) -> np.ndarray:
    return tables.performance_at(table, profile).apply(_primacy_index, axis=1).to_numpy()


def ends_shape(primacy_profile: str, recency_profile: str) -> Callable:
    """Supp. Fig. 2a: the first profile shows primacy (first > last item, paired), the second
    recency (last > first)."""

    def check(table):
        if (gap := _gap(table, [primacy_profile, recency_profile])) is not None:
            return gap
        parts = [above(_primacy(table, primacy_profile), 0.0, f"{primacy_profile} first - last item"),
                 above(-_primacy(table, recency_profile), 0.0, f"{recency_profile} last - first item")]
        return combine(parts, "one-sided one-sample t-tests of first - last (paired over trials)",
                       _trials(table, [primacy_profile, recency_profile]))
    return check


def primacy_trend(profiles_by_value: dict[str, float]) -> Callable:
    """Supp. Fig. 2a: the primacy index (first - last item) falls as the single value rises:
    Spearman over every (value, trial) pair, negative and significant (one-sided)."""

    def check(table):
        if (gap := _gap(table, list(profiles_by_value))) is not None:
            return gap
        values, index = [], []
        for profile, value in profiles_by_value.items():
            primacy = _primacy(table, profile)
            values += [value] * len(primacy)
            index += list(primacy)
        rho, p_two = stats.spearman(np.array(values), np.array(index))
        if np.isnan(rho):
            part = Part("first - last item does not vary", NOT_SHOWN, 1.0)
        else:
            p = p_two / 2 if rho < 0 else 1 - p_two / 2
            text = f"Spearman(single value, first - last item) = {rho:.2f} (one-sided p = {p:.2g})"
            verdict = HOLDS if p < SIGNIFICANCE else (CONTRADICTED if 1 - p < SIGNIFICANCE else NOT_SHOWN)
            part = Part(text, verdict, p)
        return combine([part], "one-sided Spearman rank correlation over (value, trial) pairs",
                       _trials(table, list(profiles_by_value)))
    return check


def primacy_ordered(profiles: Sequence[str], recency: bool = False) -> Callable:
    """Adjacent profiles of ``profiles`` show strictly more primacy (or recency) in turn: each
    pair by a one-sided two-sample t-test of first - last (last - first)."""

    def check(table):
        if (gap := _gap(table, profiles)) is not None:
            return gap
        sign = -1.0 if recency else 1.0
        index = "last - first" if recency else "first - last"
        values = {p: sign * _primacy(table, p) for p in profiles}
        parts = [greater(values[b], values[a], f"{index}, {b} vs {a}")
                 for a, b in zip(profiles, profiles[1:])]
        return combine(parts, TWO_SAMPLE + " per adjacent pair", _trials(table, profiles))
    return check


# --------------------------------------------------------------------------- the claims

_P100 = "one-sided t-test, N_trial = 100"
_TWO = "two-sample t-test, N_trial = 100"

SERIAL_POSITION_CLAIMS = (
    Claim("after the 7th item the conventional network has lost item 1 and keeps item 7",
          f"Fig. 2d: item 1 NS, p = 1.00; item 7 p = 1.67e-160 ({_P100})",
          "item 1 NS and item 7 above chance (per-item one-sided t-test vs 1/N after presentation 7)",
          after_seventh("conventional", first_kept=False, seventh_kept=True)),
    Claim("after the 7th item the stable network keeps item 1 and has not learned item 7",
          f"Fig. 2g: item 1 p = 1.59e-109; item 7 NS, p = 1.00 ({_P100})",
          "item 1 above chance and item 7 NS (per-item one-sided t-test vs 1/N after presentation 7)",
          after_seventh("stable", first_kept=True, seventh_kept=False)),
    Claim("after the 7th item the hybrid keeps both item 1 and item 7",
          f"Fig. 2j: item 1 p = 1.65e-67; item 7 p = 6.18e-101 ({_P100})",
          "items 1 and 7 above chance (per-item one-sided t-test vs 1/N after presentation 7)",
          after_seventh("hybrid", first_kept=True, seventh_kept=True)),
    Claim("the conventional network shows recency: the last six items above chance, the others not",
          f"Fig. 2e: last six items p < 1.00e-4, the others NS, p = 1.00 ({_P100})",
          "each of the last 60% of the items above chance and each other item NS (per-item "
          "one-sided t-test vs 1/N after the last presentation)",
          position_effect("conventional", kept="last", kept_fraction=0.6)),
    Claim("the conventional network memorizes about six of ten items",
          "Fig. 2f: up to six of ten memorized (mean over 100 trials)",
          "mean memorized count within 0.6 N +- 1; contradicted when a one-sided t-test puts it "
          "significantly beyond that band",
          about_memorized("conventional", 0.6)),
    Claim("the stable network shows primacy: the first three items above chance, the others not",
          f"Fig. 2h: first three items p < 2.23e-308, the others NS, p > 0.08 ({_P100})",
          "each of the first 30% of the items above chance and each other item NS (per-item "
          "one-sided t-test vs 1/N after the last presentation)",
          position_effect("stable", kept="first", kept_fraction=0.3)),
    Claim("the stable network memorizes about four of ten items",
          "Fig. 2i: about four of ten memorized (mean over 100 trials)",
          "mean memorized count within 0.4 N +- 1; contradicted when a one-sided t-test puts it "
          "significantly beyond that band",
          about_memorized("stable", 0.4)),
    Claim("the hybrid keeps every item above chance, in a U-shaped curve",
          f"Fig. 2k: every item p < 2.23e-308 ({_P100}); serial position effect",
          "every item above chance (per-item one-sided t-test vs 1/N) and both the first and the "
          "last item above the mean of the middle third (one-sided paired t-tests)",
          all_above_chance("hybrid", u_shaped=True)),
    Claim("the hybrid's memorized count equals the number of items trained, after every presentation",
          "Fig. 2l: memorized = trained at every length (mean over 100 trials)",
          "in every trial, after every presentation, every item trained so far memorized (label-"
          "shuffle test); and every item above chance at the end",
          memorizes_every_item("hybrid", after_every_presentation=True)),
)

SEQUENCE_LENGTH_CLAIMS = (
    Claim("with 30 items the hybrid keeps every item, its lowest included, above chance",
          "Fig. 3b top: all 30 items memorized; the lowest well above chance",
          "every item above chance after the last presentation (per-item one-sided t-test vs 1/N)",
          all_above_chance("hybrid")),
    Claim("with 30 items the conventional network forgets the early items",
          "Fig. 3b bottom: catastrophic forgetting of early items",
          "each of the first 10% of the items NS (per-item one-sided t-test vs 1/N)",
          early_items_lost("conventional", 0.1)),
    Claim("the hybrid memorizes more of 30 items than the conventional network",
          f"Fig. 3c: p = 3.70e-63 ({_TWO})",
          "memorized count hybrid > conventional after the last presentation (one-sided two-sample t-test)",
          more_memorized("hybrid", "conventional")),
    Claim("the conventional network's memorized count converges as the sequence lengthens",
          f"Fig. 3c: NS, p = 0.16 ({_TWO})",
          "conventional memorized count after 2N/3 and after N items not different (two-sided "
          "two-sample t-test, claimed NS)",
          count_converges("conventional")),
    Claim("the hybrid's average performance falls as items are added",
          "Fig. 3d: average performance decreases with the items trained",
          "average over the trained items after N/3 items > after N items (one-sided paired t-test)",
          average_falls("hybrid")),
    Claim("the hybrid's gross memory is higher than the conventional network's",
          f"Fig. 3e: p = 2.03e-57 ({_TWO})",
          "sum of the final item performances hybrid > conventional (one-sided two-sample t-test)",
          compare_final("hybrid", "conventional", "gross memory", lambda row: float(row.sum()))),
    Claim("the hybrid's gross memory levels off",
          "Fig. 3e: gross memory converges asymptotically beyond a number of items",
          "gain of the gross memory over the first third of the sequence > over the last third "
          "(one-sided paired t-test)",
          gross_memory_saturates("hybrid")),
)

REPETITION_CLAIMS = (
    Claim("the conventional network's lowest item does not improve with repetition",
          "Fig. 4c left: performance does not change significantly with repetition",
          "rise of the lowest item performance from the first to the last pass NS (one-sided t-test)",
          lowest_rises("conventional", claimed=False)),
    Claim("the hybrid's lowest item improves with repetition",
          "Fig. 4c right, 4d: the lowest performance rises over the repetitions",
          "rise of the lowest item performance from the first to the last pass > 0 (one-sided t-test)",
          lowest_rises("hybrid", claimed=True)),
    Claim("the hybrid's lowest item improves more than the conventional network's",
          f"Fig. 4d: p = 7.32e-91 ({_TWO})",
          "rise of the lowest item hybrid > conventional (one-sided two-sample t-test)",
          lowest_rises_more("hybrid", "conventional")),
    Claim("after the repetitions the hybrid's highest-minus-lowest performance is smaller",
          f"Supp. Fig. 4c: p = 2.65e-144 ({_TWO})",
          "highest - lowest item after the last pass conventional > hybrid (one-sided two-sample t-test)",
          smaller_range("hybrid", "conventional")),
)

POISONING_CLAIMS = (
    Claim("after the poisoned pass every conventional item is at chance",
          f"Fig. 4f: conventional NS, p > 0.14 ({_P100})",
          "every item NS (per-item one-sided t-test vs 1/N after the poisoned pass)",
          none_above_chance("conventional")),
    Claim("after the poisoned pass every hybrid item stays above chance",
          f"Fig. 4f: hybrid p < 2.23e-308 ({_P100})",
          "every item above chance (per-item one-sided t-test vs 1/N after the poisoned pass)",
          all_above_chance("hybrid")),
    Claim("after poisoning the hybrid's average performance is higher",
          f"Fig. 4g: p = 7.52e-48 ({_TWO})",
          "mean final item performance hybrid > conventional (one-sided two-sample t-test)",
          compare_final("hybrid", "conventional", "average performance", lambda row: float(row.mean()))),
    Claim("after poisoning the hybrid memorizes more items",
          f"Fig. 4h: p = 2.32e-38 ({_TWO})",
          "memorized count hybrid > conventional (one-sided two-sample t-test)",
          more_memorized("hybrid", "conventional")),
)

FREQUENCY_CLAIMS = (
    Claim("the conventional network's performance follows order (last presentation) more than the hybrid's",
          f"Fig. 5c left: p = 2.29e-21 ({_TWO}); Fig. 5b example r(order) 0.82 vs 0.10",
          "per-trial Spearman(final performance, position of the item's last presentation) "
          "conventional > hybrid (one-sided two-sample t-test)",
          correlates_more("conventional", "hybrid", "last_position", "last presentation")),
    Claim("the hybrid's performance follows presentation frequency more than the conventional's",
          f"Fig. 5c right: p = 2.51e-56 ({_TWO}); Fig. 5b example r(frequency) 0.92 vs 0.25",
          "per-trial Spearman(final performance, frequency) hybrid > conventional (one-sided "
          "two-sample t-test)",
          correlates_more("hybrid", "conventional", "frequency", "frequency")),
    Claim("the hybrid's performance-frequency correlation is significant in most trials",
          "Fig. 5c right: significant in the hybrid",
          "Spearman(performance, frequency) > 0 with p < 0.05 in more than half of the trials",
          frequency_significant("hybrid", most=True)),
    Claim("the conventional network's performance-frequency correlation is significant in no trial",
          "Fig. 5c right: none of the conventional trials significant",
          "no trial with Spearman(performance, frequency) > 0 at p < 0.05; contradicted when the "
          "count exceeds the 5% false-positive rate significantly (exact binomial test)",
          frequency_significant("conventional", most=False)),
)

_SINGLE = [f"constant:{v}" for v in (0.3, 0.5, 0.72, 0.8, 0.88, 0.9, 1.0)]

SINGLE_VALUE_CLAIMS = (
    Claim("a single value of 0.3 gives primacy and 1.0 recency",
          "Supp. Fig. 2a: curves from primacy (0.3) to recency (1.0)",
          "first - last item > 0 for 0.3 and last - first > 0 for 1.0 (one-sided t-tests)",
          ends_shape("constant:0.3", "constant:1.0")),
    Claim("raising the single value moves the curve from primacy toward recency",
          "Supp. Fig. 2a: curves for 0.3, 0.5, 0.8, 0.9, 1.0 go from primacy to recency",
          "Spearman correlation between the single value and each trial's first - last item "
          "performance negative at p < 0.05 (one-sided), over all seven values",
          primacy_trend({name: float(name.split(":")[1]) for name in _SINGLE})),
    Claim("0.72, 0.8 and 0.88 give different profiles",
          "Supp. Fig. 2b: 0.72 NS p > 0.34 / p < 2.23e-308; 0.88 NS p = 0.10 / p < 0.01 (one-sided "
          "t-test, N_trial = 50)",
          "first - last item 0.72 > 0.8 > 0.88 (one-sided two-sample t-tests, each adjacent pair)",
          primacy_ordered(["constant:0.88", "constant:0.8", "constant:0.72"])),
    Claim("a single value of 0.8 memorizes all ten items",
          "Supp. Fig. 3a: all ten memorized, p < 0.01 per item (one-sided t-test, N_trial = 50)",
          "every item memorized in every trial and above chance (per-item one-sided t-test)",
          memorizes_every_item("constant:0.8")),
)

BIASED_CLAIMS = (
    Claim("the uniform (hybrid) profile memorizes all ten items",
          "Supp. Fig. 3a: all ten memorized, p < 0.01 per item (one-sided t-test, N_trial = 50)",
          "every item memorized in every trial and above chance (per-item one-sided t-test)",
          memorizes_every_item("hybrid")),
    Claim("a stronger bias toward stable synapses gives a stronger primacy",
          "Supp. Fig. 3b left: the degree of bias orders the primacy",
          "first - last item: uniform < biased-stable a = 0.5 < a = 0.1 (one-sided two-sample "
          "t-tests, each adjacent pair)",
          primacy_ordered(["hybrid", "biased-stable:0.5", "biased-stable:0.1"])),
    Claim("a stronger bias toward flexible synapses gives a stronger recency",
          "Supp. Fig. 3b right: the degree of bias orders the recency",
          "last - first item: uniform < biased-flexible a = 0.5 < a = 0.1 (one-sided two-sample "
          "t-tests, each adjacent pair)",
          primacy_ordered(["hybrid", "biased-flexible:0.5", "biased-flexible:0.1"], recency=True)),
)
