"""Baseline learners (metaplastic.learners): each method's update against a hand computation on a
two-weight network, and every learner through the engine, statistics, figures and report."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from metaplastic import engine, learners, plots
from metaplastic.classifier import StackedMLP
from metaplastic.experiments import BASELINES, EXPERIMENTS, learner_object, make_config
from metaplastic.lab import run_experiment
from metaplastic.report import evaluate, write_report
from tests.test_engine import synthetic_features
from tests.test_results import FakeLab

#: Settings for tiny runs at lr 0.05 (the tiny configs' rate); calibrated defaults are for the quick preset.
TINY_BASELINES = ("ewc:lam=0.5", "si:c=0.05", "replay:buffer=8", "meta-adam:lr=1e-3,m=3")
TINY_LEARNERS = ("hybrid", "conventional", "sgd") + TINY_BASELINES


def tiny(name="serial-position", learners_=TINY_LEARNERS, trials=2, **overrides):
    settings = dict(trials=trials, seed=3, items=4, width=8, train_per_class=12, test_per_class=6,
                    epochs=2, batch_size=5, lr=0.05, alpha=20.0, feature_scale=1.0) | overrides
    return make_config(name, "quick", learners=",".join(learners_), **settings)


# --------------------------------------------------------------------------- the two-weight network
# One network (B = 1) with two weights w and the loss 1/2 (w . x - t)^2, or 1/2 sum h w^2.


def two_weights(values):
    return torch.tensor([values], dtype=torch.float64, requires_grad=True)      # [1, 2]


def test_ewc_penalty_gradient_and_step_by_hand():
    w = two_weights([1.0, -2.0])
    trainer = learners.EWCTrainer([w], lr=0.1, learner=learners.EWC(lam=3.0, decay=0.5))
    fisher = torch.tensor([[0.5, 2.0]], dtype=torch.float64)
    trainer.consolidate([fisher])                          # anchor theta* = (1, -2)
    with torch.no_grad():
        w.copy_(torch.tensor([[1.2, -1.0]], dtype=torch.float64))
    stiffness, anchor = trainer.penalty()
    # d/dw of lam/2 sum F (w - w*)^2 = lam F (w - w*) = 3 * (0.5 * 0.2, 2 * 1.0) = (0.3, 6.0)
    grad = learners.penalty_grad([w], stiffness, anchor)[0]
    torch.testing.assert_close(grad, torch.tensor([[0.3, 6.0]], dtype=torch.float64))
    penalty = 1.5 * (fisher * (w - anchor[0]) ** 2).sum()
    torch.testing.assert_close(torch.autograd.grad(penalty, w)[0], grad)

    # One step on 1/2 (w . x - t)^2 with x = (0.5, 1), t = 0: w . x = -0.4, g = -0.4 x = (-0.2, -0.4).
    x = torch.tensor([0.5, 1.0], dtype=torch.float64)
    trainer.step(0.5 * (w @ x) ** 2)
    k = torch.tensor([1.5, 6.0], dtype=torch.float64)      # lam F
    g = torch.tensor([-0.2, -0.4], dtype=torch.float64)
    old, star = torch.tensor([1.2, -1.0], dtype=torch.float64), torch.tensor([1.0, -2.0], dtype=torch.float64)
    expected = (old - 0.1 * g + 0.1 * k * star) / (1 + 0.1 * k)
    torch.testing.assert_close(w.detach()[0], expected)
    # Where lr k is small (first weight: 0.15) the implicit step is close to the explicit one.
    explicit = old - 0.1 * (g + k * (old - star))
    assert abs(w.detach()[0, 0] - explicit[0]) < 0.01 < abs(w.detach()[0, 1] - explicit[1])

    # Online EWC: the next item's Fisher is added to the decayed running one.
    trainer.consolidate([torch.tensor([[1.0, 1.0]], dtype=torch.float64)])
    torch.testing.assert_close(trainer.fisher[0], torch.tensor([[1.25, 2.0]], dtype=torch.float64))
    torch.testing.assert_close(trainer.anchor[0], w.detach())


def test_fisher_is_the_mean_squared_per_example_gradient():
    model = StackedMLP([5, 4, 3, 3], [torch.Generator().manual_seed(s) for s in (0, 1)], [0, 1])
    x = torch.randn(2, 7, 5, generator=torch.Generator().manual_seed(2))
    y = torch.randint(0, 3, (2, 7), generator=torch.Generator().manual_seed(3))
    fisher = learners.stacked_fisher(model, x, y, chunk=3)
    params = learners.parameters(model)
    expected = [torch.zeros_like(p) for p in params]
    for b in range(2):
        for i in range(7):
            loss = torch.nn.functional.cross_entropy(model(x[:, i:i + 1])[b], y[b, i:i + 1])
            for e, g in zip(expected, torch.autograd.grad(loss, params)):
                e[b] += g[b] ** 2 / 7
    for f, e in zip(fisher, expected):
        torch.testing.assert_close(f, e, rtol=1e-5, atol=1e-8)
    assert all(p.grad is None for p in params)          # computing it trains nothing


def test_si_importance_after_two_steps_by_hand():
    # L = 1/2 (1 w1^2 + 4 w2^2) from w = (1, 1), lr 0.1: g = h w, two steps.
    w = two_weights([1.0, 1.0])
    h = torch.tensor([[1.0, 4.0]], dtype=torch.float64)
    trainer = learners.SITrainer([w], lr=0.1, learner=learners.SI(c=2.0, xi=0.01))
    trainer.begin_item()
    for _ in range(2):
        trainer.step((0.5 * h * w ** 2).sum(dim=1))
    # step 1: g = (1, 4), w -> (0.9, 0.6), omega += g^2 lr = (0.1, 1.6)
    # step 2: g = (0.9, 2.4), w -> (0.81, 0.36), omega += (0.081, 0.576)
    torch.testing.assert_close(w.detach(), torch.tensor([[0.81, 0.36]], dtype=torch.float64))
    torch.testing.assert_close(trainer.omega[0], torch.tensor([[0.181, 2.176]], dtype=torch.float64))
    trainer.end_item(None, None, None)
    delta2 = torch.tensor([[0.19 ** 2, 0.64 ** 2]], dtype=torch.float64)
    importance = torch.tensor([[0.181, 2.176]], dtype=torch.float64) / (delta2 + 0.01)
    torch.testing.assert_close(trainer.importance[0], importance)
    assert torch.count_nonzero(trainer.omega[0]) == 0     # reset for the next item
    stiffness, anchor = trainer.penalty()                   # c sum Omega (w - w*)^2: k = 2 c Omega
    torch.testing.assert_close(stiffness[0], 4.0 * importance)
    torch.testing.assert_close(anchor[0], w.detach())


def test_si_accumulates_the_task_gradient_not_the_penalty():
    w = two_weights([1.0, 1.0])
    trainer = learners.SITrainer([w], lr=0.1, learner=learners.SI(c=1.0, xi=0.5))
    trainer.begin_item()
    trainer.end_item(None, None, None)               # anchor at (1, 1), importance 0
    trainer.importance = [torch.ones_like(w)]
    trainer.begin_item()
    trainer.step((w * 0).sum(dim=1))                  # no task gradient: only the penalty would move w
    assert torch.equal(w.detach(), torch.ones_like(w))   # at the anchor the penalty is zero too
    with torch.no_grad():
        w.add_(1.0)
    trainer.step((w * 0).sum(dim=1))
    assert not torch.equal(w.detach(), torch.full_like(w, 2.0))   # the penalty pulled w back
    assert torch.count_nonzero(trainer.omega[0]) == 0              # ... but earned no importance


def test_replay_batch_composition():
    dim = 3
    generators = [np.random.default_rng(5)]
    trainer = learners.ReplayTrainer([], lr=0.1, learner=learners.Replay(buffer=4, replay_batch=3),
                                     batch_size=2, generators=generators)
    xb, yb = torch.zeros(1, 2, dim), torch.zeros(1, 2, dtype=torch.long)
    x, y = trainer.compose(xb, yb)
    assert x.shape == (1, 2, dim)                     # nothing stored yet: the batch as it is
    first = torch.arange(3 * dim, dtype=torch.float32).view(1, 3, dim) + 1
    trainer.end_item(None, first, torch.tensor([[7, 8, 9]]))
    assert trainer.filled == 3 and trainer.seen == 3
    torch.testing.assert_close(trainer.x[0, :3], first[0])   # filled in order until full
    x, y = trainer.compose(xb, yb)
    assert x.shape == (1, 2 + 3, dim) and y.shape == (1, 5)  # 2 current + min(3 stored, 3)
    assert torch.equal(x[0, :2], xb[0]) and torch.equal(y[0, :2], yb[0])
    replayed = {int(v) for v in y[0, 2:]}
    assert replayed == {7, 8, 9}                               # distinct stored examples
    for row, label in zip(x[0, 2:], y[0, 2:]):                 # each with its own label
        assert int(label) == 7 + int(row[0] - 1) // dim

    # Algorithm R: example n (n > 4) replaces a uniform slot j = randint(n) when j < 4.
    twin = np.random.default_rng(5)
    twin.choice(3, 3, replace=False)                           # the draw compose() made
    more = -torch.arange(6 * dim, dtype=torch.float32).view(1, 6, dim)
    labels = torch.arange(10, 16).view(1, 6)
    expected_y = [7, 8, 9, 10]                                 # the 4th slot is still free
    for n, label in zip(range(5, 10), range(11, 16)):
        j = int(twin.integers(n))
        if j < 4:
            expected_y[j] = label
    trainer.end_item(None, more, labels)
    assert trainer.y[0].tolist() == expected_y and trainer.seen == 9 and trainer.filled == 4


def test_meta_adam_scales_only_updates_that_shrink_the_weight():
    w = torch.tensor([0.5, -0.5, 0.5, -0.5])
    update = torch.tensor([1.0, 1.0, -1.0, -1.0])        # w - lr U: shrinks |w| for 1st and 4th
    meta = 1 - math.tanh(2 * 0.5) ** 2
    torch.testing.assert_close(learners.meta_adam_update(w, update, m=2.0),
                               torch.tensor([meta, 1.0, -1.0, -meta]))

    # The trainer's first step: Adam's update is g / (|g| + eps), i.e. sign(g), for the loss w . c.
    weights = two_weights([0.5, -0.5])
    bias = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    trainer = learners.MetaAdamTrainer([weights], [bias], learner=learners.MetaAdam(m=2.0, lr=0.01))
    trainer.step(weights.sum(dim=1) + bias.sum(dim=1))  # g = (1, 1) for both
    torch.testing.assert_close(weights.detach(), torch.tensor([[0.5 - 0.01 * meta, -0.51]],
                                                              dtype=torch.float64))
    torch.testing.assert_close(bias.detach(), torch.full((1, 2), -0.01, dtype=torch.float64))  # plain


# --------------------------------------------------------------------------- names and settings


def test_learner_names_and_settings():
    assert learners.parse("ewc:lam=10,decay=1") == learners.EWC(lam=10.0, decay=1.0)
    assert learners.parse("replay:buffer=50").buffer == 50
    assert learners.parse("si") == learners.DEFAULTS["si"]
    for bad, message in [("ewc:lamb=1", "lamb"), ("ewc:lam", "key=value"), ("si:c=x", "number"),
                         ("adam", "unknown learner")]:
        with pytest.raises(ValueError, match=message):
            learner_object("serial-position", bad)
    config = make_config("poisoning", learners="baselines,sgd")
    assert config.profiles == BASELINES + ("sgd",)
    assert [s.split(" = ")[0] for s in config.learner_settings] == ["ewc", "si", "replay", "meta-adam"]
    assert "learner_settings" in config.identity()
    assert "learner_settings" not in make_config("poisoning").identity()    # folder names kept
    assert make_config("poisoning", learners="hybrid,ewc:lam=1,decay=1,si").profiles == (
        "hybrid", "ewc:lam=1,decay=1", "si")
    with pytest.raises(ValueError, match="more than once"):
        make_config("poisoning", learners="hybrid,baselines")


def test_cli_refuses_an_unknown_learner(capsys):
    from metaplastic.cli import main

    assert main(["run", "poisoning", "--learners", "hybrid,ewc,lwf"]) == 2
    assert "unknown learner 'lwf'" in capsys.readouterr().err


# --------------------------------------------------------------------------- through the engine


def test_stacked_networks_of_different_learners_stay_independent():
    config = tiny()
    together = engine.run_trials(config, synthetic_features, [0, 1])
    assert list(together["profile"].unique()) == list(TINY_LEARNERS)
    for name in TINY_LEARNERS:
        for trial in (0, 1):
            alone = engine.run_trials(tiny(learners_=(name,)), synthetic_features, [trial])
            mine = together[(together.profile == name) & (together.trial == trial)]
            np.testing.assert_allclose(mine["performance"].to_numpy(),
                                       alone["performance"].to_numpy(), atol=1e-12)


def test_profiles_are_bit_identical_with_baselines_beside_them():
    key = ["trial", "profile", "presentation", "item"]
    for name in ("serial-position", "poisoning"):
        spec = EXPERIMENTS[name]
        settings = dict(trials=2, seed=1, items=4, width=8, train_per_class=12, test_per_class=6,
                        epochs=1, batch_size=5, lr=0.05, alpha=20.0, feature_scale=1.0)
        plain = engine.run_trials(make_config(name, "quick", **settings), synthetic_features, [0, 1])
        mixed = engine.run_trials(make_config(name, "quick", learners=list(spec.profiles)
                                              + list(TINY_BASELINES), **settings),
                                  synthetic_features, [0, 1])
        mine = mixed[mixed.profile.isin(spec.profiles)].sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, plain.sort_values(key).reset_index(drop=True),
                                      check_exact=True)


def test_sgd_is_the_conventional_network_and_baselines_differ_from_it():
    table = engine.run_trials(tiny(), synthetic_features, [0])
    perf = {name: rows["performance"].to_numpy() for name, rows in table.groupby("profile")}
    assert np.array_equal(perf["sgd"], perf["conventional"])
    for name in TINY_BASELINES:
        assert not np.array_equal(perf[name], perf["sgd"]), name
    before = table[table.presentation == 0].groupby("profile")["performance"].apply(tuple)
    assert before.nunique() == 1                      # same initial weights, same first test


def test_timings_and_costs_are_measured():
    timings = {}
    engine.run_trials(tiny(trials=1), synthetic_features, [0], timings=timings)
    assert set(timings) == set(TINY_LEARNERS) and all(t > 0 for t in timings.values())
    costs = engine.measure_costs(tiny(trials=1))
    assert costs["ewc:lam=0.5"]["state_bytes_per_weight"] == 8.0        # Fisher and anchor, fp32
    assert costs["si:c=0.05"]["state_bytes_per_weight"] == 16.0         # omega, Omega, start, anchor
    assert costs["meta-adam:lr=1e-3,m=3"]["state_bytes_per_weight"] == 8.0   # Adam's two moments
    assert costs["replay:buffer=8"]["stored_examples"] == 8
    assert costs["replay:buffer=8"]["state_bytes_per_weight"] == 0.0
    assert costs["hybrid"]["state_bytes_per_weight"] > 4                # flexibility, w_init, S
    assert all(c["seconds_per_presentation"] > 0 for c in costs.values())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return {name: run_experiment(tiny(name, trials=3, epochs=1), FakeLab(), out, progress=False).store.path
            for name in ("serial-position", "sequence-length", "poisoning", "frequency")}


@pytest.mark.parametrize("name", ["serial-position", "sequence-length", "poisoning", "frequency"])
def test_every_learner_through_stats_plots_and_report(runs, name, tmp_path):
    table = pd.read_parquet(runs[name] / "records.parquet")
    assert set(table["profile"]) == set(TINY_LEARNERS)
    md, page = write_report([runs[name]], tmp_path)
    text = md.read_text()
    assert "### Learners compared" in text and "`ewc:lam=0.5 = ewc:lam=0.5,decay=0.9`" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and " ± " in line]
    assert sorted(r.split(" | ")[0][2:] for r in rows if r.split(" | ")[0][2:] in TINY_LEARNERS) \
        == sorted(TINY_LEARNERS)
    header = next(line for line in text.splitlines() if line.startswith("| learner |"))
    assert "s per presentation" in header and "state bytes per weight" in header
    assert ("performance before / after poisoning" in header) == (name == "poisoning")
    assert ("Spearman with frequency" in header) == (name == "frequency")
    replay_row = next(r for r in rows if r.startswith("| replay:buffer=8 |"))
    assert "| 8 (" in replay_row                                 # its stored examples
    assert "Learners compared" in page.read_text()
    for _, measured in evaluate(runs[name]).rows:         # the claims still read their profiles
        assert measured.verdict
    for learner in TINY_LEARNERS:
        assert (tmp_path / "figures" / name / f"over-time-{plots.file_stem(learner)}.png").exists()


def test_every_learner_has_its_own_colour(runs):
    table = pd.read_parquet(runs["serial-position"] / "records.parquet")
    figure = plots.serial_position(table)
    colours = [line.get_color() for line in figure.axes[0].lines if line.get_label() in TINY_LEARNERS]
    assert len(colours) == len(TINY_LEARNERS)
    # sgd is the conventional network under another name, yet drawn apart from it
    assert len(set(colours)) == len(TINY_LEARNERS)
    assert plots.colour("ewc:lam=10") == plots.colour("ewc") != plots.colour("si")


def test_report_without_baselines_has_no_comparison(tmp_path):
    store = run_experiment(make_config("serial-position", "quick", trials=1, seed=2, items=4, width=8,
                                       train_per_class=12, test_per_class=6, epochs=1, batch_size=6,
                                       lr=0.05, alpha=20.0, feature_scale=1.0),
                           FakeLab(), tmp_path / "runs", progress=False).store
    md, _ = write_report([store.path], tmp_path / "report")
    assert "Learners compared" not in md.read_text()
