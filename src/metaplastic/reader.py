"""The one way to read a run folder: :func:`read_run` gives its records, settings, provenance,
versions, training time and what each learner cost.

Reading is pure: nothing here trains, imports the engine or writes into the folder. The trial
files are the truth (``records.parquet`` is only a merged view, read when a folder has no trial
files, as a copied or older folder may not); a folder written before a rename reads in today's
names (the records' ``profile`` column as ``learner``, the config's ``profiles`` as ``learners``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from metaplastic.records import missing_columns, upgrade
from metaplastic.results import TRIALS_DIR, RunFolderError, merge_trials, trial_notes

#: The cost figures a trial note holds per learner (metaplastic.engine.costs_of).
COST_FIELDS = ("state_bytes_per_weight", "stored_examples", "stored_bytes", "seconds_per_presentation")


@dataclass(frozen=True)
class Run:
    """One run folder, read."""

    folder: Path
    config: dict                 # every setting (config.json), learners by name under "learners"
    provenance: dict             # backbone, MNIST source, frequency schedules actually used
    versions: dict               # package versions of the writer
    records: pd.DataFrame        # one row per (trial, learner, presentation, item)
    seconds: float | None        # training time of every trial, all writers together
    costs: dict[str, dict] = field(default_factory=dict)   # per learner; empty if never measured

    @property
    def experiment(self) -> str:
        return self.config["experiment"]

    @property
    def trials(self) -> list[int]:
        return sorted(int(t) for t in self.records["trial"].unique())

    @property
    def learners(self) -> list[str]:
        return list(self.config["learners"])


def read_run(run_dir: str | os.PathLike) -> Run:
    """Read a run folder; :class:`~metaplastic.results.RunFolderError` naming what is wrong if it
    cannot be read."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise RunFolderError(f"{folder} is not a run folder (not a folder)")
    saved = _read_config(folder)
    records = _read_records(folder)
    notes = trial_notes(folder / TRIALS_DIR) if (folder / TRIALS_DIR).is_dir() else {}
    config = dict(saved["config"])
    config.setdefault("learners", config.get("profiles", []))
    config.setdefault("learner_settings", [])
    return Run(folder, config, saved.get("provenance", {}), saved.get("versions", {}), records,
               _seconds(folder, notes), _costs(notes))


def _read_config(folder: Path) -> dict:
    try:
        saved = json.loads((folder / "config.json").read_text())
        saved["config"]["experiment"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RunFolderError(f"{folder / 'config.json'} is missing or damaged ({type(error).__name__}); "
                             "re-run the experiment to rewrite it") from None
    return saved


def _read_records(folder: Path) -> pd.DataFrame:
    table = merge_trials(folder / TRIALS_DIR, set_aside=False) if (folder / TRIALS_DIR).is_dir() else None
    if table is None and (folder / "records.parquet").is_file():
        try:
            table = upgrade(pd.read_parquet(folder / "records.parquet"))
        except Exception as error:   # truncated or foreign file: pyarrow raises several kinds
            first = str(error).splitlines()[0][:120] if str(error) else ""
            raise RunFolderError(f"{folder / 'records.parquet'} cannot be read ({type(error).__name__}: "
                                 f"{first}); re-run the experiment to rebuild it") from None
    if table is None:
        raise RunFolderError(f"{folder} is not a run folder (no records.parquet and no finished trials)")
    missing = missing_columns(table)
    if missing or table.empty:
        raise RunFolderError(f"{folder} does not hold a results table of this program "
                             f"({'no rows' if table.empty else 'missing columns ' + ', '.join(missing)})")
    return table


def _seconds(folder: Path, notes: dict[int, dict]) -> float | None:
    """The trials' training seconds from their notes; else summary.json's figure, if any."""
    seconds = [note.get("seconds") for note in notes.values()]
    seconds = [float(s) for s in seconds if isinstance(s, (int, float))]
    if seconds:
        return float(sum(seconds))
    try:
        return json.loads((folder / "summary.json").read_text()).get("seconds")
    except (OSError, ValueError, AttributeError):
        return None


def _costs(notes: dict[int, dict]) -> dict[str, dict]:
    """Per learner, the mean over trials of each cost figure their notes hold."""
    gathered: dict[str, dict[str, list[float]]] = {}
    for note in notes.values():
        costs = note.get("costs")
        for learner, figures in (costs.items() if isinstance(costs, dict) else []):
            for name in COST_FIELDS:
                value = figures.get(name) if isinstance(figures, dict) else None
                if isinstance(value, (int, float)):
                    gathered.setdefault(learner, {}).setdefault(name, []).append(float(value))
    return {learner: {name: float(np.mean(values)) for name, values in figures.items()}
            for learner, figures in gathered.items() if set(figures) == set(COST_FIELDS)}
