"""Which definition of "order" makes a conventional network's performance track order (Fig. 5b)?

Reads a frequency run folder and prints, per profile, the mean +- SD over trials
of the Spearman correlation between an item's final performance and: the position
of its first presentation, of its last, its mean position, and its frequency,
beside the paper's Fig. 5b example (one trial: conventional r(order) = 0.82,
r(frequency) = 0.25; hybrid r(order) = 0.10, r(frequency) = 0.92).

    python scripts/order_definitions.py runs/frequency-quick-<hash>
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from metaplastic import stats, tables
from metaplastic.reader import read_run
from metaplastic.results import RunFolderError

PAPER = {"conventional": {"order": 0.82, "frequency": 0.25}, "hybrid": {"order": 0.10, "frequency": 0.92}}
COLUMNS = ("first_position", "last_position", "mean_position", "frequency")


def correlations(table: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, list[float]]] = {}
    for (profile, _), trial in table.groupby(["learner", "trial"], sort=False):
        schedule = tables.item_schedule(trial)
        performance = tables.final_performance(trial).reindex(schedule.index).to_numpy()
        for column in COLUMNS:
            rho = stats.spearman(schedule[column].to_numpy(), performance)[0]
            out.setdefault(profile, {}).setdefault(column, []).append(rho)
    return {p: {c: np.array(v) for c, v in columns.items()} for p, columns in out.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a frequency run folder")
    args = parser.parse_args(argv)
    try:
        table = read_run(args.run_dir).records
    except RunFolderError as error:
        print(f"error: {error}; give a frequency run folder", file=sys.stderr)
        return 2
    trials = table["trial"].nunique()
    print(f"{args.run_dir}: {trials} trials; schedules: {', '.join(sorted(set(table['schedule'])))}")
    print(f"{'profile':<14}" + "".join(f"{c:>22}" for c in COLUMNS) + "   paper (order, frequency)")
    for profile, columns in correlations(table).items():
        cells = "".join(f"{np.nanmean(columns[c]):>+13.2f} +- {np.nanstd(columns[c], ddof=1):4.2f}"
                        for c in COLUMNS)
        paper = PAPER.get(profile, {})
        print(f"{profile:<14}{cells}   {paper.get('order', '-')}, {paper.get('frequency', '-')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
