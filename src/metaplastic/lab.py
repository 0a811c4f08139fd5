"""The laboratory: digits -> features -> engine -> results store, for one run.

:func:`run_experiment` is what ``metaplastic run`` calls. It resolves the data
and the backbone once, records what was actually used (provenance), extracts
the features the trials need (cached), then trains the trials that the run
folder does not hold yet, saving after each one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
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
from metaplastic.features import WEIGHT_CHOICES, FeatureCache, load_backbone
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
        weights = backbone if backbone in WEIGHT_CHOICES else _absolute(backbone)
        self.spec = LabSpec(_absolute(data_dir), _absolute(cache_dir), weights, device, download)
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


@dataclass(frozen=True)
class LabSpec:
    """How to build a :class:`Lab` again, on a worker: absolute paths and choices only."""

    data_dir: str | None
    cache_dir: str | None
    backbone: str
    device: str
    download: bool

    def build(self) -> Lab:
        """The lab of this spec, built once per process (a worker takes many trial batches)."""
        if self not in _LABS:
            _LABS[self] = Lab(data_dir=self.data_dir, cache_dir=self.cache_dir, backbone=self.backbone,
                              device=self.device, download=self.download)
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


class ResourceError(RuntimeError):
    """A run would not fit this machine's memory or disk; the message says what to lower."""


def run_experiment(config: RunConfig, lab: Lab, out: str | os.PathLike, progress: bool = True,
                   executor=None) -> RunResult:
    """Train the trials of ``config`` that the run folder lacks and save each as it finishes.

    ``executor``: None trains here; an object with ``run(job, lab, bar)`` (e.g.
    :class:`metaplastic.executors.RayExecutor`) sends them elsewhere. Either way, trials that
    another writer holds are waited for, so the result covers every trial asked for.
    """
    start = time.perf_counter()
    provenance, schedules = lab.provenance(), None
    if EXPERIMENTS[config.experiment].kind == "frequency":   # the schedules used are provenance too
        schedules, provenance["frequency_schedules"] = lab.frequency_schedules(config)
    store = RunStore(out, config, provenance)
    asked = tuple(range(config.trials))
    job = Job(config, str(Path(out).expanduser().absolute()), provenance, schedules, asked)
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
    summary = store.write_summary(table) if table is not None else None
    return RunResult(store, table, summary, sorted(trained), time.perf_counter() - start)


def work(job: Job, lab: Lab, store: RunStore | None = None, *, trials=None, bar=None,
         wait: bool = False, poll_s: float = 1.0) -> list[int]:
    """Train the unfinished ``trials`` (default: the job's) that no live writer holds, one at a
    time, saving each. With ``wait``, then wait for those held by others, taking over any whose
    writer dies. Returns the trials trained here."""
    from metaplastic.results import run_identity

    if run_identity(job.config, lab.provenance() | _schedules_part(job)) != \
            run_identity(job.config, job.provenance):
        raise DataError(f"this worker ({socket.gethostname()}) has other MNIST digits or backbone "
                        "weights than the driver; give every machine the same --data-dir and --backbone")
    store = store or RunStore(job.out, job.config, job.provenance, create=False)
    trials = job.trials if trials is None else tuple(trials)
    features: dict = {}
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
        mine = next((t for t in todo if store.claim(t)), None)
        if mine is None:
            if not wait:
                return trained
            time.sleep(poll_s)   # every remaining trial is held by a live writer
            continue
        with store.holding([mine]):
            if store.trial_path(mine).exists():   # finished between our look and our claim
                continue
            features.update(lab.features(job.config, [mine], progress=False))
            source = lambda name, split, n: features[(name, split)]  # noqa: E731
            if bar is not None:
                bar.reset(steps, description=f"trial {mine} presentations")
            trial_start = time.perf_counter()
            records = run_trials(job.config, source, [mine], schedules=job.schedules,
                                 on_presentation=None if bar is None else lambda k, n: bar.update(
                                     steps, completed=k, total=n))
            if store.write_trial(mine, records, time.perf_counter() - trial_start):
                trained.append(mine)
        store.refresh_view()


def _schedules_part(job: Job) -> dict:
    part = job.provenance.get("frequency_schedules")
    return {} if part is None else {"frequency_schedules": part}


def estimate_bytes(config: RunConfig) -> dict[str, int]:
    """Rough peak memory of training one trial, and disk of its features (float16 cache)."""
    items, dim = config.items, 9216
    networks = len(config.profiles)
    weights = networks * (dim * config.width + config.width * config.width + config.width * items)
    features = items * (config.train_per_class + config.test_per_class) * dim
    return {
        # features as float32 about three times over (stacked, normalised, on the device), the
        # weights about six times (weights, gradients, initial weights, S, flexibility, spare).
        "memory": 4 * (3 * features + 6 * weights
                       + networks * max(config.batch_size, 2048) * (dim + 2 * config.width)),
        "disk": 2 * features,
    }


def check_resources(config: RunConfig, lab) -> None:
    """Refuse settings whose one trial cannot fit this machine, naming what to lower."""
    need = estimate_bytes(config)
    have = _memory_bytes(config.device)
    if have and need["memory"] > have:
        raise ResourceError(
            f"one trial needs about {need['memory'] / 2**30:.1f} GiB of memory ({config.device} has "
            f"{have / 2**30:.1f} GiB): lower --width ({config.width}), --train-per-class "
            f"({config.train_per_class}) or --test-per-class ({config.test_per_class})")
    root = getattr(getattr(lab, "cache", None), "root", None)
    if root is not None:
        free = shutil.disk_usage(root).free
        if need["disk"] > free:
            raise ResourceError(
                f"the features of one trial need about {need['disk'] / 2**30:.1f} GiB in the feature "
                f"cache {root}, which has {free / 2**30:.1f} GiB free: lower --train-per-class "
                f"({config.train_per_class}) or --test-per-class ({config.test_per_class}), or "
                "choose another --cache-dir")


def _memory_bytes(device: str) -> int | None:
    if device.startswith("cuda"):
        import torch

        try:
            return int(torch.cuda.mem_get_info(torch.device(device))[1])
        except (RuntimeError, AssertionError):
            return None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), disable=not enabled)
