"""The laboratory: digits -> features -> engine -> results store, for one run.

:func:`run_experiment` is what ``metaplastic run`` calls. It resolves the data
and the backbone once, records what was actually used (provenance), extracts
the features the trials need (cached), then trains the trials that the run
folder does not hold yet, saving after each one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from metaplastic._memory import keep_freed_memory
from metaplastic.data.mnist import DigitSource, load_digits
from metaplastic.data.two_digit import source_fingerprint
from metaplastic.engine import run_trials, trial_classes
from metaplastic.experiments import RunConfig
from metaplastic.features import FeatureCache, load_backbone
from metaplastic.results import RunStore

CACHE_ENV_VAR = "METAPLASTIC_CACHE"


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "metaplastic" / "features"


@dataclass
class RunResult:
    store: RunStore
    table: pd.DataFrame | None
    summary: dict | None
    trained: list[int]
    seconds: float


class Lab:
    """Digits, backbone and feature cache, resolved once and shared by runs."""

    def __init__(self, *, data_dir=None, cache_dir=None, backbone: str = "auto",
                 device: str = "cpu", download: bool = True):
        if device == "cpu":
            keep_freed_memory()  # large stacked tensors: reuse the heap (see metaplastic._memory)
        self.digits: DigitSource = load_digits(data_dir, download=download)
        self.backbone = load_backbone(backbone)
        self.cache = FeatureCache(cache_dir or default_cache_dir(), self.backbone,
                                  digits_fingerprint=source_fingerprint(self.digits), device=device)

    def provenance(self) -> dict:
        return {"backbone": self.backbone.describe(),
                "mnist": self.digits.describe() | {"fingerprint": self.cache.digits_fingerprint}}

    def features(self, config: RunConfig, trials: list[int], progress: bool = True) -> dict:
        wanted = {(name, split, n) for t in trials for name in trial_classes(config, t)
                  for split, n in (("train", config.train_per_class), ("test", config.test_per_class))}
        return self.cache.ensure(self.digits, sorted(wanted), seed=config.dataset_seed,
                                 progress=progress)


def run_experiment(config: RunConfig, lab: Lab, out: str | os.PathLike,
                   progress: bool = True) -> RunResult:
    start = time.perf_counter()
    store = RunStore(out, config, lab.provenance())
    table = store.records()
    finished = set() if table is None else set(int(t) for t in table["trial"].unique())
    todo = [t for t in range(config.trials) if t not in finished]
    if todo:
        cached = lab.features(config, todo, progress=progress)
        features = lambda name, split, n: cached[(name, split)]  # noqa: E731
        with _progress(progress) as bar:
            trials_task = bar.add_task(f"{config.experiment} trials", total=len(todo))
            steps_task = bar.add_task("presentations", total=None)
            for t in todo:
                bar.reset(steps_task, description=f"trial {t} presentations")
                trial_start = time.perf_counter()
                records = run_trials(config, features, [t], on_presentation=lambda k, n: bar.update(
                    steps_task, completed=k, total=n))
                spent = store.seconds() + time.perf_counter() - trial_start
                table = store.append(records)
                store.write_summary(table, seconds=spent)
                bar.advance(trials_task)
    summary = store.write_summary(table) if table is not None else None
    return RunResult(store, table, summary, todo, time.perf_counter() - start)


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), disable=not enabled)
