"""Issue 12: many writers on one run folder, kills at any moment, identity from content, Ray, and
one clear line for every bad input (docs/reliability.md lists each case and its test here)."""

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch

from metaplastic import config as config_module
from metaplastic.cli import main
from metaplastic.lab import run_experiment
from metaplastic.reader import read_run
from metaplastic.results import LOCK_LEASE_S, merge_trials, run_name

ROOT = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------ many writers

WRITER = ("import json, sys\n"
          "from metaplastic.lab import run_experiment\n"
          "from tests.conftest import FakeLab, make_tiny_config\n"
          "result = run_experiment(make_tiny_config(trials=6), FakeLab(), sys.argv[1], progress=False)\n"
          "print(json.dumps(result.trained))\n")


@pytest.mark.slow
def test_two_processes_on_one_folder_train_every_trial_once(tmp_path, tiny_config, fake_lab):
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "shared")], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [w.communicate(timeout=900) for w in writers]
    assert [w.returncode for w in writers] == [0, 0], [err[-2000:] for _, err in outputs]
    trained = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sorted(trained[0] + trained[1]) == list(range(6))    # every trial once, by one of them
    single = run_experiment(tiny_config(trials=6), fake_lab, tmp_path / "single", progress=False)
    (folder,) = (tmp_path / "shared").iterdir()
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "records.parquet"), single.table)
    pd.testing.assert_frame_equal(merge_trials(folder / "trials"), single.table)
    assert (folder / "locks").is_dir() and not list((folder / "locks").iterdir())   # both released


@pytest.mark.slow
def test_kill_at_random_moments_resumes_to_identical_records(tmp_path):
    """scripts/kill_resume.py: 20 SIGKILLs at random moments, every round checked."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "kill_resume.py"), "--kills", "20",
                           "--trials", "3", "--out", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    kills = re.search(r"(\d+) SIGKILLs in (\d+) round", done.stdout)
    assert kills and int(kills[1]) >= 20 and "rounds that differ: 0" in done.stdout, done.stdout
    assert done.stdout.count("records identical to the uninterrupted run: True") == int(kills[2])


@pytest.fixture
def stored(tmp_path, tiny_config, fake_lab):
    """``stored(folder, trials=2) -> (store, table)``: a tiny run trained into ``folder``."""
    def train(folder=tmp_path, trials=2):
        result = run_experiment(tiny_config(trials=trials), fake_lab, folder, progress=False)
        return result.store, result.table
    return train


def test_a_second_copy_of_a_trial_is_dropped(stored):
    store, table = stored()
    rows = table[table.trial == 1]
    assert store.write_trial(1, rows.sample(frac=1, random_state=0), 1.0) is False   # same numbers
    changed = rows.assign(performance=rows.performance + 0.5)
    with pytest.warns(RuntimeWarning, match="trained twice with different numbers"):
        assert store.write_trial(1, changed, 1.0) is False
    pd.testing.assert_frame_equal(store.records(), table)                # the first copy is kept


def test_locks_of_dead_or_silent_writers_are_taken_over(stored):
    store, _ = stored(trials=1)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    holder = store.locks_dir / "trial-000005"
    host = __import__("socket").gethostname()
    holder.write_text(json.dumps({"host": host, "pid": gone.pid}))
    assert store.lock(5)                                    # its process is gone
    holder.write_text(json.dumps({"host": host, "pid": os.getppid()}))
    assert not store.lock(5)                                # a live writer holds it
    assert store.locked_by_others([4, 5, 6]) == [5]
    holder.write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    assert not store.lock(5)                                # another machine, refreshed just now
    old = holder.stat().st_mtime - 2 * LOCK_LEASE_S
    os.utime(holder, (old, old))
    assert store.locked_by_others([5]) == []
    assert store.lock(5)                                    # not refreshed within the lease
    assert json.loads(holder.read_text())["pid"] == os.getpid()
    store.release(5)
    assert not holder.exists()


def test_damaged_trial_file_is_set_aside_and_trained_again(tmp_path, stored, tiny_config, fake_lab):
    store, table = stored()
    store.trial_path(1).write_bytes(b"PAR1 not really")
    with pytest.warns(RuntimeWarning, match="damaged"):
        again = run_experiment(tiny_config(trials=2), fake_lab, tmp_path, progress=False)
    assert again.trained == [1] and (store.trials_dir / "trial-000001.parquet.damaged").exists()
    pd.testing.assert_frame_equal(again.table, table)


def test_merged_view_is_rebuilt_from_the_trial_files(stored):
    store, table = stored()
    store.records_path.unlink()                             # killed between a trial and the merge
    pd.testing.assert_frame_equal(read_run(store.path).records, table)
    assert not store.records_path.exists()                  # reading never writes into the folder
    pd.testing.assert_frame_equal(store.refresh_view(), table)      # the store rebuilds it
    pd.testing.assert_frame_equal(pd.read_parquet(store.records_path), table)


# ------------------------------------------------------------------ identity from content


def test_run_hash_ignores_paths_and_follows_the_protocol_version(tmp_path, shared_data, monkeypatch,
                                                                  tiny_config):
    from metaplastic.lab import Lab

    weights = tmp_path / "alexnet.pth"
    torch.save(Lab(data_dir=shared_data, cache_dir=tmp_path / "c", backbone="untrained",
                   download=False).backbone.module.state_dict(), weights)
    monkeypatch.chdir(shared_data.parent)
    config = tiny_config()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_absolute = Lab(data_dir=shared_data, cache_dir=tmp_path / "c", backbone=str(weights),
                          download=False)
        monkeypatch.chdir(tmp_path)
        by_relative = Lab(data_dir=os.path.relpath(shared_data), cache_dir="c", backbone="alexnet.pth",
                          download=False)
    assert by_absolute.provenance() != by_relative.provenance()          # the paths differ ...
    name = run_name(config, by_absolute.provenance())
    assert run_name(config, by_relative.provenance()) == name            # ... the run does not
    with pytest.warns(UserWarning, match="presets were calibrated on the untrained Table S1"):
        untrained = Lab(data_dir=shared_data, cache_dir="c", backbone="untrained", download=False)
    assert run_name(config, untrained.provenance()) == name              # same weights, same run
    monkeypatch.setattr(config_module, "PROTOCOL_VERSION", config_module.PROTOCOL_VERSION + 1)
    assert run_name(config, by_absolute.provenance()) != name


# ------------------------------------------------------------------ Ray


@pytest.mark.slow
def test_ray_executor_gives_the_records_of_the_local_one(tmp_path, shared_data, capsys):
    pytest.importorskip("ray", reason="ray is not installed (pip install 'metaplastic[ray]')")
    argv = ["run", "serial-position", "--items", "3", "--trials", "3", "--width", "8",
            "--train-per-class", "10", "--test-per-class", "5", "--epochs", "1", "--batch-size", "8",
            "--data-dir", str(shared_data), "--cache-dir", str(tmp_path / "cache"),
            "--quiet"]
    assert main(argv + ["--out", str(tmp_path / "local")]) == 0
    assert main(argv + ["--out", str(tmp_path / "ray"), "--executor", "ray", "--workers", "2"]) == 0
    assert "trained 3 new trial(s)" in capsys.readouterr().out
    (local,) = (tmp_path / "local").iterdir()
    (on_ray,) = (tmp_path / "ray").iterdir()
    assert local.name == on_ray.name
    pd.testing.assert_frame_equal(pd.read_parquet(on_ray / "records.parquet"),
                                  pd.read_parquet(local / "records.parquet"))
    notes = [json.loads(p.read_text()) for p in (on_ray / "trials").glob("*.json")]
    assert len(notes) == 3 and all(n["pid"] != os.getpid() for n in notes)   # written by workers


# ------------------------------------------------------------------ bad inputs: one clear line

RUN = ["run", "serial-position"]

BAD_OPTIONS = {
    "trials negative": (RUN + ["--trials", "-1"], "--trials must be between 1 and"),
    "trials absurd": (RUN + ["--trials", "10000000"], "--trials must be between 1 and 1,000,000"),
    "trials not a number": (RUN + ["--trials", "ten"], "invalid int value: 'ten'"),
    "items too few": (RUN + ["--items", "2"], "--items must be between 3 and 45"),
    "seed negative": (RUN + ["--seed", "-1"], "--seed must be between 0 and 2**63-1"),
    "seed beyond 63 bits": (RUN + ["--seed", str(2**64)], "--seed must be between 0 and 2**63-1"),
    "lr nan": (RUN + ["--lr", "nan"], "--lr must be a finite number >= 0, got nan"),
    "lr inf": (RUN + ["--lr", "inf"], "--lr must be a finite number >= 0, got inf"),
    "alpha negative": (RUN + ["--alpha", "-3"], "--alpha must be a finite number >= 0"),
    "feature scale nan": (RUN + ["--feature-scale", "nan"], "--feature-scale must be a finite number"),
    "width zero": (RUN + ["--width", "0"], "--width must be at least 1, got 0"),
    "width beyond memory": (RUN + ["--width", "1000000"], "GiB of memory"),
    "train images beyond memory": (RUN + ["--train-per-class", "100000000"], "GiB of memory"),
    "test images zero": (RUN + ["--test-per-class", "0"], "--test-per-class must be at least 1"),
    "epochs zero": (RUN + ["--epochs", "0"], "--epochs must be at least 1"),
    "epochs absurd": (RUN + ["--epochs", "1000000"], "--epochs must be at most 10,000"),
    "batch size negative": (RUN + ["--batch-size", "-8"], "--batch-size must be at least 1"),
    "device unknown": (RUN + ["--device", "tpu"], "--device must be cpu or cuda"),
    "device malformed": (RUN + ["--device", "cuda:x"], "--device must be cpu or cuda"),
    "address without ray": (RUN + ["--address", "auto"], "--address applies to --executor ray only"),
    "workers without ray": (RUN + ["--workers", "2"], "--workers applies to --executor ray only"),
    "workers zero": (RUN + ["--executor", "ray", "--workers", "0"], "--workers must be between 1"),
    "gpu share above one": (RUN + ["--executor", "ray", "--gpus-per-task", "2"],
                            "--gpus-per-task must be in (0, 1]"),
    "gpu share nan": (RUN + ["--executor", "ray", "--gpus-per-task", "nan"], "--gpus-per-task must be"),
    "empty address": (RUN + ["--executor", "ray", "--address", " "], "--address must name a Ray cluster"),
    "executor unknown": (RUN + ["--executor", "slurm"], "invalid choice: 'slurm'"),
    "reproduce trials zero": (["reproduce", "--trials", "0"], "--trials must be between 1 and"),
    "samples per class zero": (["samples", "--per-class", "0"], "--per-class must be between 1 and 200"),
    "samples per class absurd": (["samples", "--per-class", "100000"], "--per-class must be between"),
    "samples seed negative": (["samples", "--seed", "-2"], "--seed must be between 0 and 2**63-1"),
    "samples empty class": (["samples", "--classes", ""], "unknown class(es) ''"),
    "samples not an image name": (["samples", "--out", "grid.txt"], "give an image file name"),
    "no such command": (["frobnicate"], "invalid choice: 'frobnicate'"),
}


def _one_clear_line(capsys, message, status):
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert status != 0 and message in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("argv, message", BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_bad_option_is_one_clear_line(argv, message, capsys):
    try:
        status = main(argv)
    except SystemExit as exit_:   # argparse's own checks (types, choices)
        status = exit_.code
    _one_clear_line(capsys, message, status)


def _cli(tmp_path, shared_data, *extra):
    return ["run", "serial-position", "--items", "3", "--trials", "1", "--width", "8",
            "--train-per-class", "4", "--test-per-class", "2", "--epochs", "1", "--quiet",
            "--out", str(tmp_path / "runs"), *extra]


def _bad_inputs(tmp_path, shared_data):
    text = tmp_path / "notes.txt"
    text.write_text("not weights")
    listed = tmp_path / "list.pth"
    torch.save([1, 2, 3], listed)
    folder_file = tmp_path / "data-as-file"
    folder_file.write_text("x")
    half = tmp_path / "half" / "MNIST" / "raw"
    half.mkdir(parents=True)
    (half / "train-images-idx3-ubyte").symlink_to(shared_data / "MNIST" / "raw" / "train-images-idx3-ubyte")
    data = ["--data-dir", str(shared_data), "--cache-dir", str(tmp_path / "cache")]
    return {
        "backbone is a text file": (["--backbone", str(text)] + data, "cannot read backbone weights"),
        "backbone is a folder": (["--backbone", str(tmp_path)] + data, "is a folder; give a .pth file"),
        "backbone holds a list": (["--backbone", str(listed)] + data, "is not an AlexNet state dict"),
        "data dir is a file": (["--data-dir", str(folder_file)], "is a file, not a folder"),
        "MNIST half copied": (["--data-dir", str(tmp_path / "half")], "is incomplete"),
        "cache dir is a file": (["--data-dir", str(shared_data), "--cache-dir", str(text)],
                                "feature cache folder"),
    }


BAD_INPUT_NAMES = ["backbone is a text file", "backbone is a folder", "backbone holds a list",
                   "data dir is a file", "MNIST half copied", "cache dir is a file"]


@pytest.mark.parametrize("name", BAD_INPUT_NAMES)
def test_bad_file_or_folder_is_one_clear_line(name, tmp_path, shared_data, capsys, monkeypatch):
    monkeypatch.setattr("metaplastic.features._imagenet_features", _offline)
    extra, message = _bad_inputs(tmp_path, shared_data)[name]
    status = main(_cli(tmp_path, shared_data, *extra))
    _one_clear_line(capsys, message, status)


def _offline():
    from metaplastic.features import BackboneError

    raise BackboneError("offline in tests")


def test_damaged_feature_cache_is_rebuilt(tmp_path, shared_data, capsys):
    argv = _cli(tmp_path, shared_data, "--data-dir", str(shared_data), "--cache-dir",
                str(tmp_path / "cache"))
    assert main(argv) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    expected = pd.read_parquet(run_dir / "records.parquet")
    metas = sorted((tmp_path / "cache").glob("*.json"))
    metas[0].write_text("[1, 2]")                                # not a header
    metas[1].write_text("{truncated")                            # half written
    arrays = sorted((tmp_path / "cache").glob("*.npy"))
    arrays[2].write_bytes(arrays[2].read_bytes()[:100])          # truncated array
    for path in run_dir.glob("trials/*"):
        path.unlink()                                            # train again from the cache
    assert main(argv) == 0
    capsys.readouterr()
    pd.testing.assert_frame_equal(pd.read_parquet(run_dir / "records.parquet"), expected)


def test_bad_run_folders_for_plot_and_report(tmp_path, capsys, stored):
    store, _ = stored(tmp_path / "runs", trials=1)
    garbage = tmp_path / "garbage"            # a run folder's settings, its records damaged
    garbage.mkdir()
    (garbage / "config.json").write_text((store.path / "config.json").read_text())
    (garbage / "records.parquet").write_text("not parquet")
    foreign = tmp_path / "foreign"            # a run folder's settings, another program's table
    foreign.mkdir()
    (foreign / "config.json").write_text((store.path / "config.json").read_text())
    pd.DataFrame({"x": [1]}).to_parquet(foreign / "records.parquet")
    unset = tmp_path / "unset"                # records, but no settings
    unset.mkdir()
    (unset / "records.parquet").write_bytes(store.records_path.read_bytes())
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [(["plot", str(tmp_path / "absent")], "is not a run folder"),
             (["plot", str(a_file)], "is not a run folder"),
             (["plot", str(garbage)], "cannot be read"),
             (["plot", str(foreign)], "does not hold a results table of this program (missing columns"),
             (["plot", str(unset)], "config.json is missing or damaged"),
             (["report", str(garbage)], "cannot be read"),
             (["report", str(store.path), "--out", str(a_file)], "is a file; the report needs a folder")]
    for argv, message in cases:
        _one_clear_line(capsys, message, main(argv))
    (store.path / "config.json").write_text("{")
    _one_clear_line(capsys, "config.json is missing or damaged", main(["plot", str(store.path)]))


def test_ray_unreachable_address_is_one_clear_line(tmp_path, shared_data, capsys):
    pytest.importorskip("ray", reason="ray is not installed (pip install 'metaplastic[ray]')")
    argv = _cli(tmp_path, shared_data, "--data-dir", str(shared_data), "--cache-dir",
                str(tmp_path / "cache"), "--executor", "ray",
                "--address", "auto")
    _one_clear_line(capsys, "--address auto: no running Ray cluster found on this machine; ", main(argv))
