"""Calibration sweep: run an experiment over a grid of settings and print one line per setting.

Each line gives, per profile, the mean number of memorized items (of N) and the
mean final performance of every item, so the grid can be read for the paper's
shapes (hybrid keeps all, conventional recency, stable primacy), then the
verdicts of the experiment's claims under the report's strict rules (H holds,
C contradicted, n not shown, i inconclusive; in the order of the report).
Results are not stored; the chosen values go into the scale presets and
docs/calibration.md.

    python scripts/sweep.py --data-dir ../shared/data --trials 2 \\
        --grid lr=1e-4,3e-4 alpha=1e5,4e5 feature_scale=10

With ``--learners`` only some networks are trained (claims about the others then read
"inconclusive": their data is missing).
"""

from __future__ import annotations

import argparse
import itertools
import time

from metaplastic._memory import keep_freed_memory
from metaplastic.config import DEFAULT_BACKBONE, parse_setting
from metaplastic.engine import run_trials
from metaplastic.experiments import EXPERIMENTS, make_config
from metaplastic.lab import Lab
from metaplastic.summary import summarize


def parse_grid(entries: list[str]) -> dict[str, list]:
    grid = {}
    for entry in entries:
        name, values = entry.split("=", 1)
        grid[name] = [parse_setting(name, v) for v in values.split(",")]
    return grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="serial-position")
    parser.add_argument("--scale", default="quick")
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir")
    parser.add_argument("--cache-dir")
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE, help="as for metaplastic run")
    parser.add_argument("--learners", help="as for metaplastic run (default: the experiment's "
                        "profiles); e.g. 'conventional' sweeps the learning rate at a third of the cost")
    parser.add_argument("--grid", nargs="*", default=[], help="name=v1,v2 ... (RunConfig fields)")
    args = parser.parse_args()

    lab = Lab(data_dir=args.data_dir, cache_dir=args.cache_dir, backbone=args.backbone)
    grid = parse_grid(args.grid)
    names = list(grid)
    for values in itertools.product(*grid.values()):
        settings = dict(zip(names, values))
        config = make_config(args.experiment, args.scale, trials=args.trials, seed=args.seed,
                             backbone=args.backbone, learners=args.learners, **settings)
        trials = list(range(args.trials))
        cached = lab.features(config, trials, progress=False)
        # As the lab does, so that a line's seconds compare with a run's (metaplastic._memory).
        keep_freed_memory()
        start = time.perf_counter()
        table = run_trials(config, lambda c, s, n, cached=cached: cached[(c, s)], trials)
        summary = summarize(table)
        parts = []
        for learner, v in summary["learners"].items():
            curve = " ".join(f"{p:.2f}" for p in v["final_performance_mean"])
            per_trial = ",".join(str(m) for m in v["memorized_per_trial"])
            parts.append(f"{learner[:4]} {v['memorized_mean']:.1f} ({per_trial}) [{curve}]")
        label = " ".join(f"{k}={v}" for k, v in settings.items())
        print(f"{label} | " + " | ".join(parts) + f" | claims {verdicts(args.experiment, table)}"
              f" | {time.perf_counter() - start:.0f}s", flush=True)


def verdicts(experiment: str, table) -> str:
    """One letter per claim of the experiment, judged as the report judges it, and the count held."""
    letters = {"holds": "H", "contradicted": "C", "not shown": "n", "inconclusive": "i"}
    found = [claim.check(table).verdict for claim in EXPERIMENTS[experiment].claims]
    return "".join(letters[v] for v in found) + f" ({found.count('holds')}/{len(found)})"


if __name__ == "__main__":
    main()
