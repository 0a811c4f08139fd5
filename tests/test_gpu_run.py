"""scripts/gpu_run.sh runs unchanged on the CPU at tiny sizes: within its deadline, leaving a run
folder, a report and the measurements under $OUT, and a second call continues the same runs."""

import os
import subprocess
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_run.sh"
TINY = "--trials 1 --width 16 --train-per-class 4 --test-per-class 2 --epochs 1 --items 4"

pytestmark = pytest.mark.slow     # extracts real features and trains: about two minutes


def _call(tmp_path, shared_data, out, **env):
    settings = {**os.environ, "DEVICE": "cpu", "SCALE": "quick", "SIZES": TINY, "OUT": str(out),
                "RUN_DIR": str(tmp_path / "runs"), "DATA_DIR": str(shared_data), "BENCH": "none",
                "METAPLASTIC_CACHE": str(tmp_path / "cache"), **env}
    began = time.monotonic()
    done = subprocess.run(["bash", str(SCRIPT)], cwd=SCRIPT.parents[1], env=settings,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return time.monotonic() - began


def _trials(folder: Path) -> dict[str, int]:
    return {run.name.split("-quick-")[0]: len(list((run / "trials").glob("trial-*.parquet")))
            for run in folder.iterdir() if (run / "trials").is_dir()}


def test_a_tiny_call_on_the_cpu_measures_runs_and_reports(tmp_path, shared_data):
    first = tmp_path / "out1"
    seconds = _call(tmp_path, shared_data, first, EXPERIMENTS="serial-position", DEADLINE_S="600",
                    BENCH="--scales quick --steps 1 --networks 1")
    assert seconds < 600 + 15
    assert "torch" in (first / "env.txt").read_text()
    assert "roofline/measured" in (first / "bench_scale.txt").read_text()
    assert "skipped: TF32 needs a CUDA device" in (first / "tf32.txt").read_text()
    assert _trials(first / "runs") == {"serial-position": 1}
    assert "serial-position" in (first / "report" / "report.md").read_text()
    steps = (first / "steps.tsv").read_text()
    assert "serial-position\t" in steps and "report\t" in steps

    # A second call on the same run folders: the finished trial is kept, the next experiment runs.
    second = tmp_path / "out2"
    _call(tmp_path, shared_data, second, EXPERIMENTS="serial-position repetition", DEADLINE_S="600")
    assert "trained 0 new trial(s)" in (second / "reproduce.txt").read_text()
    assert _trials(second / "runs") == {"serial-position": 1, "repetition": 1}
    report = (second / "report" / "report.md").read_text()
    assert "repetition" in report and "serial-position" in report


def test_a_call_without_time_for_a_run_still_reports_in_its_deadline(tmp_path, shared_data):
    out = tmp_path / "out"
    seconds = _call(tmp_path, shared_data, out, EXPERIMENTS="serial-position", DEADLINE_S="30",
                    REPORT_S="20", MIN_RUN_S="20")
    assert seconds < 30 + 15
    assert "serial-position: not started" in (out / "reproduce.txt").read_text()
    assert (out / "finished.txt").read_text() == "" and (out / "steps.tsv").is_file()
