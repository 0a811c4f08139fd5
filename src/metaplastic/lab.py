"""The laboratory: digits -> features -> engine -> results store, for one run.

:func:`run_experiment` is what ``metaplastic run`` calls. It resolves the data
and the backbone once, records what was actually used (provenance), extracts
the features the trials need (cached), then trains the trials that the run
folder does not hold yet, saving after each one.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from metaplastic import protocol
from metaplastic._memory import keep_freed_memory
from metaplastic.config import RunConfig
from metaplastic.data.mnist import DataError, DigitSource, default_data_dir, load_digits
from metaplastic.data.two_digit import source_fingerprint
from metaplastic.engine import Schedules, run_trials, trial_classes
from metaplastic.experiments import EXPERIMENTS
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
        root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        self.schedules_path = root / protocol.FREQUENCY_SCHEDULES_FILE

    def provenance(self) -> dict:
        """What the runs actually use: backbone and digits. It enters each run's identity."""
        return {"backbone": self.backbone.describe(),
                "mnist": self.digits.describe() | {"fingerprint": self.cache.digits_fingerprint}}

    def frequency_schedules(self, config: RunConfig) -> tuple[Schedules | None, dict]:
        return frequency_schedules(self.schedules_path, config)

    def features(self, config: RunConfig, trials: list[int], progress: bool = True) -> dict:
        wanted = {(name, split, n) for t in trials for name in trial_classes(config, t)
                  for split, n in (("train", config.train_per_class), ("test", config.test_per_class))}
        return self.cache.ensure(self.digits, sorted(wanted), seed=config.dataset_seed,
                                 progress=progress)


def frequency_schedules(path: Path, config: RunConfig) -> tuple[Schedules | None, dict]:
    """The published schedules in ``path`` for the run's length, or None (then trials generate
    theirs), with a description for the provenance. Asking for published schedules that are not
    there falls back to generated ones, loudly (docs/frequency.md)."""
    if config.frequency_schedules == "generated":
        return None, {"source": "generated", "reason": "asked for (--frequency-schedules generated)"}
    if not path.exists():
        return _generated_instead(f"{path} not found")
    try:
        published = protocol.load_frequency_profiles(path)
    except ValueError as error:
        raise DataError(f"cannot read the frequency schedules: {error}") from None
    try:
        rows = protocol.published_frequency_schedules(published, config.items)
    except ValueError:   # e.g. --items 12: no published row has that length
        return _generated_instead(f"no schedule in {path.name} presents item i i times for "
                                  f"i = 1..{config.items}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return tuple(rows), {"source": "published", "file": path.name, "sha256": digest,
                         "rows": [row for row, _ in rows]}


def _generated_instead(reason: str) -> tuple[None, dict]:
    warnings.warn(f"the published frequency schedules cannot be used ({reason}); the frequency "
                  "experiment generates schedules with the same property instead (recorded)",
                  stacklevel=3)
    return None, {"source": "generated", "reason": f"fallback: {reason}"}


def run_experiment(config: RunConfig, lab: Lab, out: str | os.PathLike,
                   progress: bool = True) -> RunResult:
    start = time.perf_counter()
    provenance, schedules = lab.provenance(), None
    if EXPERIMENTS[config.experiment].kind == "frequency":   # the schedules used are provenance too
        schedules, provenance["frequency_schedules"] = lab.frequency_schedules(config)
    store = RunStore(out, config, provenance)
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
                    steps_task, completed=k, total=n), schedules=schedules)
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
