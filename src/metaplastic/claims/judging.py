"""The bookkeeping every check shares: :func:`judged` (why a table cannot be judged, the trials,
combining the parts), the positions a claim names (first, last, middle items, the end of a
pass) and the tests' names as the report prints them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from metaplastic import tables
from metaplastic.claims.rules import CHANCE_MARGIN, Measured, Part, above, at_chance, combine, inconclusive

Check = Callable[[pd.DataFrame], Measured]

PER_ITEM = "one-sided one-sample t-test per item vs chance (1/N)"
AT_CHANCE = (f"claimed at chance: mean significantly below chance x {1 + CHANCE_MARGIN:g} (one-sided), "
             "contradicted when significantly above chance")
TWO_SAMPLE = "two-sided two-sample t-test, direction checked"
PAIRED = "two-sided paired t-test over trials, direction checked"

#: Fig. 4 (Hebb repetition, lowest item) is read after the 9th pass; Supp. Fig. 4c after the 10th.
FIG4_PASS, SUPP4_PASS = 9, 10


def judged(learners: Sequence[str], test: str, min_items: int = 3, passes: int = 1):
    """Decorate ``measure(table) -> list[Part]`` into a check of ``learners``' records."""

    def wrap(measure: Callable[[pd.DataFrame], list[Part]]) -> Check:
        def check(table: pd.DataFrame) -> Measured:
            absent = [p for p in learners if p not in set(table["learner"])]
            if absent:
                return inconclusive(f"profile(s) {', '.join(absent)} not in this run")
            if tables.n_items(table) < min_items:
                return inconclusive(f"the statement needs at least {min_items} items, "
                                    f"the run has {tables.n_items(table)}")
            if len(tables.pass_ends(table)) < passes:
                return inconclusive(f"the statement needs at least {passes} passes, "
                                    f"the run has {len(tables.pass_ends(table))}")
            trials = min(table[table.learner == p]["trial"].nunique() for p in learners)
            return combine(measure(table), test, trials)
        return check
    return wrap


# --------------------------------------------------------------------------- positions


def first_items(n: int, fraction: float) -> list[int]:
    """The first round(fraction * n) items (at least one), 1-based."""
    return list(range(1, max(1, round(fraction * n)) + 1))


def last_items(n: int, fraction: float) -> list[int]:
    return list(range(n - max(1, round(fraction * n)) + 1, n + 1))


def middle_items(n: int) -> list[int]:
    """The central third of the positions (items 4-7 of 10): the bottom of a U."""
    return list(range(n // 3 + 1, n - n // 3 + 1))


def items_above(perf: pd.DataFrame, items, chance, who) -> list[Part]:
    return [above(perf[i].to_numpy(), chance, f"{who} item {i}") for i in items]


def items_at_chance(perf: pd.DataFrame, items, chance, who) -> list[Part]:
    return [at_chance(perf[i].to_numpy(), chance, f"{who} item {i}") for i in items]


def pass_end(table: pd.DataFrame, number: int) -> int:
    """The presentation ending pass ``number`` (1-based), or the last pass if there are fewer."""
    ends = tables.pass_ends(table)
    return ends[min(number, len(ends)) - 1]


def at_lengths(table, profile, column, how, lengths):
    """Per-trial values of ``how``(``column``) over the items trained so far, at given lengths."""
    grid = tables.per_presentation(table, profile, column, how)
    return [grid.loc[length].to_numpy() for length in lengths]
