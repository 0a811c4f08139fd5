"""Time per trial of the quick preset, and B = 6 networks stacked vs one after another.

Both measurements run in this process on the same features (extracted first,
not timed): (a) 2 trials x 3 profiles = 6 networks trained as one stacked
model, (b) the same 6 networks trained one at a time (B = 1 each). It prints
the seconds of each and their ratio; the records of (a) and (b) are checked to
agree, so the speed does not come from doing something else.

    python benchmarks/bench_engine.py --data-dir ../shared/data [--scale quick] [--items 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from metaplastic.config import DEFAULT_BACKBONE
from metaplastic.engine import run_trials
from metaplastic.experiments import make_config
from metaplastic.lab import Lab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir")
    parser.add_argument("--cache-dir")
    parser.add_argument("--scale", default="quick")
    parser.add_argument("--items", type=int, default=None)
    args = parser.parse_args()

    config = make_config("serial-position", args.scale, items=args.items, trials=2,
                         backbone=DEFAULT_BACKBONE)
    lab = Lab(data_dir=args.data_dir, cache_dir=args.cache_dir, backbone=DEFAULT_BACKBONE)
    cached = lab.features(config, [0, 1])
    features = lambda c, s, n: cached[(c, s)]  # noqa: E731

    start = time.perf_counter()
    stacked = run_trials(config, features, [0, 1])
    stacked_s = time.perf_counter() - start

    start = time.perf_counter()
    alone = []
    for trial in (0, 1):
        for profile in config.profiles:
            one = make_config("serial-position", args.scale, items=args.items, trials=2,
                              backbone=DEFAULT_BACKBONE, profiles=(profile,))
            alone.append(run_trials(one, features, [trial]))
    alone_s = time.perf_counter() - start

    keys = ["trial", "profile", "presentation", "item"]
    paired = stacked.merge(pd.concat(alone), on=keys, suffixes=("_stacked", "_alone"))
    same = len(paired) == len(stacked) and np.allclose(paired["performance_stacked"],
                                                       paired["performance_alone"])
    agreement = (paired["performance_stacked"] - paired["performance_alone"]).abs().max()
    print(f"{args.scale} preset, {config.items} items, width {config.width}, "
          f"{config.train_per_class} positives, {config.epochs} epochs, batch {config.batch_size}")
    print(f"time per trial (3 profiles stacked): {stacked_s / 2:.1f} s")
    print(f"6 networks stacked {stacked_s:.1f} s   one after another {alone_s:.1f} s   "
          f"ratio stacked/sequential {stacked_s / alone_s:.2f}   records agree: {same} "
          f"(largest performance difference {agreement:.3g})")


if __name__ == "__main__":
    main()
