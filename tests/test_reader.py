"""The one reader of run folders: records, settings, costs; pure; older folders read the same."""

import json
import shutil

import pandas as pd
import pytest

from metaplastic.lab import run_experiment
from metaplastic.reader import read_run
from metaplastic.records import RECORD_COLUMNS
from metaplastic.results import RunFolderError


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory, fake_lab, tiny_config):
    config = tiny_config(learners="hybrid,conventional,ewc,replay:buffer=7")
    result = run_experiment(config, fake_lab, tmp_path_factory.mktemp("runs"), progress=False)
    return result.store.path, result.table


def _snapshot(folder):
    return {p.relative_to(folder): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_read_run_gives_records_settings_and_costs(run_folder):
    folder, table = run_folder
    run = read_run(folder)
    assert run.records.equals(table)
    assert run.experiment == "serial-position" and run.trials == [0, 1]
    assert run.learners == ["hybrid", "conventional", "ewc", "replay:buffer=7"]
    assert run.seconds > 0
    assert set(run.costs) == set(run.learners)
    assert run.costs["replay:buffer=7"]["stored_examples"] == 7
    assert run.costs["ewc"]["state_bytes_per_weight"] == 8.0          # Fisher and anchor, float32
    assert run.costs["hybrid"]["state_bytes_per_weight"] > 0
    assert all(c["seconds_per_presentation"] > 0 for c in run.costs.values())


def test_reading_writes_nothing(run_folder):
    folder, _ = run_folder
    before = _snapshot(folder)
    read_run(folder)
    assert _snapshot(folder) == before


def test_a_damaged_trial_file_is_left_out_and_left_in_place(run_folder, tmp_path):
    folder, table = run_folder
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    damaged = sorted((copy / "trials").glob("trial-*.parquet"))[0]
    damaged.write_bytes(b"not parquet")
    before = _snapshot(copy)
    with pytest.warns(RuntimeWarning, match="is damaged .* is left out"):
        run = read_run(copy)
    assert _snapshot(copy) == before                       # nothing renamed, nothing written
    assert run.trials == [1] and run.records.equals(table[table.trial == 1].reset_index(drop=True))


def test_a_folder_of_trial_files_alone_reads(run_folder, tmp_path):
    folder, table = run_folder
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    (copy / "records.parquet").unlink()
    (copy / "summary.json").unlink()
    run = read_run(copy)
    assert run.records.equals(table) and run.seconds > 0


def test_a_folder_written_before_the_renames_reads_in_todays_names(run_folder, tmp_path):
    """Records with a ``profile`` column, a config with ``profiles``, no costs, only the view."""
    folder, table = run_folder
    old = tmp_path / "old"
    old.mkdir()
    saved = json.loads((folder / "config.json").read_text())
    saved["config"]["profiles"] = saved["config"].pop("learners")
    (old / "config.json").write_text(json.dumps(saved))
    table.rename(columns={"learner": "profile"}).drop(columns="schedule").to_parquet(
        old / "records.parquet", index=False)
    run = read_run(old)
    assert list(run.records.columns) == RECORD_COLUMNS
    assert run.records.drop(columns="schedule").equals(table.drop(columns="schedule"))
    assert (run.records["schedule"] == "").all()
    assert run.learners == saved["config"]["profiles"] and run.costs == {}


def test_unreadable_folders_are_one_clear_error(tmp_path):
    with pytest.raises(RunFolderError, match="not a folder"):
        read_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match="config.json is missing or damaged"):
        read_run(tmp_path / "empty")
    (tmp_path / "empty" / "config.json").write_text(json.dumps({"config": {"experiment": "x"}}))
    with pytest.raises(RunFolderError, match="no records.parquet and no finished trials"):
        read_run(tmp_path / "empty")
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "empty" / "records.parquet")
    with pytest.raises(RunFolderError, match="missing columns"):
        read_run(tmp_path / "empty")
