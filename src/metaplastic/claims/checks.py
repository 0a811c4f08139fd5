"""The checks: what each claim measures on a records table, as parts judged by :mod:`.rules`.

Every check is built by :func:`~.judging.judged`, which does the bookkeeping once (why a table
cannot be judged, the trials, combining the parts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from metaplastic import stats, tables
from metaplastic.claims.judging import (
    AT_CHANCE,
    FIG4_PASS,
    PAIRED,
    PER_ITEM,
    SUPP4_PASS,
    TWO_SAMPLE,
    Check,
    at_lengths,
    first_items,
    items_above,
    items_at_chance,
    judged,
    last_items,
    middle_items,
    pass_end,
)
from metaplastic.claims.rules import (
    CHANCE_MARGIN,
    CONTRADICTED,
    COUNT_MARGIN,
    HOLDS,
    NOT_SHOWN,
    SIGNIFICANCE,
    Part,
    about,
    above,
    any_of,
    at_chance,
    every_trial,
    greater,
    most_trials,
    no_trial,
    unchanged,
)

# --------------------------------------------------------------------------- items vs chance


def after_presentation(profile: str, presentation: int, kept: dict[int, bool]) -> Check:
    """Items against chance right after a presentation: ``kept[i]`` above chance, else at chance."""

    @judged([profile], f"{PER_ITEM}; {AT_CHANCE}", min_items=max(presentation, max(kept)))
    def measure(table):
        perf, chance = tables.performance_at(table, profile, presentation), tables.chance(table)
        return [(above if is_kept else at_chance)(perf[i].to_numpy(), chance, f"item {i}")
                for i, is_kept in kept.items()]
    return measure


def first_item_learned(profiles: Sequence[str]) -> Check:
    """Fig. 2: right after the first presentation, item 1 above chance in every network."""

    @judged(profiles, PER_ITEM)
    def measure(table):
        chance = tables.chance(table)
        return [above(tables.performance_at(table, p, 1)[1].to_numpy(), chance, f"{p} item 1")
                for p in profiles]
    return measure


def position_effect(profile: str, kept: str, kept_fraction: float) -> Check:
    """Fig. 2e, 2h: after the whole sequence the ``kept`` end ("last": recency, "first":
    primacy) is above chance item by item, every other item at chance."""

    @judged([profile], f"{PER_ITEM}; {AT_CHANCE}")
    def measure(table):
        perf, chance, n = tables.performance_at(table, profile), tables.chance(table), tables.n_items(table)
        kept_items = (last_items if kept == "last" else first_items)(n, kept_fraction)
        lost = [i for i in range(1, n + 1) if i not in kept_items]
        return items_above(perf, kept_items, chance, profile) + items_at_chance(perf, lost, chance, profile)
    return measure


def all_above_chance(profile: str, presentation: int | None = None) -> Check:
    """Every item above chance after the whole sequence (or after ``presentation``)."""

    @judged([profile], PER_ITEM)
    def measure(table):
        perf, chance, n = (tables.performance_at(table, profile, presentation), tables.chance(table),
                           tables.n_items(table))
        return items_above(perf, range(1, n + 1), chance, profile)
    return measure


def all_at_chance(profile: str) -> Check:
    """Every item at chance after the whole sequence (Fig. 4f, conventional)."""

    @judged([profile], AT_CHANCE)
    def measure(table):
        perf, chance, n = tables.performance_at(table, profile), tables.chance(table), tables.n_items(table)
        return items_at_chance(perf, range(1, n + 1), chance, profile)
    return measure


def early_items_lost(profile: str, fraction: float) -> Check:
    """Fig. 3b bottom: the first items are at chance after the whole sequence."""

    @judged([profile], AT_CHANCE)
    def measure(table):
        perf, chance, n = tables.performance_at(table, profile), tables.chance(table), tables.n_items(table)
        return items_at_chance(perf, first_items(n, fraction), chance, profile)
    return measure


def u_shaped(profile: str) -> Check:
    """The serial position effect: the first and the last item above the mean of the middle
    third (paired over trials)."""

    @judged([profile], PAIRED, min_items=6)
    def measure(table):
        perf, n = tables.performance_at(table, profile), tables.n_items(table)
        middle = perf[middle_items(n)].mean(axis=1).to_numpy()
        return [greater(perf[1].to_numpy(), middle, f"{profile} first item vs middle items", paired=True),
                greater(perf[n].to_numpy(), middle, f"{profile} last item vs middle items", paired=True)]
    return measure


def some_at_chance_some_above(profile: str) -> Check:
    """Supp. Fig. 2b: a partial curve: at least one item above chance and at least one at chance."""

    @judged([profile], f"{PER_ITEM}; {AT_CHANCE}")
    def measure(table):
        perf, chance, n = tables.performance_at(table, profile), tables.chance(table), tables.n_items(table)
        above_parts = items_above(perf, range(1, n + 1), chance, profile)
        chance_parts = items_at_chance(perf, range(1, n + 1), chance, profile)
        return [any_of(above_parts, f"{profile}: some item above chance"),
                any_of(chance_parts, f"{profile}: some item at chance")]
    return measure


# --------------------------------------------------------------------------- memorized counts


def about_memorized(profile: str, fraction: float) -> Check:
    """Fig. 2f, 2i: about ``fraction`` * N items memorized after the whole sequence (+-1)."""

    @judged([profile], "mean memorized count significantly within target +- 1 (two one-sided t-tests)")
    def measure(table):
        n = tables.n_items(table)
        return [about(tables.memorized_counts(table, profile), fraction * n, COUNT_MARGIN,
                      f"{profile} memorizes")]
    return measure


def count_near(profile: str, target: float) -> Check:
    @judged([profile], "mean memorized count significantly within target +- 1 (two one-sided t-tests)")
    def measure(table):
        return [about(tables.memorized_counts(table, profile), target, COUNT_MARGIN, f"{profile} memorizes")]
    return measure


def memorizes_every_item(profile: str, after_every_presentation: bool = False) -> Check:
    """Every item memorized (label-shuffle test) in every trial: after the last presentation, or
    (Fig. 2l) after every presentation counting the items trained so far; plus, after the last
    presentation, every item above chance by the per-item t-test."""

    @judged([profile], "memorized (p < 0.05 under label shuffles) in every trial; " + PER_ITEM)
    def measure(table):
        n = tables.n_items(table)
        if after_every_presentation:
            counts = tables.per_presentation(table, profile, "memorized", "sum")
            shortfall = (counts.index.to_numpy()[:, None] - counts.to_numpy()).sum(axis=0)
            label = f"{profile} memorizes every item trained so far after each of the {n} presentations"
        else:
            shortfall = n - tables.memorized_counts(table, profile)
            label = f"{profile} memorizes all {n} items"
        perf, chance = tables.performance_at(table, profile), tables.chance(table)
        return [every_trial(shortfall, label)] + items_above(perf, range(1, n + 1), chance, profile)
    return measure


def more_memorized(better: str, worse: str) -> Check:
    @judged([better, worse], TWO_SAMPLE)
    def measure(table):
        a, b = tables.memorized_counts(table, better), tables.memorized_counts(table, worse)
        return [greater(a, b, f"memorized items, {better} vs {worse}")]
    return measure


def count_saturates(profile: str) -> Check:
    """Figs. 2f, 2i, 3c: the memorized count stops growing: after 2N/3 and after N items it is the
    same within +-1 item (paired over trials: the same trials read twice)."""

    @judged([profile], f"equivalence within +-{COUNT_MARGIN:g} item (two one-sided paired t-tests); "
                       "contradicted when significantly beyond it", min_items=6)
    def measure(table):
        n = tables.n_items(table)
        early, late = at_lengths(table, profile, "memorized", "sum", (round(2 * n / 3), n))
        return [unchanged(late, early, COUNT_MARGIN,
                          f"{profile} memorized after {n} vs after {round(2 * n / 3)} items")]
    return measure


# --------------------------------------------------------------------------- Fig. 3: capacity


def compare_final(better: str, worse: str, what: str, fn: Callable[[pd.Series], float]) -> Check:
    """``fn`` of each trial's final performances, ``better`` > ``worse``."""

    @judged([better, worse], TWO_SAMPLE)
    def measure(table):
        a, b = (tables.performance_at(table, p).apply(fn, axis=1).to_numpy() for p in (better, worse))
        return [greater(a, b, f"{what}, {better} vs {worse}")]
    return measure


def average_falls(profile: str) -> Check:
    """Fig. 3d: the average performance over the items trained so far is lower after all N items
    than after N/3."""

    @judged([profile], PAIRED, min_items=6)
    def measure(table):
        n = tables.n_items(table)
        early, late = at_lengths(table, profile, "performance", "mean", (round(n / 3), n))
        return [greater(early, late, f"{profile} average performance after {round(n / 3)} vs {n} items",
                        paired=True)]
    return measure


def gross_memory_rises(profiles: Sequence[str]) -> Check:
    """Fig. 3e: the gross memory after N items above after N/3, in each network."""

    @judged(profiles, PAIRED, min_items=6)
    def measure(table):
        n = tables.n_items(table)
        parts = []
        for p in profiles:
            early, late = at_lengths(table, p, "performance", "sum", (round(n / 3), n))
            parts.append(greater(late, early, f"{p} gross memory after {n} vs {round(n / 3)} items",
                                 paired=True))
        return parts
    return measure


def gross_memory_converges(profile: str) -> Check:
    """Fig. 3e: "converges asymptotically to a constant": over the last third of the sequence the
    gross memory gains, per item added, significantly less than +-chance x CHANCE_MARGIN (as if
    each added item were learned below that margin), by two one-sided paired t-tests."""

    @judged([profile], "equivalence of the gain per item to 0 (two one-sided t-tests); contradicted "
                       "when significantly beyond it", min_items=6)
    def measure(table):
        n = tables.n_items(table)
        start = n - round(n / 3)
        before, after = at_lengths(table, profile, "performance", "sum", (start, n))
        gain = (after - before) / (n - start)
        return [unchanged(gain, np.zeros_like(gain), tables.chance(table) * CHANCE_MARGIN,
                          f"{profile} gross-memory gain per item over items {start}-{n}")]
    return measure


# --------------------------------------------------------------------------- Fig. 4, Supp. Fig. 4


def _lowest(table, profile, number) -> np.ndarray:
    """Per trial: the lowest item performance after pass ``number``."""
    return tables.performance_at(table, profile, pass_end(table, number)).min(axis=1).to_numpy()


def lowest_rises(profile: str) -> Check:
    """Fig. 4c-d: the lowest item after the 9th pass above after the 1st (paired)."""

    @judged([profile], PAIRED, passes=2)
    def measure(table):
        return [greater(_lowest(table, profile, FIG4_PASS), _lowest(table, profile, 1),
                        f"{profile} lowest item after pass {FIG4_PASS} vs pass 1", paired=True)]
    return measure


def lowest_unchanged(profile: str) -> Check:
    """Fig. 4c left: the conventional lowest item does not change from the 1st to the 9th pass:
    the same within +-chance x CHANCE_MARGIN."""

    @judged([profile], "equivalence within +-chance/2 (two one-sided paired t-tests); contradicted "
                       "when significantly beyond it", passes=2)
    def measure(table):
        margin = tables.chance(table) * CHANCE_MARGIN
        return [unchanged(_lowest(table, profile, FIG4_PASS), _lowest(table, profile, 1), margin,
                          f"{profile} lowest item after pass {FIG4_PASS} vs pass 1")]
    return measure


def lowest_rises_more(better: str, worse: str) -> Check:
    @judged([better, worse], TWO_SAMPLE, passes=2)
    def measure(table):
        rises = [_lowest(table, p, FIG4_PASS) - _lowest(table, p, 1) for p in (better, worse)]
        return [greater(rises[0], rises[1], f"rise of the lowest item, {better} vs {worse}")]
    return measure


def lowest_rises_with_each_pass(profile: str) -> Check:
    """Fig. 4d: the lowest item rises over the repetitions: per trial, Spearman between the pass
    (1 to 9) and the lowest item's performance after it; its mean over trials above 0."""

    @judged([profile], "one-sided one-sample t-test of the per-trial Spearman rho against 0", passes=3)
    def measure(table):
        passes = range(1, min(FIG4_PASS, len(tables.pass_ends(table))) + 1)
        lowest = np.stack([_lowest(table, profile, k) for k in passes], axis=1)
        rhos = [_rho(np.arange(len(passes)), row) for row in lowest]
        return [above(np.array(rhos), 0.0, f"{profile} Spearman(pass, lowest item)")]
    return measure


def _rho(x, y) -> float:
    rho = stats.spearman(np.asarray(x, dtype=float), np.asarray(y, dtype=float))[0]
    return 0.0 if np.isnan(rho) else float(rho)   # constant performance: no rank relation


def average_rises(profile: str) -> Check:
    """Fig. 4c right: the average over the items after the 9th pass above after the 1st."""

    @judged([profile], PAIRED, passes=2)
    def measure(table):
        mean = [tables.performance_at(table, profile, pass_end(table, k)).mean(axis=1).to_numpy()
                for k in (FIG4_PASS, 1)]
        return [greater(*mean, f"{profile} average item after pass {FIG4_PASS} vs pass 1", paired=True)]
    return measure


def middle_rises_most(profile: str) -> Check:
    """Fig. 4c: "particularly for items in the middle": from the 1st to the 9th pass the middle
    third rises more than the first and last items (paired)."""

    @judged([profile], PAIRED, min_items=6, passes=2)
    def measure(table):
        n = tables.n_items(table)
        first, last = (tables.performance_at(table, profile, pass_end(table, k)) for k in (1, FIG4_PASS))
        rise = last - first
        middle = rise[middle_items(n)].mean(axis=1).to_numpy()
        ends = rise[[1, n]].mean(axis=1).to_numpy()
        return [greater(middle, ends, f"{profile} rise of the middle items vs the first and last",
                        paired=True)]
    return measure


def _range(row: pd.Series) -> float:
    return float(row.max() - row.min())


def smaller_range(better: str, worse: str) -> Check:
    """Supp. Fig. 4c: highest minus lowest item after the 10th pass smaller in ``better``."""

    @judged([better, worse], TWO_SAMPLE, passes=2)
    def measure(table):
        at = pass_end(table, SUPP4_PASS)
        a, b = (tables.performance_at(table, p, at).apply(_range, axis=1).to_numpy() for p in (better, worse))
        return [greater(b, a, f"highest - lowest after pass {SUPP4_PASS}, {worse} vs {better}")]
    return measure


def range_narrows(profile: str) -> Check:
    """Supp. Fig. 4: the highest minus lowest item smaller after the 10th pass than after the 1st."""

    @judged([profile], PAIRED, passes=2)
    def measure(table):
        first, last = (tables.performance_at(table, profile, pass_end(table, k)).apply(_range, axis=1)
                       .to_numpy() for k in (1, SUPP4_PASS))
        return [greater(first, last, f"{profile} highest - lowest after pass 1 vs pass {SUPP4_PASS}",
                        paired=True)]
    return measure


# --------------------------------------------------------------------------- Fig. 4e-h: poisoning


def poisoning_costs_less(better: str, worse: str) -> Check:
    """Fig. 4f-g: the poisoned pass costs ``better`` less average performance than ``worse``
    (each trial's average after the last clean pass minus after the poisoned pass)."""

    @judged([better, worse], TWO_SAMPLE, passes=2)
    def measure(table):
        ends = tables.pass_ends(table)
        drops = [tables.performance_at(table, p, ends[-2]).mean(axis=1).to_numpy()
                 - tables.performance_at(table, p, ends[-1]).mean(axis=1).to_numpy() for p in (better, worse)]
        return [greater(drops[1], drops[0], f"average lost to the poisoned pass, {worse} vs {better}")]
    return measure


# --------------------------------------------------------------------------- Fig. 5: frequency


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


def correlates_more(better: str, worse: str, column: str, what: str) -> Check:
    @judged([better, worse], TWO_SAMPLE)
    def measure(table):
        a, b = _correlations(table, better, column)[0], _correlations(table, worse, column)[0]
        return [greater(a, b, f"Spearman(performance, {what}), {better} vs {worse}")]
    return measure


def follows_more(profile: str, column: str, other: str, what: str, other_what: str) -> Check:
    """Fig. 5c, within one network: its performance correlates more with ``column`` than with
    ``other`` (paired over trials)."""

    @judged([profile], PAIRED)
    def measure(table):
        a, b = _correlations(table, profile, column)[0], _correlations(table, profile, other)[0]
        return [greater(a, b, f"{profile} Spearman with {what} vs with {other_what}", paired=True)]
    return measure


def frequency_significant(profile: str, most: bool) -> Check:
    """Fig. 5c right: a trial's performance-frequency correlation significant: positive with
    p < 0.05 in most trials (``most=True``), or of either sign in none."""
    rule = ("more than half of the trials (exact binomial test of a rate below 1/2)" if most
            else "no trial, either sign (exact binomial test against the 5% false-positive rate)")

    @judged([profile], f"Spearman p < 0.05 per trial; {rule}")
    def measure(table):
        rho, p = _correlations(table, profile, "frequency")
        if most:
            return [most_trials((rho > 0) & (p < SIGNIFICANCE), f"{profile} trials with a significant "
                                "positive Spearman(performance, frequency)")]
        return [no_trial(p < SIGNIFICANCE, f"{profile} trials with a significant Spearman(performance, "
                                           "frequency), either sign")]
    return measure


# --------------------------------------------------------------------------- Supp. Figs 2-3


def _primacy(table, profile) -> np.ndarray:
    """First minus last item performance per trial: > 0 is primacy, < 0 recency."""
    return tables.performance_at(table, profile).apply(lambda row: float(row.iloc[0] - row.iloc[-1]),
                                                       axis=1).to_numpy()


def ends_shape(primacy_profile: str, recency_profile: str) -> Check:
    """Supp. Fig. 2a: the first profile shows primacy (first > last item, paired), the second
    recency (last > first)."""

    @judged([primacy_profile, recency_profile], "one-sided one-sample t-tests of first - last item")
    def measure(table):
        return [above(_primacy(table, primacy_profile), 0.0, f"{primacy_profile} first - last item"),
                above(-_primacy(table, recency_profile), 0.0, f"{recency_profile} last - first item")]
    return measure


def primacy_trend(profiles_by_value: dict[str, float]) -> Check:
    """Supp. Fig. 2a: the primacy index (first - last item) falls as the single value rises:
    Spearman over every (value, trial) pair, negative and significant (one-sided)."""

    @judged(list(profiles_by_value), "one-sided Spearman rank correlation over (value, trial) pairs")
    def measure(table):
        values, index = [], []
        for profile, value in profiles_by_value.items():
            primacy = _primacy(table, profile)
            values += [value] * len(primacy)
            index += list(primacy)
        rho, p_two = stats.spearman(np.array(values), np.array(index))
        if np.isnan(rho):
            return [Part("first - last item does not vary", NOT_SHOWN)]
        p = p_two / 2 if rho < 0 else 1 - p_two / 2
        text = f"Spearman(single value, first - last item) = {rho:.2f} (one-sided p = {p:.2g})"
        verdict = HOLDS if p < SIGNIFICANCE else (CONTRADICTED if 1 - p < SIGNIFICANCE else NOT_SHOWN)
        return [Part(text, verdict, p)]
    return measure


def primacy_ordered(profiles: Sequence[str], recency: bool = False) -> Check:
    """Adjacent profiles of ``profiles`` show more primacy (or recency) in turn: first - last
    (last - first) compared pair by pair."""

    @judged(profiles, TWO_SAMPLE + " per adjacent pair")
    def measure(table):
        sign = -1.0 if recency else 1.0
        index = "last - first" if recency else "first - last"
        values = {p: sign * _primacy(table, p) for p in profiles}
        return [greater(values[b], values[a], f"{index}, {b} vs {a}") for a, b in zip(profiles, profiles[1:])]
    return measure
