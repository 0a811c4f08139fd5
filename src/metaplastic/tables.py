"""Views of a records table that the claims, the figures and the summaries share.

A records table has one row per (trial, learner, presentation, item): the
item's performance and memorized-test result after that presentation
(presentation 0 is the test before any training). These helpers cut it the
ways the paper reads it; they compute no statistics.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def n_items(table: pd.DataFrame) -> int:
    return int(table["n_items"].iloc[0])


def chance(table: pd.DataFrame) -> float:
    """Chance performance, 1 / N_readouts (Methods 2.6)."""
    return 1.0 / n_items(table)


def learners(table: pd.DataFrame) -> list[str]:
    return list(table["learner"].unique())


def final_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The records after each trial's last presentation."""
    last = table.groupby("trial")["presentation"].transform("max")
    return table[table["presentation"] == last]


def column_at(table: pd.DataFrame, learner: str, column: str,
              presentation: int | None = None) -> pd.DataFrame:
    """trials x items of ``column`` after a presentation (default: each trial's last)."""
    rows = table[table.learner == learner]
    rows = final_rows(rows) if presentation is None else rows[rows.presentation == presentation]
    return rows.pivot(index="trial", columns="item", values=column).sort_index()


def performance_at(table: pd.DataFrame, learner: str, presentation: int | None = None) -> pd.DataFrame:
    return column_at(table, learner, "performance", presentation)


def memorized_at(table: pd.DataFrame, learner: str, presentation: int | None = None) -> pd.DataFrame:
    return column_at(table, learner, "memorized", presentation).astype(bool)


def memorized_counts(table: pd.DataFrame, learner: str, presentation: int | None = None) -> np.ndarray:
    """Memorized items per trial after a presentation (default: each trial's last)."""
    return memorized_at(table, learner, presentation).sum(axis=1).to_numpy(dtype=float)


def trained_so_far(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of a serial run restricted to the items trained so far (item <= presentation).

    Fig. 3 reads "n trained items" as the state after the n-th presentation,
    counting over the first n items (docs/protocol.md section 5).
    """
    return table[(table.presentation > 0) & (table.item <= table.presentation)]


def per_presentation(table: pd.DataFrame, learner: str, column: str, how: str) -> pd.DataFrame:
    """presentations x trials of ``how`` ("sum", "mean", "min") of ``column`` over the items trained
    so far: e.g. memorized count or gross memory after each presentation (Fig. 2f, 3c-e)."""
    rows = trained_so_far(table[table.learner == learner])
    return rows.groupby(["presentation", "trial"])[column].agg(how).astype(float).unstack("trial")


def pass_ends(table: pd.DataFrame) -> list[int]:
    """The presentations that end a pass over the sequence (repetition, poisoning)."""
    n, last = n_items(table), int(table["presentation"].max())
    return list(range(n, last + 1, n))


def final_performance(trial: pd.DataFrame) -> pd.Series:
    """One trial and learner: final performance by item."""
    last = trial[trial.presentation == trial.presentation.max()]
    return last.set_index("item")["performance"].sort_index()


def item_schedule(trial: pd.DataFrame) -> pd.DataFrame:
    """Per item of one trial: how often it was presented, and the positions (1-based) of its first
    and last presentations and their mean. The lab's "order" of an item is its last position
    (docs/frequency.md)."""
    shown = trial[trial.presentation > 0].drop_duplicates("presentation")
    by_item = shown.groupby("presented_item")["presentation"]
    return pd.DataFrame({"frequency": by_item.size(), "first_position": by_item.min(),
                         "last_position": by_item.max(), "mean_position": by_item.mean()})


def per_trial(table: pd.DataFrame, learner: str, fn) -> np.ndarray:
    """``fn(rows of one trial)`` for every trial of a learner, in trial order."""
    rows = table[table.learner == learner]
    return np.array([fn(group) for _, group in rows.groupby("trial")], dtype=float)
