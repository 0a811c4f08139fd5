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
        assert measured.verdict in ("holds", "does not hold", "inconclusive")
    md, page = write_report([runs[name]], tmp_path)
    text = md.read_text()
    for claim in EXPERIMENTS[name].claims:
        assert text.count(f"| {name} | {claim.statement} |") == 1      # one row per claim
    assert "backbone weights: **synthetic**" in text
    assert "data:image/png;base64," in page.read_text()
    kind_figure = {"serial": "capacity", "repetition": "lowest-per-repetition", "poisoning": "attack",
                   "frequency": "frequency"}[EXPERIMENTS[name].sequence]
    assert (tmp_path / "figures" / name / f"{kind_figure}.png").stat().st_size > 0


def test_plot_functions_draw_from_a_table(runs, tmp_path):
    table = pd.read_parquet(runs["serial-position"] / "records.parquet")
    for figure in (plots.serial_position(table), plots.memorized_vs_trained(table),
                   plots.performance_over_presentations(table, "hybrid")):
        assert figure.axes and figure.axes[0].has_data()
    written = plots.plot_run(runs["serial-position"])
    assert {p.suffix for p in written} == {".png", ".pdf"} and all(p.stat().st_size > 0 for p in written)


def make_table(per_profile):
    """A final-presentation table from {profile: [[perf per item] per trial]} with memorized flags."""
    rows = []
    for profile, trials in per_profile.items():
        for trial, (performance, memorized) in enumerate(trials):
            for item, (p, m) in enumerate(zip(performance, memorized), start=1):
                rows.append(dict(profile=profile, trial=trial, presentation=4, item=item,
                                 performance=p, memorized=m, n_items=4, seed=0))
    return pd.DataFrame(rows)


def test_claim_verdicts_follow_the_data():
    good = [([0.5, 0.4, 0.45, 0.6], [True] * 4)] * 2 + [([0.5, 0.5, 0.45, 0.6], [True] * 4)]
    forgetful = [([0.0, 0.1, 0.3, 0.9], [False, False, True, True]),
                 ([0.05, 0.1, 0.2, 0.95], [False, False, True, True]),
                 ([0.1, 0.0, 0.3, 0.8], [False, False, False, True])]
    table = make_table({"hybrid": good, "conventional": forgetful, "stable": forgetful})
    assert claims.memorizes_all("hybrid")(table).verdict == "holds"
    assert claims.memorizes_all("conventional")(table).verdict == "does not hold"
    recency = claims.partial_memory("conventional", at_most=3, first_above_last=False)(table)
    assert recency.verdict == "holds" and recency.p_value < 0.05
    primacy = claims.partial_memory("stable", at_most=3, first_above_last=True)(table)
    assert primacy.verdict == "does not hold"
    assert claims.more_memorized("hybrid", "conventional")(table).verdict == "holds"
    assert claims.more_memorized("conventional", "hybrid")(table).verdict == "does not hold"
    few = table[table.trial < 2]
    assert claims.memorizes_all("hybrid")(few).verdict == "inconclusive"
    assert claims.memorizes_all("absent")(table).verdict == "inconclusive"


def test_profile_colours_are_single_hex_strings():
    for profile in [p for e in EXPERIMENTS.values() for p in e.profiles]:
        assert plots.colour(profile).startswith("#") and len(plots.colour(profile)) == 7


def test_long_sequences_plot(tmp_path):
    config = make_config("sequence-length", "quick", trials=1, seed=0, items=16, width=8,
                         train_per_class=15, test_per_class=4, epochs=1, batch_size=16, lr=0.05,
                         alpha=20.0, feature_scale=1.0)
    store = run_experiment(config, FakeLab(), tmp_path, progress=False).store
    assert plots.plot_run(store.path)
