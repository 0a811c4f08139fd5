"""Does storing S in bfloat16 change the lab's statistics? Run the engine twice and compare.

Runs the serial-position experiment (10 items; the quick preset's lr 1e-4,
epochs 5, batch 64, feature scale 10 with centring, and by default its width
512, with fewer images per class and a larger alpha so that S falls well
below 1) on synthetic features (a class prototype plus noise per image: no
backbone, no cache), once with ``MetaplasticSGD``'s default float32 S and
once with ``scale_dtype=torch.bfloat16``, with the same seeds. It prints the
memorized count of each network, how far the final item performances moved,
and how far S fell (so that a null difference is not a rule that never acted).

    python scripts/compare_scale_dtype.py [--trials 3] [--alpha 3e5]
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

PROTOTYPE = 0.3


def synthetic_features(name: str, split: str, n: int) -> np.ndarray:
    """A class prototype under unit noise: learnable, not trivially so."""
    prototype = PROTOTYPE * np.random.default_rng([CLASSES.index(name)]).normal(size=9216)
    noise = np.random.default_rng([CLASSES.index(name), split == "test"]).normal(size=(n, 9216))
    return (prototype + noise).astype(np.float16)


class BFloat16ScaleSGD(MetaplasticSGD):
    """The engine's optimizer with S stored in bfloat16."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, scale_dtype=torch.bfloat16, **kwargs)
        Recording.last = self


class Recording(MetaplasticSGD):
    """The engine's optimizer, remembered so that its S can be read after the run."""

    last: MetaplasticSGD | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        Recording.last = self


def scale_summary(opt: MetaplasticSGD, n_profiles: int, profiles) -> str:
    """Mean S and the share of S < 0.5 in the first layer, per profile (over trials)."""
    weight = opt.param_groups[0]["params"][0]
    s = opt.state[weight]["scale"].float()
    parts = []
    for k, profile in enumerate(profiles):
        block = s[k::n_profiles]
        parts.append(f"{profile} mean S {block.mean():.3f}, S < 0.5: {(block < 0.5).float().mean():.1%}")
    return "; ".join(parts)


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
    global PROTOTYPE
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--alpha", type=float, default=3e5)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--train-per-class", type=int, default=100)
    parser.add_argument("--test-per-class", type=int, default=50)
    parser.add_argument("--prototype", type=float, default=PROTOTYPE,
                        help="size of the class prototype against unit noise")
    args = parser.parse_args()
    PROTOTYPE = args.prototype
    config = make_config("serial-position", "quick", trials=args.trials, seed=0, alpha=args.alpha,
                         width=args.width, train_per_class=args.train_per_class,
                         test_per_class=args.test_per_class)
    print(f"alpha {config.alpha:g}, width {config.width}, {config.train_per_class} positives, "
          f"{config.epochs} epochs, lr {config.lr:g}, {config.trials} trials, prototype {PROTOTYPE}")
    tables = {}
    for label, cls in (("float32 S", Recording), ("bfloat16 S", BFloat16ScaleSGD)):
        table, seconds = run(config, cls)
        tables[label] = table[table.presentation == table.presentation.max()]
        print(f"{label}: {seconds:.0f} s; S before the last item, layer 1: "
              f"{scale_summary(Recording.last, len(config.learners), config.learner_names)}")
    a, b = tables["float32 S"], tables["bfloat16 S"]
    print(f"{'profile':14s} {'memorized per trial (float32 S)':34s} {'(bfloat16 S)':20s} "
          f"mean perf f32 / bf16   max |diff|")
    for profile in config.learner_names:
        pa, pb = a[a.learner == profile], b[b.learner == profile]
        ma = pa.groupby("trial")["memorized"].sum().tolist()
        mb = pb.groupby("trial")["memorized"].sum().tolist()
        diff = np.abs(pa["performance"].to_numpy() - pb["performance"].to_numpy()).max()
        print(f"{profile:14s} {str(ma):34s} {str(mb):20s} "
              f"{pa['performance'].mean():.3f} / {pb['performance'].mean():.3f}      {diff:.3f}")
    same = (a["memorized"].to_numpy() == b["memorized"].to_numpy()).mean()
    print(f"items whose memorized verdict agrees: {same:.1%} of {len(a)}")


if __name__ == "__main__":
    main()
