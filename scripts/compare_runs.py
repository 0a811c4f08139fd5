"""Do two runs of one experiment agree within trial-to-trial noise? (e.g. float64 vs float32).

For two run folders of the same experiment (compared on the trials both hold; typically the
same configuration at two precisions, or on two devices), prints per learner the memorized
count and per item the final performance of each, the largest paired difference against the
trial-to-trial standard error of the mean (SD over trials / sqrt(trials)), and each claim's
verdict in both. The rule
(docs/benchmarks.md, "Precision"): the runs agree when every mean differs by less than one
standard error and every claim has the same verdict.

    python scripts/compare_runs.py RUN_A RUN_B
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from metaplastic.experiments import EXPERIMENTS
from metaplastic.reader import read_run
from metaplastic.tables import final_rows


def per_trial(table, profile: str, column: str):
    """``[trials, items]`` of ``column`` after the last presentation, trials in order."""
    rows = final_rows(table)
    rows = rows[rows.learner == profile]
    return rows.pivot(index="trial", columns="item", values=column).sort_index()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    args = parser.parse_args()
    run_a, run_b = read_run(args.run_a), read_run(args.run_b)
    a, b = run_a.records, run_b.records
    experiment = a["experiment"].iloc[0]
    common = sorted(set(a.trial) & set(b.trial))
    if b["experiment"].iloc[0] != experiment or not common:
        print("the two runs are not of the same experiment, or share no trial", file=sys.stderr)
        return 2
    a, b = a[a.trial.isin(common)], b[b.trial.isin(common)]   # the trials both ran, paired
    print(f"{experiment}: trials {common}")
    for name, run in (("A", run_a), ("B", run_b)):
        config = run.config
        print(f"{name}: {run.folder} (precision {config.get('precision', 'float32')}, device "
              f"{config['device']})")
    n = a.trial.nunique()
    worst = 0.0
    print("\n| learner | memorized A | memorized B | largest per-item abs(mean B - mean A) / SE |")
    print("| --- | --- | --- | --- |")
    for profile in [p for p in a.learner.unique() if p in set(b.learner)]:   # learners of both
        perf_a, perf_b = per_trial(a, profile, "performance"), per_trial(b, profile, "performance")
        count_a = per_trial(a, profile, "memorized").sum(axis=1)
        count_b = per_trial(b, profile, "memorized").sum(axis=1)
        se = np.maximum(perf_a.std(ddof=1).to_numpy() / np.sqrt(n), 1e-12)
        ratio = float(np.max(np.abs(perf_b.mean() - perf_a.mean()).to_numpy() / se))
        count_se = max(float(count_a.std(ddof=1)) / np.sqrt(n), 1e-12)
        ratio = max(ratio, abs(count_b.mean() - count_a.mean()) / count_se)
        worst = max(worst, ratio)
        print(f"| {profile} | {count_a.mean():.2f} +- {count_a.std(ddof=1):.2f} | "
              f"{count_b.mean():.2f} +- {count_b.std(ddof=1):.2f} | {ratio:.2f} |")
    same = 0
    claims = EXPERIMENTS[experiment].claims
    print("\n| claim | verdict A | verdict B |\n| --- | --- | --- |")
    for claim in claims:
        va, vb = claim.check(a).verdict, claim.check(b).verdict
        same += va == vb
        print(f"| {claim.statement} | {va} | {vb} |")
    agree = worst < 1 and same == len(claims)
    print(f"\nlargest difference: {worst:.2f} standard errors; verdicts equal: {same} of "
          f"{len(claims)}; {'AGREE' if agree else 'DIFFER'} (rule: < 1 SE and every verdict equal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
