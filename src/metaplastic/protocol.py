"""Sequences of presentations and the task set of one presentation (docs/protocol.md section 5).

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


FREQUENCY_SCHEDULES_FILE = "frequency_profiles.csv"
"""The authors' published schedules (Fig. 5), looked up by the caller in the data folder."""


def load_frequency_profiles(path: str | Path) -> list[list[int]]:
    """The published presentation orders: one row a profile, entries 1-based item numbers.

    Blank lines are skipped; row numbers in errors count the non-blank rows
    from 1 (as ``published_frequency_schedules`` does) and also give the line.
    A malformed file raises ``ValueError`` naming the file, the row and what
    is wrong.
    """
    profiles: list[list[int]] = []
    try:
        with open(path, newline="") as handle:
            reader = csv.reader(handle)
            for fields in reader:
                if not fields or all(not f.strip() for f in fields):
                    continue
                row = len(profiles) + 1
                where = f"{path}: row {row} (line {reader.line_num})"
                order = []
                for column, field in enumerate(fields, 1):
                    try:
                        value = int(field)
                    except ValueError:
                        raise ValueError(f"{where}, entry {column}: {field!r} is not an integer "
                                         f"item number") from None
                    if value < 1:
                        raise ValueError(f"{where}, entry {column}: item number {value} is below 1 "
                                         f"(entries are 1-based item numbers)")
                    order.append(value)
                profiles.append(order)
    except csv.Error as error:
        raise ValueError(f"{path}: not a readable CSV file ({error})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text CSV file (undecodable bytes)") from None
    if not profiles:
        raise ValueError(f"{path}: empty file, no schedule rows")
    return profiles


def item_frequencies(order: list[int] | np.ndarray) -> dict[int, int]:
    """How many times each item of ``order`` is presented, keyed by item in ascending order.

    >>> item_frequencies([2, 1, 2, 3, 2])
    {1: 1, 2: 3, 3: 1}
    """
    items, counts = np.unique(np.asarray(order, dtype=int), return_counts=True)
    return {int(i): int(c) for i, c in zip(items, counts)}


def schedule_correlations(order: list[int] | np.ndarray) -> dict[str, float]:
    """Spearman correlation over the items between frequency and where they are presented.

    Keys: ``"first"``, ``"last"``, ``"mean"``: correlation of each item's
    frequency with the 1-based position of its first presentation, of its
    last presentation, and the mean position of its presentations (ties
    handled as scipy's ``spearmanr`` does). NaN when all frequencies are equal.

    >>> {k: round(v, 2) for k, v in schedule_correlations([2, 3, 3, 1, 3, 2]).items()}
    {'first': -0.5, 'last': 0.5, 'mean': -1.0}
    """
    order = np.asarray(order, dtype=int)
    frequencies = item_frequencies(order)
    items = np.array(list(frequencies))
    counts = np.array(list(frequencies.values()))
    position = np.arange(1, len(order) + 1)
    at = [position[order == i] for i in items]
    summary = {"first": [p[0] for p in at], "last": [p[-1] for p in at], "mean": [p.mean() for p in at]}
    if len(set(counts.tolist())) == 1:
        return {key: float("nan") for key in summary}
    return {key: float(spearmanr(counts, value).statistic) for key, value in summary.items()}


def published_frequency_schedules(profiles: list[list[int]], n_items: int) -> list[tuple[int, list[int]]]:
    """(1-based row number, order) of every profile in which item i is presented exactly i times.

    The paper (section 3.4) presents item i i times, i = 1..n_items; in the
    published file that holds for rows 1-17 with ``n_items=10``; rows 18-20
    give the items other frequencies and are left out.
    """
    wanted = {i: i for i in range(1, n_items + 1)}
    found = [(row, list(order)) for row, order in enumerate(profiles, 1)
             if item_frequencies(order) == wanted]
    if not found:
        seen = "; ".join(f"row {row}: " + " ".join(f"{i}:{c}" for i, c in item_frequencies(order).items())
                         for row, order in enumerate(profiles, 1))
        raise ValueError(f"no schedule presents item i exactly i times for i = 1..{n_items}; "
                         f"item:frequency by row: {seen or 'no rows'}")
    return found


def schedule_for_trial(schedules: list[tuple[int, list[int]]], trial: int) -> tuple[int, list[int]]:
    """The schedule of trial ``trial`` (0-based): ``schedules[trial mod K]``, cycling through K.

    >>> schedule_for_trial([(1, [1]), (2, [1])], 3)
    (2, [1])
    """
    if not schedules:
        raise ValueError("no schedules to choose from")
    if trial < 0:
        raise ValueError(f"trial must be >= 0, got {trial}")
    return schedules[trial % len(schedules)]


def _min_abs_rank_correlation(n: int) -> float:
    """Smallest |Spearman| between 1..n and a permutation of it (no ties).

    rho = 1 - 6 S / (n (n^2 - 1)) with S the sum of squared rank
    differences, always even. For n >= 4 the even S nearest n (n^2 - 1) / 6
    occur (every even S does for n = 4..9, by enumeration; for n = 4..45 the
    result was checked against 200,000 random permutations each), so the
    smallest |rho| is theirs: 0 unless n = 2 mod 4 (0.029 for n = 6, 0.006 for
    n = 10). For n = 3 the values are +-1 and +-0.5. Used only to reject
    impossible bounds early; sampling checks the bound itself.
    """
    if n <= 2:
        return 1.0
    if n == 3:
        return 0.5
    den = n * (n * n - 1)
    centre = den / 6
    candidates = (2 * int(centre // 2), 2 * int(centre // 2) + 2)
    return min(abs(1 - 6 * s / den) for s in candidates)


def generate_frequency_profile(n_items: int, rng: np.random.Generator,
                               max_abs_last_correlation: float = 0.12) -> list[int]:
    """Item i presented i times, with recency decoupled from frequency.

    The published schedules (Fig. 5) keep |Spearman(frequency, position of an
    item's last presentation)| within about 0.12 (docs/protocol.md section 9). A
    plain shuffle does not: frequent items tend to be presented last, so the
    last-position correlation is strongly positive and order (recency) and
    frequency are confounded. Drawn in two exact steps:

    1. The order in which the items are last presented: a uniformly random
       permutation among those with |rho_last| <= ``max_abs_last_correlation``
       (rejection in vectorised batches; at the default bound at least 8% of
       permutations pass for every n >= 4, about 27% for n = 10).
    2. The other presentations: uniformly random among all schedules with
       that last-presentation order. Read backwards, the schedule must show
       the items for the first time in the reverse of that order; built from
       the item seen last backwards, each item puts one presentation at the
       front and its other i - 1 uniformly among the places after it, which
       gives every such schedule the same probability.

    Like the published rows, the first-position correlation then comes out
    strongly negative (frequent items start early); the order measure that
    matters, the last position, is bounded.

    The old rule "the schedule does not end in a run of the most frequent
    item" is dropped: the bound on the last position already controls the
    recency of frequent items, and the chance that the last n presentations
    are all item n is below 1 / C(T - 1, n - 1) (T = n (n + 1) / 2;
    about 2e-10 for n = 10); for n = 4 the bound itself forbids item 4 last.

    With distinct frequencies the last-position correlation is a rank
    correlation of a permutation, so it cannot come closer to 0 than
    +-0.5 for n = 3 (0.029 for n = 6; see ``_min_abs_rank_correlation``);
    a bound below what n allows raises ``ValueError``, and so does one too
    tight to sample (nothing passes in 25,600 draws). About 0.2 ms for
    n = 10, 1 ms for n = 45. Deterministic given ``rng``.

    >>> order = generate_frequency_profile(10, np.random.default_rng(0))
    >>> len(order), abs(schedule_correlations(order)["last"]) <= 0.12
    (55, True)
    """
    if n_items < 2:
        raise ValueError(f"a frequency schedule needs at least 2 items, got {n_items}")
    floor = _min_abs_rank_correlation(n_items)
    if max_abs_last_correlation < floor - 1e-12:
        raise ValueError(f"with {n_items} items |Spearman(frequency, last position)| cannot be below "
                         f"{floor:.3f}; got max_abs_last_correlation={max_abs_last_correlation} "
                         f"(use n_items >= 4 or a looser bound)")
    items = np.arange(1, n_items + 1)
    den = n_items * (n_items * n_items - 1)
    # Step 1. last_rank[k]: 0-based rank of the last presentation of item k + 1 among the items.
    for _ in range(200):
        ranks = np.argsort(rng.random((128, n_items)), axis=1)
        rho = 1 - 6 * ((ranks - np.arange(n_items)) ** 2).sum(axis=1) / den  # ties impossible
        ok = np.flatnonzero(np.abs(rho) <= max_abs_last_correlation + 1e-12)
        if len(ok):
            last_rank = ranks[ok[0]]
            break
    else:
        raise ValueError(f"max_abs_last_correlation={max_abs_last_correlation} is too tight to sample "
                         f"for {n_items} items (no permutation passed in 25,600 draws)")
    last_order = items[np.argsort(last_rank)]           # items by when they are last presented
    # Step 2. Build the reversed schedule from the item whose last presentation comes first.
    reversed_schedule = np.empty(0, dtype=int)
    for item in last_order:
        others = item - 1                                # presentations before its last
        slots = len(reversed_schedule) + others
        mine = np.zeros(slots, dtype=bool)
        mine[rng.choice(slots, size=others, replace=False)] = True
        grown = np.empty(slots, dtype=int)
        grown[mine] = item
        grown[~mine] = reversed_schedule
        reversed_schedule = np.concatenate(([item], grown))
    return reversed_schedule[::-1].tolist()


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
