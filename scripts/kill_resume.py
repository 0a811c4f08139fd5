"""Kill a run with SIGKILL at random moments, resume it each time, and check that the records
it ends with are identical to those of an uninterrupted run (issue 12).

    python scripts/kill_resume.py --kills 20 --trials 6

Each attempt starts a process (forked from a clean server) that resumes the run folder and is
killed after a random delay, drawn uniformly between 0 and 1.2 times the uninterrupted run's
duration, so kills land while features are made, while a trial trains, while its file is
written and while the merged view is rewritten. When a run completes, its records are checked
and a new round starts, until the asked number of SIGKILLs has been dealt. The trials use
synthetic features (class prototypes plus noise) and tiny networks, so no backbone is needed.
Exits 1 if any round's records differ, a trial is missing or duplicated, or a file was damaged.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


class SyntheticLab:
    """A lab without digits or backbone: each class is a fixed prototype plus noise."""

    def provenance(self):
        return {"backbone": {"weights": "synthetic"}, "mnist": {"source": "synthetic"}}

    def frequency_schedules(self, config):
        return None, {"source": "generated"}

    def features(self, config, trials, progress=True):
        from metaplastic.data.two_digit import CLASSES, REFERENCE_CLASSES
        from metaplastic.trials import required_features

        def make(name, split, n):
            index = (CLASSES + REFERENCE_CLASSES).index(name)
            prototype = np.random.default_rng([index]).normal(size=9216)
            noise = np.random.default_rng([index, split == "test"]).normal(size=(n, 9216))
            return (prototype + noise).astype(np.float16)

        return {(c, s): make(c, s, n) for c, s, n in required_features(config, trials)}


def config(trials: int):
    from metaplastic.experiments import make_config

    return make_config("serial-position", "quick", seed=5, trials=trials, items=4, width=8,
                       train_per_class=12, test_per_class=6, epochs=2, batch_size=5, lr=0.05,
                       alpha=20.0, feature_scale=1.0)


def _run(out: str, trials: int) -> None:
    from metaplastic.lab import run_experiment

    run_experiment(config(trials), SyntheticLab(), out, progress=False)


def _forked(out: str, trials: int) -> multiprocessing.Process:
    # Children fork from a server that imported the package and never ran a thread pool (torch,
    # pyarrow): a plain fork of this process, which reads Parquet, can deadlock in the child.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["metaplastic.lab", "metaplastic.engine", "pandas", "pyarrow"])
    process = context.Process(target=_run, args=(out, trials))
    process.start()
    return process


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs (default 20)")
    parser.add_argument("--trials", type=int, default=6, help="trials of the run (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    parser.add_argument("--out", help="work folder (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.kills < 1 or args.trials < 1:
        parser.error("--kills and --trials must be at least 1")
    work = Path(args.out or tempfile.mkdtemp(prefix="kill-resume-"))
    warm = _forked(str(work / "warm-up"), 1)   # starts the fork server: not part of the timing
    warm.join()
    start = time.perf_counter()
    reference = _forked(str(work / "whole"), args.trials)
    reference.join()
    whole_s = time.perf_counter() - start
    if reference.exitcode != 0:
        print(f"the uninterrupted run failed (exit {reference.exitcode})")
        return 1

    from metaplastic.results import merge_trials

    (whole_dir,) = (work / "whole").iterdir()
    expected = pd.read_parquet(whole_dir / "records.parquet")
    rng = random.Random(args.seed)
    kills, rounds, failures = [], 0, 0
    while len(kills) < args.kills:   # a round: kill and resume until the run completes, then check
        rounds += 1
        folder = work / f"killed-{rounds}"
        while True:
            process = _forked(str(folder), args.trials)
            process.join(rng.uniform(0, 1.2 * whole_s))
            if not process.is_alive():
                break   # the run completed before its kill: this round is over
            os.kill(process.pid, signal.SIGKILL)
            process.join()
            found = list(folder.glob("*/trials"))
            kills.append(len(list(found[0].glob("*.parquet"))) if found else 0)
        (killed_dir,) = folder.iterdir()
        got = pd.read_parquet(killed_dir / "records.parquet")
        merged = merge_trials(killed_dir / "trials")
        files = sorted(p.name for p in (killed_dir / "trials").glob("trial-*.parquet"))
        damaged = sorted(p.name for p in killed_dir.rglob("*.damaged"))
        ok = (process.exitcode == 0 and got.equals(expected) and merged is not None
              and merged.equals(expected) and not damaged
              and files == [f"trial-{t:06d}.parquet" for t in range(args.trials)])
        failures += not ok
        print(f"round {rounds}: records identical to the uninterrupted run: {ok} "
              f"({len(files)} trial files, {len(damaged)} damaged)")
    print(f"{len(kills)} SIGKILLs in {rounds} round(s) (trials saved at each kill: {kills}); "
          f"uninterrupted run {whole_s:.1f} s; rounds that differ: {failures}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
