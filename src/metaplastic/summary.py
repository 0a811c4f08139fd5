"""``summary.json``: what a run measured, per learner, computed on the reading side from its records
(the store only writes it; the CLI prints it after a run)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from metaplastic import stats
from metaplastic.tables import final_rows

#: The two-sample comparisons of memorized counts the summary reports, where both learners ran.
COMPARISONS = (("hybrid", "conventional"), ("hybrid", "stable"))


def summarize(table: pd.DataFrame) -> dict:
    """Per learner: memorized items and final performance per item (mean, SD), and comparisons."""
    final = final_rows(table)
    n_items = int(table["n_items"].iloc[0])
    summary: dict = {"trials": sorted(int(t) for t in table["trial"].unique()),
                     "seed": int(table["seed"].iloc[0]), "n_items": n_items,
                     "chance": 1.0 / n_items, "learners": {}}
    memorized = {}
    for learner, rows in final.groupby("learner", sort=False):
        per_trial = rows.pivot(index="trial", columns="item", values="performance")
        counts = rows.groupby("trial")["memorized"].sum().astype(float)
        memorized[learner] = counts.to_numpy()
        item_p = [stats.above_chance(per_trial[i].to_numpy(), 1.0 / n_items)[1]
                  if len(per_trial) > 1 else None for i in per_trial.columns]
        summary["learners"][learner] = {
            "memorized_mean": float(counts.mean()),
            "memorized_sd": float(counts.std(ddof=1)) if len(counts) > 1 else 0.0,
            "memorized_per_trial": counts.astype(int).tolist(),
            "final_performance_mean": per_trial.mean().tolist(),
            "final_performance_sd": per_trial.std(ddof=1).fillna(0.0).tolist(),
            "final_item_above_chance_p": item_p,
        }
    summary["comparisons"] = comparisons(memorized)
    return summary


def comparisons(memorized: dict[str, np.ndarray]) -> dict:
    """Two-sample t-tests (:func:`metaplastic.stats.compare`) of memorized counts between the
    paper's profiles, where present."""
    out = {}
    for a, b in COMPARISONS:
        if a in memorized and b in memorized and len(memorized[a]) > 1:
            if np.ptp(np.concatenate([memorized[a], memorized[b]])) == 0:
                continue  # identical constant samples: no test to run
            t, p = stats.compare(memorized[a], memorized[b])
            entry = {"t": t, "p": p, "test": "two-sample t-test"}
            if not np.isfinite(t):   # no spread in either sample (t is written as null)
                entry["note"] = "no spread in either sample: p from the means alone"
            out[f"memorized {a} vs {b}"] = entry
    return out
