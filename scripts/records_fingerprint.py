"""Records of every registry experiment at tiny sizes, for checking that a change keeps them
bit-identical (the rule of PROTOCOL_VERSION: bump it when they change).

Trains each experiment of the registry (and serial-position with every baseline, poisoning with
baselines given settings) on two tiny trials of synthetic features, seed 3, and writes each
records table as Parquet into OUT; ``--compare A B`` then checks two such folders with
``DataFrame.equals`` (a folder written before the records' ``profile`` column became
``learner`` compares too). Run it on the build before a change and on the change:

    python scripts/records_fingerprint.py --out /tmp/before     # at the old commit
    python scripts/records_fingerprint.py --out /tmp/after
    python scripts/records_fingerprint.py --compare /tmp/before /tmp/after
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

CASES = [(None, None), ("serial-position", "baselines"),
         ("poisoning", "hybrid,ewc:lam=5,si,replay:buffer=7")]
TINY = dict(trials=2, items=5, width=8, train_per_class=12, test_per_class=6, epochs=2,
            batch_size=5, lr=0.05, alpha=20.0, feature_scale=1.0, center_features=True)


def synthetic_features(name, split, n):
    from metaplastic.data.two_digit import CLASSES

    prototype = np.random.default_rng([CLASSES.index(name)]).normal(size=9216)
    noise = np.random.default_rng([CLASSES.index(name), split == "test"]).normal(size=(n, 9216))
    return (prototype + noise).astype(np.float16)


def write(out: Path) -> None:
    from metaplastic.engine import run_trials
    from metaplastic.experiments import EXPERIMENTS, make_config

    out.mkdir(parents=True, exist_ok=True)
    cases = [(name, None) for name in EXPERIMENTS] + CASES[1:]
    for name, learners in cases:
        extra = {"learners": learners} if learners else {}
        config = make_config(name, "quick", seed=3, **TINY, **extra)
        table = run_trials(config, synthetic_features, [0, 1])
        stem = f"{name}-{learners or 'default'}".replace(":", "_").replace(",", "+")
        table.to_parquet(out / f"{stem}.parquet", index=False)
        print(f"{stem}: {len(table)} rows")


def compare(a: Path, b: Path) -> int:
    different = 0
    for path in sorted(a.glob("*.parquet")):
        left = pd.read_parquet(path).rename(columns={"profile": "learner"})
        other = b / path.name
        right = pd.read_parquet(other).rename(columns={"profile": "learner"}) if other.exists() else None
        same = right is not None and left.equals(right)
        different += not same
        print(f"{path.stem}: {'equal' if same else 'DIFFERENT' if right is not None else 'missing'}")
    return 1 if different else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path, help="folder to write the records into")
    group.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    args = parser.parse_args()
    if args.out:
        write(args.out)
        return 0
    return compare(*args.compare)


if __name__ == "__main__":
    sys.exit(main())
