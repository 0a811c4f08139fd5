"""The laboratory: digits -> features -> engine -> results store, for one run.

:func:`run_experiment` is what ``metaplastic run`` calls. It resolves the data
and the backbone once, records what was actually used (provenance), extracts
the features the trials need (cached), then trains the trials that the run
folder does not hold yet, saving after each one.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from metaplastic import protocol
from metaplastic._memory import keep_freed_memory
from metaplastic.config import DEFAULT_BACKBONE, RunConfig, parse_backbone
from metaplastic.data.mnist import DataError, DigitSource, default_data_dir, load_digits
from metaplastic.data.two_digit import source_fingerprint
from metaplastic.engine import run_trials
from metaplastic.experiments import EXPERIMENTS
from metaplastic.feature_cache import FeatureCache
from metaplastic.features import load_backbone
from metaplastic.resources import check_resources, trial_batch_size
from metaplastic.results import RunStore, run_identity
from metaplastic.summary import summarize
from metaplastic.trials import Schedules, required_features

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

    def __init__(self, *, data_dir=None, cache_dir=None, backbone: str = DEFAULT_BACKBONE,
                 device: str = "cpu", download: bool = True, mean_image=None):
        self.digits: DigitSource = load_digits(data_dir, download=download)
        self.backbone = load_backbone(backbone, mean_image=mean_image)
        if not self.backbone.is_calibrated:
            these = ", ".join([self.backbone.weights]
                              + ([f"seed {self.backbone.seed}"] if self.backbone.seed is not None else [])
                              + ([f"mean image {self.backbone.mean.file}"] if self.backbone.mean else [])
                              + [self.backbone.architecture])
            warnings.warn(f"the presets were calibrated on the untrained Table S1 features drawn from "
                          f"seed 0 (the default backbone; docs/calibration.md), not on these ({these}): "
                          "their lr, alpha and feature scale may not give the paper's regimes here. "
                          "The report says so too.", stacklevel=2)
        self.cache = FeatureCache(cache_dir or default_cache_dir(), self.backbone,
                                  digits_fingerprint=source_fingerprint(self.digits), device=device)
        root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        weights = backbone if parse_backbone(backbone).name is not None else _absolute(backbone)
        self.spec = LabSpec(_absolute(data_dir), _absolute(cache_dir), weights, device, download,
                            _absolute(mean_image))
        self.schedules_path = root / protocol.FREQUENCY_SCHEDULES_FILE

    def provenance(self) -> dict:
        """What the runs actually use: backbone and digits. It enters each run's identity."""
        return {"backbone": self.backbone.describe(),
                "mnist": self.digits.describe() | {"fingerprint": self.cache.digits_fingerprint}}

    def frequency_schedules(self, config: RunConfig) -> tuple[Schedules | None, dict]:
        return frequency_schedules(self.schedules_path, config)

    def features(self, config: RunConfig, trials: list[int], progress: bool = True) -> dict:
        return self.cache.ensure(self.digits, required_features(config, trials),
                                 seed=config.dataset_seed, progress=progress)


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


@dataclass(frozen=True)
class LabSpec:
    """How to build a :class:`Lab` again, on a worker: absolute paths and choices only."""

    data_dir: str | None
    cache_dir: str | None
    backbone: str                     # a named choice as given ("untrained-s1:seed=1"), or a path
    device: str
    download: bool
    mean_image: str | None = None

    def build(self) -> Lab:
        """The lab of this spec, built once per process (a worker takes many trial batches)."""
        if self not in _LABS:
            _LABS[self] = Lab(data_dir=self.data_dir, cache_dir=self.cache_dir, backbone=self.backbone,
                              device=self.device, download=self.download, mean_image=self.mean_image)
        return _LABS[self]


_LABS: dict[LabSpec, Lab] = {}


def _absolute(path) -> str | None:
    return None if path is None else str(Path(path).expanduser().absolute())


@dataclass(frozen=True)
class Job:
    """What a worker needs to train trials of one run and save them into its run folder."""

    config: RunConfig
    out: str                          # absolute: the folder holding the run folder
    provenance: dict                  # the driver's; a worker's lab must have the same identity
    schedules: Schedules | None
    trials: tuple[int, ...]           # every trial the run asks for
    trial_batch: int = 1              # trials trained at once, stacked (trial_batch_size)


def run_experiment(config: RunConfig, lab: Lab, out: str | os.PathLike, progress: bool = True,
                   executor=None, trial_batch: int | None = None,
                   memory_budget: float | None = None) -> RunResult:
    """Train the trials of ``config`` that the run folder lacks and save each batch as it finishes.

    ``executor``: None trains here; an object with ``run(job, lab, bar)`` (e.g.
    :class:`metaplastic.executors.RayExecutor`) sends them elsewhere. Either way, trials that
    another writer holds are waited for, so the result covers every trial asked for.
    ``trial_batch``: trials stacked into one model (default: as many as ``memory_budget`` bytes
    allow, :func:`trial_batch_size`). A trial's records do not depend on its batch.
    """
    start = time.perf_counter()
    _keep_heap(config)   # the feature extraction too
    provenance, schedules = lab.provenance(), None
    if EXPERIMENTS[config.experiment].kind == "frequency":   # the schedules used are provenance too
        schedules, provenance["frequency_schedules"] = lab.frequency_schedules(config)
    store = RunStore(out, config, provenance)
    asked = tuple(range(config.trials))
    batch = trial_batch or trial_batch_size(config, memory_budget)
    if config.dropout > 0:   # masks come from one stream per stacked model: alone, a trial redraws them
        batch = 1
    job = Job(config, str(Path(out).expanduser().absolute()), provenance, schedules, asked, batch)
    trained: list[int] = []
    store.records()   # reads every trial file once: a damaged one is set aside and trained again
    if store.finished_trials() != set(asked):
        check_resources(config, lab)
        if executor is None:   # workers elsewhere read the shared cache or extract their own
            lab.features(config, sorted(set(asked) - store.finished_trials()), progress=progress)
        with _progress(progress) as bar:
            if executor is not None:
                trained += executor.run(job, lab, bar)
            trained += work(job, lab, store, bar=bar, wait=True)
    table = store.refresh_view()
    summary = store.write_summary(summarize(table)) if table is not None else None
    return RunResult(store, table, summary, sorted(trained), time.perf_counter() - start)


def _keep_heap(config: RunConfig) -> None:
    """On the CPU, reuse freed heap memory for the stacked tensors (metaplastic._memory; the
    engine trims it when much of it is free)."""
    if config.device == "cpu":
        keep_freed_memory()


def work(job: Job, lab: Lab, store: RunStore | None = None, *, trials=None, bar=None,
         wait: bool = False, poll_s: float = 1.0) -> list[int]:
    """Train the unfinished ``trials`` (default: the job's) that no live writer holds,
    ``job.trial_batch`` at a time stacked in one model, saving each trial of a batch as soon as
    the batch ends. With ``wait``, then wait for those held by others, taking over any whose
    writer dies. Returns the trials trained here."""
    _keep_heap(job.config)   # here too: a Ray worker trains through this function only
    if run_identity(job.config, lab.provenance() | _schedules_part(job)) != \
            run_identity(job.config, job.provenance):
        raise DataError(f"this worker ({socket.gethostname()}) has other MNIST digits or backbone "
                        "weights than the driver; give every machine the same --data-dir and --backbone")
    store = store or RunStore(job.out, job.config, job.provenance, create=False)
    trials = job.trials if trials is None else tuple(trials)
    trained: list[int] = []
    task = bar.add_task(f"{job.config.experiment} trials", total=len(job.trials)) if bar else None
    steps = bar.add_task("presentations", total=None) if bar else None
    while True:
        finished = store.finished_trials()
        if bar is not None:
            bar.update(task, completed=len(finished & set(job.trials)))
        todo = [t for t in trials if t not in finished]
        if not todo:
            return trained
        mine = _lock_batch(store, todo, job.trial_batch)
        if not mine:
            if not wait:
                return trained
            time.sleep(poll_s)   # every remaining trial is held by a live writer
            continue
        with store.holding(mine):
            # Finished between our look and our lock: not trained again.
            mine = [t for t in mine if not store.trial_path(t).exists()]
            if mine:
                trained += _train_batch(job, lab, store, mine, bar, steps)
        store.refresh_view()


def _lock_batch(store: RunStore, todo: list[int], size: int) -> list[int]:
    """Up to ``size`` of the ``todo`` trials, locked for this process, in order."""
    mine: list[int] = []
    for t in todo:
        if len(mine) == size:
            break
        if store.lock(t):
            mine.append(t)
    return mine


def _train_batch(job: Job, lab: Lab, store: RunStore, batch: list[int], bar, steps) -> list[int]:
    """Train ``batch`` stacked, then write each trial's records (its share of the time)."""
    features = lab.features(job.config, batch, progress=False)
    source = lambda name, split, n: features[(name, split)]  # noqa: E731
    if bar is not None:
        label = f"trial {batch[0]}" if len(batch) == 1 else f"trials {batch[0]}-{batch[-1]}"
        bar.reset(steps, description=f"{label} presentations")
    start, costs = time.perf_counter(), {}
    records = run_trials(job.config, source, batch, schedules=job.schedules, costs=costs,
                         on_presentation=None if bar is None else lambda k, n: bar.update(
                             steps, completed=k, total=n))
    seconds = (time.perf_counter() - start) / len(batch)
    return [t for t in batch
            if store.write_trial(t, records[records.trial == t].reset_index(drop=True), seconds, costs)]


def _schedules_part(job: Job) -> dict:
    part = job.provenance.get("frequency_schedules")
    return {} if part is None else {"frequency_schedules": part}


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), disable=not enabled)
