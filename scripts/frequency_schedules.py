"""How order and frequency are correlated in the frequency experiment's schedules (Fig. 5).

For every published schedule, and for many schedules of the old and the new
generator, prints the Spearman correlation over the items between an item's
frequency and the position of its first presentation, of its last
presentation, and the mean position of its presentations (see
docs/frequency.md). ``pres`` is the old generator's own measure: Spearman
between each of the 55 presentations' position and its item's frequency.

    python scripts/frequency_schedules.py --data-dir ../shared/data --schedules 1000 --seed 0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from metaplastic import protocol

KEYS = ("first", "last", "mean", "pres")


def presentation_correlation(order: list[int]) -> float:
    """Spearman(position of each presentation, frequency of its item) over all presentations."""
    frequencies = protocol.item_frequencies(order)
    return float(spearmanr(np.arange(len(order)), [frequencies[k] for k in order]).statistic)


def correlations(order: list[int]) -> dict[str, float]:
    return {**protocol.schedule_correlations(order), "pres": presentation_correlation(order)}


def old_generator(n_items: int, rng: np.random.Generator, max_abs_correlation: float = 0.2) -> list[int]:
    """The rule the project used before: shuffle until |Spearman(position, frequency)| <= 0.2.

    Over the n(n+1)/2 presentations, with item i presented i times; it also
    refused schedules whose last n presentations are all the most frequent item.
    """
    order = np.repeat(np.arange(1, n_items + 1), np.arange(1, n_items + 1))
    while True:
        rng.shuffle(order)
        rho = spearmanr(np.arange(len(order)), order).statistic
        if abs(rho) <= max_abs_correlation and set(order[-n_items:]) != {n_items}:
            return order.tolist()


def summary_line(label: str, rows: list[dict[str, float]]) -> str:
    cells = []
    for key in KEYS:
        values = np.array([r[key] for r in rows])
        cells.append(f"{values.mean():+.3f} [{values.min():+.3f}, {values.max():+.3f}]")
    return f"{label:<28}" + "".join(f"{c:>26}" for c in cells)


def header() -> str:
    return f"{'schedules':<28}" + "".join(f"{k + ': mean [min, max]':>26}" for k in KEYS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="folder holding the schedules file")
    parser.add_argument("--schedules", type=int, default=1000, help="generated schedules per generator")
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    path = Path(args.data_dir) / protocol.FREQUENCY_SCHEDULES_FILE
    profiles = protocol.load_frequency_profiles(path)
    chosen = {row for row, _ in protocol.published_frequency_schedules(profiles, args.items)}
    print(f"published schedules ({path}); * = item i presented i times")
    print(f"{'row':>4} {'':1}" + "".join(f"{k:>8}" for k in KEYS))
    published = {row: correlations(order) for row, order in enumerate(profiles, 1)}
    for row, rho in published.items():
        print(f"{row:>4} {'*' if row in chosen else ' '}" + "".join(f"{rho[k]:>+8.3f}" for k in KEYS))

    print()
    print(header())
    print(summary_line(f"published rows in use ({len(chosen)})", [published[r] for r in sorted(chosen)]))
    others = [published[r] for r in published if r not in chosen]
    if others:
        print(summary_line(f"published, other ({len(others)})", others))
    for name, generate in (("old", old_generator), ("new", protocol.generate_frequency_profile)):
        rng = np.random.default_rng(args.seed)
        start = time.perf_counter()
        orders = [generate(args.items, rng) for _ in range(args.schedules)]
        per_schedule_ms = (time.perf_counter() - start) / args.schedules * 1e3
        print(summary_line(f"{name} generator ({args.schedules})", [correlations(o) for o in orders])
              + f"   {per_schedule_ms:.2f} ms/schedule")


if __name__ == "__main__":
    main()
