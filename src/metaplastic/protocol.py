"""Sequences of presentations and the task set of one presentation (protocol.md section 5).

A trial learns a sequence of N distinct two-digit classes (its *items*); a
protocol says in which order the items are presented. One presentation of
item k teaches "this is k" with all its training images (positives) and
"these are not k" with round(P / (N-1)) images of each other item
(negatives), each negative labelled with one of the other non-current
readouts, never its own, spread evenly over them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr


@dataclass(frozen=True)
class Presentation:
    """One presentation: which item (0-based index in the sequence) and its positives' label."""

    item: int
    label: int          # the readout the positives are trained to; == item unless poisoned
    repetition: int = 0

    @property
    def poisoned(self) -> bool:
        return self.label != self.item


def serial(n_items: int) -> list[Presentation]:
    """Each item once, in order (Fig. 2, 3)."""
    return [Presentation(k, k) for k in range(n_items)]


def repetition(n_items: int, times: int) -> list[Presentation]:
    """The same order presented ``times`` times in a row (Fig. 4a-d: 9 times)."""
    return [Presentation(k, k, r) for r in range(times) for k in range(n_items)]


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random permutation with no fixed point (rejection sampling; n >= 2)."""
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 items, got {n}")
    while True:
        permutation = rng.permutation(n)
        if not np.any(permutation == np.arange(n)):
            return permutation


def poisoning(n_items: int, times: int, rng: np.random.Generator) -> list[Presentation]:
    """``times`` clean repetitions, then one pass whose positives carry deranged labels (Fig. 4e-h)."""
    wrong = derangement(n_items, rng)
    return repetition(n_items, times) + [Presentation(k, int(wrong[k]), times) for k in range(n_items)]


def frequency(order: list[int] | np.ndarray) -> list[Presentation]:
    """Presentations in a given order of 1-based item numbers (Fig. 5)."""
    order = [int(k) for k in order]
    if min(order) < 1:
        raise ValueError("frequency profiles list 1-based item numbers")
    return [Presentation(k - 1, k - 1) for k in order]


def load_frequency_profiles(path: str | Path) -> list[list[int]]:
    """The published presentation orders: one row a profile, entries 1-based item numbers."""
    with open(path, newline="") as handle:
        return [[int(v) for v in row] for row in csv.reader(handle) if row]


def generate_frequency_profile(n_items: int, rng: np.random.Generator,
                               max_abs_correlation: float = 0.2) -> list[int]:
    """Item i presented i times, shuffled until order and frequency are weakly correlated.

    "Weakly" is measured as the Spearman correlation between each
    presentation's position and its item's frequency.
    """
    order = np.repeat(np.arange(1, n_items + 1), np.arange(1, n_items + 1))
    while True:
        rng.shuffle(order)
        rho = spearmanr(np.arange(len(order)), order).statistic
        if abs(rho) <= max_abs_correlation and set(order[-n_items:]) != {n_items}:
            return order.tolist()


# --------------------------------------------------------------------------- task sets


@dataclass(frozen=True)
class TaskSet:
    """The training examples of one presentation: (item, image row, label) triples."""

    items: np.ndarray     # which item of the sequence each example's image belongs to
    rows: np.ndarray      # row in that item's training features
    labels: np.ndarray    # the readout it is trained to

    def __len__(self) -> int:
        return len(self.labels)


def negatives_per_item(positives: int, n_items: int) -> int:
    return int(round(positives / (n_items - 1)))


def task_set(presentation: Presentation, n_items: int, positives: int,
             rng: np.random.Generator) -> TaskSet:
    """All ``positives`` images of the current item plus round(P/(N-1)) of each other item.

    Negatives of item j get labels from the readouts other than the current
    item and j itself, as evenly as possible (counts differ by at most one),
    in random order.
    """
    if n_items < 3:
        raise ValueError(f"a sequence needs at least 3 items (negatives need a readout that is "
                         f"neither theirs nor the current one), got {n_items}")
    current = presentation.item
    per_item = negatives_per_item(positives, n_items)
    if per_item > positives:
        raise ValueError(f"{per_item} negatives per item exceed the {positives} training images")
    items = [np.full(positives, current)]
    rows = [np.arange(positives)]
    labels = [np.full(positives, presentation.label)]
    for j in range(n_items):
        if j == current:
            continue
        allowed = np.array([r for r in range(n_items) if r not in (current, j)])
        items.append(np.full(per_item, j))
        rows.append(rng.choice(positives, size=per_item, replace=False))
        spread = allowed[(np.arange(per_item) + rng.integers(len(allowed))) % len(allowed)]
        labels.append(rng.permutation(spread))
    return TaskSet(np.concatenate(items), np.concatenate(rows), np.concatenate(labels))
