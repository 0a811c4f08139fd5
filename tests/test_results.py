import json

import pandas as pd
import pytest

from metaplastic import lab as lab_module
from metaplastic.lab import run_experiment
from metaplastic.reader import read_run
from metaplastic.results import RunFolderError, RunStore
from metaplastic.summary import summarize


def test_run_folder_contents(tmp_path, tiny_config, fake_lab):
    config = tiny_config(trials=2)
    result = run_experiment(config, fake_lab, tmp_path, progress=False)
    folder = result.store.path
    assert folder.parent == tmp_path and folder.name.startswith("serial-position-quick-")
    saved = json.loads((folder / "config.json").read_text())
    assert saved["config"]["seed"] == 3 and saved["provenance"]["backbone"]["weights"] == "synthetic"
    assert saved["config"]["learners"] == ["conventional", "stable", "hybrid"]
    assert "torch" in saved["versions"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["trials"] == [0, 1] and summary["seconds"] > 0
    assert set(summary["learners"]) == {"conventional", "stable", "hybrid"}
    for learner, entry in summary["learners"].items():
        final = result.table[(result.table.learner == learner) & (result.table.presentation == 4)]
        counts = final.groupby("trial")["memorized"].sum()
        assert entry["memorized_per_trial"] == counts.tolist()
        assert entry["memorized_mean"] == pytest.approx(counts.mean())
        assert entry["memorized_sd"] == pytest.approx(counts.std(ddof=1))
        by_item = final.groupby("item")["performance"]
        assert entry["final_performance_mean"] == pytest.approx(by_item.mean().tolist())
        assert entry["final_performance_sd"] == pytest.approx(by_item.std(ddof=1).tolist())
    table = pd.read_parquet(folder / "records.parquet")
    assert set(table["trial"]) == {0, 1}
    pd.testing.assert_frame_equal(read_run(folder).records, table)
    assert sorted(p.name for p in (folder / "trials").iterdir()) == [
        "trial-000000.json", "trial-000000.parquet", "trial-000001.json", "trial-000001.parquet"]
    assert (folder / "locks").is_dir() and not list((folder / "locks").iterdir())   # released


def test_resume_after_a_kill_gives_the_same_table(tmp_path, monkeypatch, tiny_config, fake_lab):
    config = tiny_config(trials=3)
    whole = run_experiment(config, fake_lab, tmp_path / "whole", progress=False).table

    real = lab_module.run_trials
    calls = []

    def killed_on_second_trial(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies in the middle of trial 1
        return real(*args, **kwargs)

    monkeypatch.setattr(lab_module, "run_trials", killed_on_second_trial)
    with pytest.raises(KeyboardInterrupt):   # one trial per batch here (batches: test_batching.py)
        run_experiment(config, fake_lab, tmp_path / "killed", progress=False, trial_batch=1)
    store = RunStore(tmp_path / "killed", config, fake_lab.provenance())
    assert store.finished_trials() == {0}                   # trial 0 saved, nothing half-written
    assert not list(store.path.rglob(".*"))                 # no temporary file left behind
    assert not list(store.locks_dir.iterdir())              # the killed trial's lock released
    monkeypatch.setattr(lab_module, "run_trials", real)
    resumed = run_experiment(config, fake_lab, tmp_path / "killed", progress=False)
    assert resumed.trained == [1, 2]
    pd.testing.assert_frame_equal(resumed.table, whole)


def test_more_trials_extend_the_same_folder(tmp_path, tiny_config, fake_lab):
    first = run_experiment(tiny_config(trials=1), fake_lab, tmp_path, progress=False)
    second = run_experiment(tiny_config(trials=2), fake_lab, tmp_path, progress=False)
    assert first.store.path == second.store.path and second.trained == [1]
    other = run_experiment(tiny_config(trials=1, lr=0.01), fake_lab, tmp_path, progress=False)
    assert other.store.path != first.store.path


def test_unwritable_out_dir(tmp_path, tiny_config):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RunFolderError, match="choose another --out"):
        RunStore(blocker / "runs", tiny_config(), {})


def test_frequency_schedule_source_is_resolved_and_recorded(tmp_path, shared_data):
    from metaplastic.data.mnist import DataError
    from metaplastic.experiments import make_config
    from metaplastic.lab import frequency_schedules

    config = make_config("frequency", "quick")
    schedules, described = frequency_schedules(shared_data / "frequency_profiles.csv", config)
    assert described["source"] == "published" and described["rows"] == list(range(1, 18))
    assert len(schedules) == 17 and len(described["sha256"]) == 64
    with pytest.warns(UserWarning, match="generates schedules"):
        schedules, described = frequency_schedules(tmp_path / "absent.csv", config)
    assert schedules is None and described["source"] == "generated" and "not found" in described["reason"]
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,x\n")
    with pytest.raises(DataError, match="row 1"):
        frequency_schedules(bad, config)
    asked = make_config("frequency", "quick", frequency_schedules="generated")
    assert frequency_schedules(shared_data / "frequency_profiles.csv", asked)[0] is None


def test_summary_is_strict_json_when_a_comparison_has_no_spread(tmp_path, tiny_config):
    # Every hybrid trial keeps all 4 items, every conventional trial 1: both samples constant,
    # t is infinite. summary.json must still be JSON that strict readers accept.
    rows = []
    for trial in (0, 1, 2):
        for learner, kept in (("hybrid", 4), ("conventional", 1)):
            for item in range(1, 5):
                rows.append(dict(learner=learner, trial=trial, seed=0, presentation=4, item=item,
                                 n_items=4, performance=0.9 if item <= kept else 0.2,
                                 memorized=item <= kept))
    store = RunStore(tmp_path / "runs", tiny_config(), {})
    written = store.write_summary(summarize(pd.DataFrame(rows)))

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    summary = json.loads((store.path / "summary.json").read_text(), parse_constant=refuse)
    comparison = summary["comparisons"]["memorized hybrid vs conventional"]
    assert comparison["t"] is None and comparison["p"] == 0.0 and "no spread" in comparison["note"]
    assert summary == written and summary["seconds"] == 0.0            # no trial trained here
    assert summary["learners"]["hybrid"]["memorized_per_trial"] == [4, 4, 4]
