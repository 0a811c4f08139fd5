"""The results store: one run folder per configuration, safe to kill at any moment.

A run folder is named by the experiment, the scale and a hash of the
configuration and provenance (all but the number of trials, so asking for
more trials extends a run). It holds:

* ``config.json``: every setting, the seed, package and torch versions, the
  device, the backbone weights and the MNIST source actually used;
* ``records.parquet``: one row per (trial, network, presentation, item),
  rewritten atomically (temporary file, then rename) after each finished
  trial, so a kill loses at most the trial in progress;
* ``summary.json``: per profile, the statistics the report reads.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from metaplastic import __version__, stats
from metaplastic.config import RunConfig
from metaplastic.tables import final_rows


class RunFolderError(RuntimeError):
    """The output folder cannot be used; the message says why."""


class RunStore:
    def __init__(self, out: str | os.PathLike, config: RunConfig, provenance: dict):
        self.config = config
        self.provenance = provenance
        self.path = Path(out).expanduser() / (f"{config.experiment}-{config.scale}-"
                                              f"{config.run_hash(provenance)}")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            _atomic_write_text(self.path / "config.json", json.dumps(self.describe(), indent=2))
        except OSError as error:
            raise RunFolderError(f"cannot write results under {Path(out)} "
                                 f"({error.strerror or error}); choose another --out") from None

    def describe(self) -> dict:
        return {"config": self.config.to_dict(), "provenance": self.provenance,
                "versions": {"metaplastic": __version__, "torch": torch.__version__,
                             "numpy": np.__version__, "pandas": pd.__version__,
                             "python": platform.python_version()}}

    @property
    def records_path(self) -> Path:
        return self.path / "records.parquet"

    def records(self) -> pd.DataFrame | None:
        if not self.records_path.exists():
            return None
        return pd.read_parquet(self.records_path)

    def finished_trials(self) -> set[int]:
        records = self.records()
        return set() if records is None else set(int(t) for t in records["trial"].unique())

    def append(self, new_records: pd.DataFrame) -> pd.DataFrame:
        """Add a finished trial's records: old + new written to a temporary file, then renamed."""
        old = self.records()
        table = new_records if old is None else pd.concat([old, new_records], ignore_index=True)
        table = table.sort_values(["trial", "profile", "presentation", "item"], kind="stable")
        table = table.reset_index(drop=True)
        handle = tempfile.NamedTemporaryFile(dir=self.path, prefix=".records-", suffix=".parquet",
                                             delete=False)
        handle.close()
        try:
            table.to_parquet(handle.name, index=False)
            os.chmod(handle.name, 0o644)  # temporary files are private; results are not
            os.replace(handle.name, self.records_path)
        finally:
            Path(handle.name).unlink(missing_ok=True)
        return table

    def seconds(self) -> float:
        """Training time already spent on this folder's trials (from summary.json)."""
        path = self.path / "summary.json"
        return float(json.loads(path.read_text()).get("seconds", 0.0)) if path.exists() else 0.0

    def write_summary(self, table: pd.DataFrame, seconds: float | None = None) -> dict:
        summary = summarize(table) | {"seconds": self.seconds() if seconds is None else seconds}
        _atomic_write_text(self.path / "summary.json", json.dumps(summary, indent=2))
        return summary


def summarize(table: pd.DataFrame) -> dict:
    """Per profile: memorized items and final performance per item (mean, SD), and comparisons."""
    final = final_rows(table)
    n_items = int(table["n_items"].iloc[0])
    summary: dict = {"trials": sorted(int(t) for t in table["trial"].unique()),
                     "seed": int(table["seed"].iloc[0]), "n_items": n_items,
                     "chance": 1.0 / n_items, "profiles": {}}
    memorized = {}
    for profile, rows in final.groupby("profile", sort=False):
        per_trial = rows.pivot(index="trial", columns="item", values="performance")
        counts = rows.groupby("trial")["memorized"].sum().astype(float)
        memorized[profile] = counts.to_numpy()
        item_p = [stats.above_chance(per_trial[i].to_numpy(), 1.0 / n_items)[1]
                  if len(per_trial) > 1 else None for i in per_trial.columns]
        summary["profiles"][profile] = {
            "memorized_mean": float(counts.mean()),
            "memorized_sd": float(counts.std(ddof=1)) if len(counts) > 1 else 0.0,
            "memorized_per_trial": counts.astype(int).tolist(),
            "final_performance_mean": per_trial.mean().tolist(),
            "final_performance_sd": per_trial.std(ddof=1).fillna(0.0).tolist(),
            "final_item_above_chance_p": item_p,
        }
    summary["comparisons"] = _comparisons(memorized)
    return summary


def _comparisons(memorized: dict[str, np.ndarray]) -> dict:
    """Two-sample t-tests of memorized counts between the paper's profiles, where present."""
    out = {}
    for a, b in (("hybrid", "conventional"), ("hybrid", "stable")):
        if a in memorized and b in memorized and len(memorized[a]) > 1:
            if np.ptp(np.concatenate([memorized[a], memorized[b]])) == 0:
                continue  # identical constant samples: no test to run
            t, p = stats.compare(memorized[a], memorized[b])
            out[f"memorized {a} vs {b}"] = {"t": t, "p": p, "test": "two-sample t-test"}
    return out


def _atomic_write_text(path: Path, text: str) -> None:
    handle = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False)
    try:
        with handle:
            handle.write(text)
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, path)
    finally:
        Path(handle.name).unlink(missing_ok=True)
