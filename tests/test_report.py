import pandas as pd
import pytest

from metaplastic import claims, plots
from metaplastic.experiments import EXPERIMENTS, make_config
from metaplastic.lab import run_experiment
from metaplastic.report import evaluate, write_report
from tests.test_results import FakeLab


def tiny(name, trials=3):
    return make_config(name, "quick", trials=trials, seed=2, items=4, width=8, train_per_class=12,
                       test_per_class=6, epochs=1, batch_size=6, lr=0.05, alpha=20.0,
                       feature_scale=1.0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return {name: run_experiment(tiny(name), FakeLab(), out, progress=False).store.path
            for name in EXPERIMENTS}


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_runs_through_stats_plots_and_report(runs, name, tmp_path):
    report = evaluate(runs[name])
    assert len(report.rows) == len(EXPERIMENTS[name].claims) > 0
    for _, measured in report.rows:
        assert measured.verdict in claims.VERDICTS
    md, page = write_report([runs[name]], tmp_path)
    text = md.read_text()
    for claim in EXPERIMENTS[name].claims:
        assert text.count(f"| {name} | {claim.statement} |") == 1      # one row per claim
    assert "backbone weights: **synthetic**" in text
    assert "data:image/png;base64," in page.read_text()
    kind_figure = {"serial": "capacity", "repetition": "lowest-per-repetition", "poisoning": "attack",
                   "frequency": "frequency"}[EXPERIMENTS[name].kind]
    assert (tmp_path / "figures" / name / f"{kind_figure}.png").stat().st_size > 0


def test_plot_functions_draw_from_a_table(runs, tmp_path):
    table = pd.read_parquet(runs["serial-position"] / "records.parquet")
    for figure in (plots.serial_position(table), plots.memorized_vs_trained(table),
                   plots.performance_over_presentations(table, "hybrid")):
        assert figure.axes and figure.axes[0].has_data()
    written = plots.plot_run(runs["serial-position"])
    assert {p.suffix for p in written} == {".png", ".pdf"} and all(p.stat().st_size > 0 for p in written)


def test_profile_colours_are_single_hex_strings():
    for profile in [p for e in EXPERIMENTS.values() for p in e.profiles]:
        assert plots.colour(profile).startswith("#") and len(plots.colour(profile)) == 7


def test_long_sequences_plot(tmp_path):
    config = make_config("sequence-length", "quick", trials=1, seed=0, items=16, width=8,
                         train_per_class=15, test_per_class=4, epochs=1, batch_size=16, lr=0.05,
                         alpha=20.0, feature_scale=1.0)
    store = run_experiment(config, FakeLab(), tmp_path, progress=False).store
    assert plots.plot_run(store.path)
