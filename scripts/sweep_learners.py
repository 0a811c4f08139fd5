"""Calibration sweep of the baseline learners (docs/calibration.md, "Baselines").

Every setting of every method is one learner name (``ewc:lam=1e4``), and all of them train
in ONE run of the engine beside the hybrid and conventional networks: the same trials, item
sequences, task sets, mini-batches, initial weights and tests (stacked networks stay
independent, tests/test_learners.py). Each method gets the same budget: five settings, the
same trials. Prints one markdown row per learner (memorized items of N, per-trial counts,
gross memory, lowest item, measured seconds per presentation and network), then the choice of
each method by the rule fixed before the sweep: the most memorized items (mean over trials);
ties broken by gross memory, then by the cheaper setting (smaller buffer).

    python scripts/sweep_learners.py --data-dir ../shared/data --trials 2 > sweep.md
"""

from __future__ import annotations

import argparse
import time

from metaplastic import learners
from metaplastic.engine import run_trials
from metaplastic.experiments import make_config
from metaplastic.lab import Lab
from metaplastic.tables import final_rows

#: Five settings per method (the equal budget). Penalties span decades: how large the Fisher and
#: the path integral are at the quick preset is not known in advance. Buffers: one presentation
#: holds 597 examples (300 positives, 33 from each of 9 other items). Metaplastic Adam needs its
#: own learning rate (Adam's steps do not scale with the gradient): two rates, m around 1 / |w|
#: (Glorot std of FC6 0.014, FC7 0.044).
GRID = {
    "ewc": ["ewc:lam=1", "ewc:lam=1e2", "ewc:lam=1e4", "ewc:lam=1e6", "ewc:lam=1e8"],
    "si": ["si:c=1e-2", "si:c=1", "si:c=1e2", "si:c=1e4", "si:c=1e6"],
    "replay": ["replay:buffer=30", "replay:buffer=100", "replay:buffer=300", "replay:buffer=1000",
               "replay:buffer=3000"],
    "meta-adam": ["meta-adam:lr=1e-6,m=30", "meta-adam:lr=1e-5,m=0", "meta-adam:lr=1e-5,m=10",
                  "meta-adam:lr=1e-5,m=30", "meta-adam:lr=1e-5,m=100"],
}


def cost_key(name: str) -> float:
    """Smaller is cheaper: only replay's buffer costs more as the setting grows."""
    if not learners.is_baseline(name):
        return 0.0
    learner = learners.parse(name)
    return float(getattr(learner, "buffer", 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="serial-position")
    parser.add_argument("--scale", default="quick")
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir")
    parser.add_argument("--cache-dir")
    parser.add_argument("--families", default=",".join(GRID), help="methods to sweep")
    parser.add_argument("--records", help="also save the records table here (Parquet)")
    args = parser.parse_args()

    names = ["hybrid", "conventional"] + [n for f in args.families.split(",") for n in GRID[f]]
    config = make_config(args.experiment, args.scale, trials=args.trials, seed=args.seed,
                         backbone="untrained", learners=names)
    lab = Lab(data_dir=args.data_dir, cache_dir=args.cache_dir, backbone="untrained")
    trials = list(range(args.trials))
    cached = lab.features(config, trials, progress=False)
    costs: dict[str, dict] = {}
    start = time.perf_counter()
    table = run_trials(config, lambda c, s, n: cached[(c, s)], trials, costs=costs)
    seconds = time.perf_counter() - start
    if args.records:   # first, so that nothing below can lose the sweep
        table.to_parquet(args.records, index=False)

    final = final_rows(table)
    n = config.items
    print(f"{args.experiment}, {args.scale}, trials {trials}, seed {args.seed}: {seconds:.0f} s\n")
    print(f"| learner | memorized of {n} (per trial) | gross memory | lowest item | "
          "s per presentation |")
    print("| --- | --- | --- | --- | --- |")
    scores = {}
    for name in names:
        rows = final[final.learner == name].groupby("trial")
        counts, gross = rows["memorized"].sum(), rows["performance"].sum()
        lowest = rows["performance"].min()
        scores[name] = (counts.mean(), gross.mean(), -cost_key(name))
        print(f"| {name} | {counts.mean():.1f} ({', '.join(str(int(c)) for c in counts)}) | "
              f"{gross.mean():.2f} | {lowest.mean():.2f} | {costs[name]['seconds_per_presentation']:.2f} |")
    print("\nchosen (most memorized, then gross memory, then cheaper):")
    for family in args.families.split(","):
        best = max(GRID[family], key=lambda name: scores[name])
        print(f"  {family}: {best}  ({learners.parse(best).describe()})")


if __name__ == "__main__":
    main()
