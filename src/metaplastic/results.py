"""The results store: one run folder per configuration, safe to kill at any moment and to share
between many writers (processes, machines, Ray workers) at once.

A run folder is named by the experiment, the scale and a hash of what changes the numbers (see
:func:`run_identity`). It holds:

* ``config.json``: every setting, the seed, package and torch versions, the
  device, the backbone weights and the MNIST source actually used;
* ``trials/trial-NNNNNN.parquet``: the records of one finished trial (one row
  per network, presentation and item; the schema is :mod:`metaplastic.records`),
  beside ``trial-NNNNNN.json`` (who trained it, where, in how many seconds, and
  what each learner cost: state bytes per weight, stored examples, seconds per
  presentation, measured while it trained). Each is written to a temporary
  file and then linked into place, the Parquet file last: a trial exists
  only once complete, and a second copy of a trial never replaces the first
  (duplicates are identical and dropped);
* ``locks/trial-NNNNNN``: the writer training that trial now (host, process,
  refreshed while it works), so that two writers do not train one trial;
  a lock whose process is gone, or that was not refreshed for
  :data:`LOCK_LEASE_S` seconds, is taken over;
* ``records.parquet``: the merged view of every trial file, rewritten
  atomically after each trial and checked again after each rewrite, so the
  last writer leaves every trial in it; readers merge the trial files
  (:func:`metaplastic.reader.read_run`), which are the truth;
* ``summary.json``: per learner, what the run measured (:mod:`metaplastic.summary`
  computes it; the store only writes it).

The store stores and locks; it computes no statistics.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import tempfile
import threading
import time
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from metaplastic import __version__
from metaplastic.config import PROTOCOL_VERSION, RunConfig
from metaplastic.records import SORT_COLUMNS, upgrade

TRIALS_DIR = "trials"
LOCKS_DIR = "locks"
#: A lock not refreshed for this long is taken over (its writer is presumed dead). Writers
#: refresh theirs every :data:`HEARTBEAT_S` seconds from a background thread.
LOCK_LEASE_S = 600.0
HEARTBEAT_S = 30.0


class RunFolderError(RuntimeError):
    """The output folder cannot be used; the message says why."""


def run_identity(config: RunConfig, provenance: dict) -> dict:
    """What a run's numbers depend on, and nothing else: the settings (not the number of
    trials), the protocol version, and the *content* of the inputs (MNIST and backbone
    fingerprints, the frequency schedules' checksum), never the paths they were read from."""
    mnist = provenance.get("mnist", {})
    backbone = provenance.get("backbone", {})
    identity = {
        "mnist": {k: mnist.get(k) for k in ("source", "fingerprint", "train_digits", "test_digits")},
        "backbone": {k: backbone.get(k) for k in ("architecture", "fingerprint", "preprocessing",
                                                   "extraction_version")},
    }
    if "frequency_schedules" in provenance:
        schedules = provenance["frequency_schedules"]
        identity["frequency_schedules"] = {k: schedules.get(k) for k in ("source", "sha256", "rows")}
    return identity


def run_name(config: RunConfig, provenance: dict) -> str:
    return f"{config.experiment}-{config.scale}-{config.run_hash(run_identity(config, provenance))}"


class RunStore:
    """One run folder. ``create=False`` opens a folder that must exist already (a worker on
    another machine writing into the driver's run folder)."""

    def __init__(self, out: str | os.PathLike, config: RunConfig, provenance: dict, *,
                 create: bool = True):
        self.config = config
        self.provenance = provenance
        self.path = Path(out).expanduser().absolute() / run_name(config, provenance)
        if not create:
            if not (self.path / "config.json").is_file():
                raise RunFolderError(f"run folder {self.path} is not visible on {socket.gethostname()}: "
                                     "--out must be a folder shared by every machine of the run")
            return
        try:
            for folder in (self.trials_dir, self.locks_dir):
                folder.mkdir(parents=True, exist_ok=True)
            _atomic_write_text(self.path / "config.json", json.dumps(self.describe(), indent=2))
        except OSError as error:
            raise RunFolderError(f"cannot write results under {Path(out)} "
                                 f"({error.strerror or error}); choose another --out") from None

    def describe(self) -> dict:
        return {"config": self.config.to_dict(), "provenance": self.provenance,
                "identity": run_identity(self.config, self.provenance),
                "protocol_version": PROTOCOL_VERSION,
                "versions": {"metaplastic": __version__, "torch": torch.__version__,
                             "numpy": np.__version__, "pandas": pd.__version__,
                             "python": platform.python_version()}}

    @property
    def records_path(self) -> Path:
        return self.path / "records.parquet"

    @property
    def trials_dir(self) -> Path:
        return self.path / TRIALS_DIR

    @property
    def locks_dir(self) -> Path:
        return self.path / LOCKS_DIR

    def trial_path(self, trial: int) -> Path:
        return self.trials_dir / f"trial-{trial:06d}.parquet"

    # ------------------------------------------------------------ reading

    def finished_trials(self) -> set[int]:
        """Trials whose records file exists (complete by construction: it is linked in last)."""
        return set(_trial_files(self.trials_dir))

    def records(self) -> pd.DataFrame | None:
        """Every finished trial's records, merged from the trial files (the truth)."""
        return merge_trials(self.trials_dir)

    def seconds(self) -> float:
        """Training time spent on this folder's trials, by every writer together."""
        total = 0.0
        for note in trial_notes(self.trials_dir).values():
            try:
                total += float(note.get("seconds", 0.0))
            except (TypeError, ValueError):
                continue   # a damaged note loses a timing, never a result
        return total

    # ------------------------------------------------------------ writing

    def write_trial(self, trial: int, records: pd.DataFrame, seconds: float,
                    costs: dict[str, dict] | None = None) -> bool:
        """Save one finished trial, with what its learners cost (``costs``: per learner, as
        :func:`metaplastic.engine.costs_of` measures). Returns False when the trial was already
        saved (by another writer): the first copy stays; a copy with other numbers is reported."""
        target = self.trial_path(trial)
        if target.exists():
            self._check_duplicate(trial, records)
            return False
        note = {"trial": trial, "seconds": seconds, "host": socket.gethostname(), "pid": os.getpid(),
                "finished": time.time(), "torch": torch.__version__, "costs": costs or {}}
        _atomic_write_text(target.with_suffix(".json"), json.dumps(note))
        records = records.sort_values(SORT_COLUMNS, kind="stable").reset_index(drop=True)
        if not _atomic_create(target, lambda name: records.to_parquet(name, index=False)):
            self._check_duplicate(trial, records)
            return False
        return True

    def _check_duplicate(self, trial: int, records: pd.DataFrame) -> None:
        try:
            kept = pd.read_parquet(self.trial_path(trial))
            same = kept.equals(records.sort_values(SORT_COLUMNS, kind="stable").reset_index(drop=True))
        except (OSError, ValueError):
            same = False
        if not same:
            warnings.warn(f"trial {trial} of {self.path.name} was trained twice with different "
                          "numbers (e.g. on different hardware); the first copy is kept",
                          RuntimeWarning, stacklevel=3)

    def refresh_view(self) -> pd.DataFrame | None:
        """Rewrite ``records.parquet`` from the trial files until it holds every one of them.

        Writers race here; each checks after its rename that no trial file appeared meanwhile,
        so the writer that renames last leaves a complete view.
        """
        while True:
            seen = self.finished_trials()
            table = merge_trials(self.trials_dir)
            if table is None:
                return None
            _atomic_write(self.records_path, lambda name, table=table: table.to_parquet(name, index=False))
            if self.finished_trials() == seen:
                return table

    def append(self, new_records: pd.DataFrame, seconds: float = 0.0) -> pd.DataFrame:
        """Save the records of finished trials (one file each) and refresh the merged view."""
        for trial, rows in new_records.groupby("trial", sort=True):
            self.write_trial(int(trial), rows, seconds / new_records["trial"].nunique())
        return self.refresh_view()

    def write_summary(self, summary: dict) -> dict:
        """Write ``summary.json`` (:func:`metaplastic.summary.summarize`) with the folder's training
        seconds; non-finite numbers become null, so the file stays strict JSON."""
        summary = _finite(summary | {"seconds": self.seconds()})
        _atomic_write_text(self.path / "summary.json", json.dumps(summary, indent=2, allow_nan=False))
        return summary

    # ------------------------------------------------------------ locks

    def lock(self, trial: int) -> bool:
        """Take ``trial`` for this process unless a live writer holds it. A lock left by a
        dead process (same host) or not refreshed within the lease is taken over."""
        path = self.locks_dir / f"trial-{trial:06d}"
        mine = {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex,
                "since": time.time()}
        text = json.dumps(mine)
        if _atomic_create(path, lambda name: Path(name).write_text(text)):   # complete or absent
            return True
        if not self._stale(path):
            return False
        _atomic_write_text(path, text)                                  # take it over ...
        time.sleep(0.05)
        return _read_lock(path).get("token") == mine["token"]           # ... unless another did too

    def _stale(self, path: Path) -> bool:
        held = _read_lock(path)
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return True
        if held.get("host") == socket.gethostname() and isinstance(held.get("pid"), int):
            if held["pid"] == os.getpid():
                return False
            return not _alive(held["pid"])
        # Another host, or a lock still being written (empty for a moment): trust the lease.
        return age > LOCK_LEASE_S

    def locked_by_others(self, trials) -> list[int]:
        return [t for t in trials if (self.locks_dir / f"trial-{t:06d}").exists()
                and not self._stale(self.locks_dir / f"trial-{t:06d}")]

    def release(self, trial: int) -> None:
        path = self.locks_dir / f"trial-{trial:06d}"
        held = _read_lock(path)
        if held.get("pid") == os.getpid() and held.get("host") == socket.gethostname():
            path.unlink(missing_ok=True)

    @contextmanager
    def holding(self, trials):
        """Refresh the locks of ``trials`` in the background while the caller trains them,
        and release them afterwards (a kill leaves them; they go stale)."""
        stop = threading.Event()

        def beat():
            while not stop.wait(HEARTBEAT_S):
                for t in trials:
                    try:
                        os.utime(self.locks_dir / f"trial-{t:06d}")
                    except OSError:
                        pass

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            for t in trials:
                self.release(t)


def _trial_files(folder: Path) -> dict[int, Path]:
    found = {}
    for path in folder.glob("trial-*.parquet"):
        number = path.stem.removeprefix("trial-")
        if number.isdigit():
            found[int(number)] = path
    return found


def trial_notes(folder: Path) -> dict[int, dict]:
    """The notes beside the trial files (``trial-NNNNNN.json``), by trial; a damaged note is left
    out (it loses a timing, never a result)."""
    notes = {}
    for path in folder.glob("trial-*.json"):
        number = path.stem.removeprefix("trial-")
        try:
            note = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if number.isdigit() and isinstance(note, dict):
            notes[int(number)] = note
    return notes


def merge_trials(folder: Path, *, set_aside: bool = True) -> pd.DataFrame | None:
    """The records of every trial file in ``folder``, in the order of one writer's table.

    A trial file that cannot be read is left out with a warning. The writer (``set_aside``) also
    renames it ``*.damaged`` so that its trial is trained again; the reader leaves the folder as
    it found it."""
    tables = []
    for trial, path in sorted(_trial_files(folder).items()):
        try:
            tables.append(pd.read_parquet(path))
        except FileNotFoundError:
            continue
        except Exception as error:   # truncated or foreign file: pyarrow raises several kinds
            if set_aside:
                aside = path.with_suffix(".parquet.damaged")
                os.replace(path, aside)
                what = f"moved to {aside.name}, and trial {trial} will be trained again"
            else:
                what = f"trial {trial} is left out (running the experiment again retrains it)"
            warnings.warn(f"{path} is damaged ({type(error).__name__}); {what}",
                          RuntimeWarning, stacklevel=2)
    if not tables:
        return None
    table = upgrade(pd.concat(tables, ignore_index=True))
    return table.sort_values(SORT_COLUMNS, kind="stable").reset_index(drop=True)


def _read_lock(path: Path) -> dict:
    try:
        held = json.loads(path.read_text())
        return held if isinstance(held, dict) else {}
    except (OSError, ValueError):
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _finite(value):
    """``value`` with every non-finite float replaced by None: summary.json stays strict JSON
    (``NaN`` and ``Infinity`` are not JSON, and other readers than Python's refuse them)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _atomic_write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda name: Path(name).write_text(text))


def _temporary(path: Path) -> str:
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)
    handle.close()
    return handle.name


def _atomic_write(path: Path, write) -> None:
    """``write(name)`` fills a temporary file beside ``path``, which is then renamed over it."""
    name = _temporary(path)
    try:
        write(name)
        os.chmod(name, 0o644)  # temporary files are private; results are not
        os.replace(name, path)
    finally:
        Path(name).unlink(missing_ok=True)


def _atomic_create(path: Path, write) -> bool:
    """Like :func:`_atomic_write`, but never replaces an existing ``path``: False if one exists."""
    name = _temporary(path)
    try:
        write(name)
        os.chmod(name, 0o644)
        try:
            os.link(name, path)          # atomic, and fails if the target exists
        except FileExistsError:
            return False
        except OSError:                  # a file system without hard links
            if path.exists():
                return False
            os.replace(name, path)
        return True
    finally:
        Path(name).unlink(missing_ok=True)
