import json

import pytest

from metaplastic.cli import main


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "serial-position" in out and "quick" in out and "paper" in out


@pytest.mark.parametrize("argv, message", [
    (["run", "nonsense"], "unknown experiment 'nonsense'"),
    (["run", "serial-position", "--items", "46"], "--items must be between 3 and 45"),
    (["run", "serial-position", "--trials", "0"], "--trials must be between 1 and"),
    (["run", "serial-position", "--scale", "huge"], "unknown scale 'huge'"),
    (["run", "serial-position", "--device", "tpu"], "--device must be cpu or cuda"),
    (["run", "serial-position", "--trial-batch", "0"], "--trial-batch must be at least 1"),
    (["run", "serial-position", "--memory-budget", "-2"], "--memory-budget must be a positive"),
    (["run", "serial-position", "--precision", "tf32"], "tf32 changes only the matrix products"),
    (["run", "serial-position", "--backbone", "untrained-s1:seed=x"],
     "--backbone untrained-s1:seed=x: seed must be an integer between 0 and 2**63-1, got 'x'"),
    (["run", "serial-position", "--backbone", "untrained-s1:depth=3"],
     "unknown option 'depth=3'; untrained-s1 takes seed=K"),
    (["reproduce", "--backbone", "imagenet:seed=1"], "imagenet takes no options"),
    (["run", "serial-position", "--dataset-seed", "-1"], "--dataset-seed must be between 0 and 2**63-1"),
    (["reproduce", "--dataset-seed", str(2**63)], "--dataset-seed must be between 0 and 2**63-1"),
])
def test_bad_options_give_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unwritable_out_dir_is_one_clear_line(tmp_path, shared_data, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    argv = ["run", "serial-position", "--out", str(blocker / "runs"), "--data-dir", str(shared_data),
            "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "choose another --out" in err and "Traceback" not in err


def test_tiny_run_end_to_end(tmp_path, shared_data, capsys):
    argv = ["run", "serial-position", "--items", "3", "--trials", "1", "--width", "8",
            "--train-per-class", "10", "--test-per-class", "5", "--epochs", "1", "--batch-size", "8",
            "--data-dir", str(shared_data), "--cache-dir", str(tmp_path / "cache"),
            "--out", str(tmp_path / "runs"), "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "run folder" in out and "hybrid" in out
    (folder,) = (tmp_path / "runs").iterdir()
    config = json.loads((folder / "config.json").read_text())
    backbone = config["provenance"]["backbone"]   # the default: untrained Table S1, no warning
    assert backbone["weights"] == "untrained" and "Table S1" in backbone["architecture"]
    assert backbone["seed"] == 0 and config["config"]["dataset_seed"] == 0 and "mean_image" not in backbone
    assert config["provenance"]["mnist"]["source"] == "mnist"
    assert main(argv) == 0                                  # again: resumes, trains nothing
    assert "trained 0 new trial(s)" in capsys.readouterr().out


def test_samples_grid(tmp_path, shared_data, capsys):
    from PIL import Image

    out = tmp_path / "grid.png"
    assert main(["samples", "--out", str(out), "--classes", "01,38", "--per-class", "3",
                 "--data-dir", str(shared_data)]) == 0
    assert Image.open(out).size == (3 * 56, 2 * 56)
    assert main(["samples", "--classes", "33", "--data-dir", str(shared_data)]) == 2
    assert "unknown class(es) '33'" in capsys.readouterr().err


def test_backbone_files_that_cannot_be_used_are_one_clear_line(tmp_path, shared_data, capsys):
    import numpy as np

    np.save(tmp_path / "mean.npy", np.array([104.0, 117.0, 124.0]))
    base = ["run", "serial-position", "--data-dir", str(shared_data), "--cache-dir", str(tmp_path / "cache"),
            "--out", str(tmp_path / "runs"), "--quiet"]
    for extra, message in [(["--backbone", str(tmp_path / "absent.npy")], "does not exist"),
                           (["--backbone", "untrained", "--mean-image", str(tmp_path / "mean.npy")],
                            "--mean-image replaces the mean pixel of the Table S1 network's input"),
                           (["--mean-image", str(tmp_path / "mean.txt")], "give a .npy file")]:
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()


def test_the_draw_seed_dataset_seed_and_mean_image_reach_the_run(tmp_path, shared_data, monkeypatch, capsys):
    # What the command hands the lab, without training: the run's config, provenance and folder name.
    import dataclasses
    from types import SimpleNamespace

    import numpy as np

    from metaplastic import lab as lab_module
    from metaplastic.results import run_name

    seen = []

    def record(config, lab, out, **_):
        seen.append((config, lab.provenance()))
        return SimpleNamespace(store=SimpleNamespace(config=config, path=out), summary={}, trained=[],
                               seconds=0.0)

    monkeypatch.setattr(lab_module, "run_experiment", record)
    np.save(tmp_path / "mean.npy", np.array([104.0, 117.0, 124.0]))
    base = ["run", "serial-position", "--data-dir", str(shared_data), "--cache-dir", str(tmp_path / "cache"),
            "--out", str(tmp_path / "runs"), "--quiet"]
    assert main(base) == 0
    assert main(base + ["--backbone", "untrained-s1:seed=1", "--dataset-seed", "2"]) == 0
    assert "calibrated on the untrained Table S1 features drawn from seed 0" in capsys.readouterr().err
    assert main(base + ["--mean-image", str(tmp_path / "mean.npy")]) == 0
    (default, p0), (seeded, p1), (meaned, p2) = seen
    assert (default.backbone, default.dataset_seed, p0["backbone"]["seed"]) == ("untrained-s1", 0, 0)
    assert (seeded.backbone, seeded.dataset_seed, p1["backbone"]["seed"]) == ("untrained-s1:seed=1", 2, 1)
    assert p2["backbone"]["mean_image"]["file"] == str(tmp_path / "mean.npy")
    names = {run_name(c, p) for c, p in seen}
    assert len(names) == 3                                          # three runs, three folders
    # Each alone makes another run: the draw seed (through the fingerprint) and the dataset seed.
    assert run_name(dataclasses.replace(seeded, dataset_seed=0), p1) not in names
    assert run_name(dataclasses.replace(default, dataset_seed=2), p0) not in names
