"""Does storing S in bfloat16 change the lab's statistics? Run the engine twice and compare.

Runs the serial-position experiment at the quick preset's sizes (10 items,
width 512, 300 positives, 5 epochs, batch 64, lr 1e-4, alpha 3e4) on synthetic
features (a class prototype plus noise per image: no backbone, no cache), once
with ``MetaplasticSGD``'s default float32 S and once with
``scale_dtype=torch.bfloat16``, with the same seeds, and prints the memorized
count of each network and how far the final item performances moved.

    python scripts/compare_scale_dtype.py [--trials 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from metaplastic import engine
from metaplastic.data.two_digit import CLASSES
from metaplastic.experiments import make_config
from metaplastic.optim import MetaplasticSGD


def synthetic_features(name: str, split: str, n: int) -> np.ndarray:
    """A weak class prototype under unit noise: learnable, not trivially so."""
    prototype = 0.05 * np.random.default_rng([CLASSES.index(name)]).normal(size=9216)
    noise = np.random.default_rng([CLASSES.index(name), split == "test"]).normal(size=(n, 9216))
    return (prototype + noise).astype(np.float16)


class BFloat16ScaleSGD(MetaplasticSGD):
    """The engine's optimizer with S stored in bfloat16."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, scale_dtype=torch.bfloat16, **kwargs)


def run(config, optimizer_class):
    original = engine.MetaplasticSGD
    engine.MetaplasticSGD = optimizer_class
    try:
        start = time.perf_counter()
        table = engine.run_trials(config, synthetic_features, list(range(config.trials)))
        return table, time.perf_counter() - start
    finally:
        engine.MetaplasticSGD = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    config = make_config("serial-position", "quick", trials=args.trials, seed=0)
    tables = {}
    for label, cls in (("float32 S", MetaplasticSGD), ("bfloat16 S", BFloat16ScaleSGD)):
        table, seconds = run(config, cls)
        tables[label] = table[table.presentation == table.presentation.max()]
        print(f"{label}: {seconds:.0f} s")
    a, b = tables["float32 S"], tables["bfloat16 S"]
    print(f"{'profile':14s} {'memorized per trial (float32 S)':34s} {'(bfloat16 S)':20s} "
          f"mean perf f32 / bf16   max |diff|")
    for profile in config.profiles:
        pa, pb = a[a.profile == profile], b[b.profile == profile]
        ma = pa.groupby("trial")["memorized"].sum().tolist()
        mb = pb.groupby("trial")["memorized"].sum().tolist()
        diff = np.abs(pa["performance"].to_numpy() - pb["performance"].to_numpy()).max()
        print(f"{profile:14s} {str(ma):34s} {str(mb):20s} "
              f"{pa['performance'].mean():.3f} / {pb['performance'].mean():.3f}      {diff:.3f}")
    same = (a["memorized"].to_numpy() == b["memorized"].to_numpy()).mean()
    print(f"items whose memorized verdict agrees: {same:.1%} of {len(a)}")


if __name__ == "__main__":
    main()
