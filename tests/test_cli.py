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
