"""Baseline learners (metaplastic.learners): each method's update against a hand computation on a
two-weight network, and every learner through the engine, statistics, figures and report."""

import dataclasses
import math
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch

from metaplastic import engine, learners, plots
from metaplastic.claims import INCONCLUSIVE
from metaplastic.classifier import StackedMLP
from metaplastic.config import Learner
from metaplastic.experiments import (
    BASELINES,
    EXPERIMENTS,
    learner_object,
    make_config,
    resolve_learner,
    resolve_learners,
)
from metaplastic.features import FEATURE_DIM
from metaplastic.lab import run_experiment
from metaplastic.learners.base import penalty_grad
from metaplastic.learners.ewc import EWC, EWCTrainer, stacked_fisher
from metaplastic.learners.meta_adam import MetaAdam, MetaAdamTrainer, meta_adam_update
from metaplastic.learners.replay import Replay, ReplayTrainer
from metaplastic.learners.si import SI, SITrainer
from metaplastic.reader import read_run
from metaplastic.report import evaluate, write_report
from metaplastic.results import trial_notes

#: Settings for tiny runs at lr 0.05 (the tiny configs' rate); calibrated defaults are for the quick preset.
TINY_BASELINES = ("ewc:lam=0.5", "si:c=0.05", "replay:buffer=8", "meta-adam:lr=1e-3,m=3")
TINY_PROFILES = ("hybrid", "conventional", "sgd")
TINY_LEARNERS = TINY_PROFILES + TINY_BASELINES


@pytest.fixture(scope="session")
def tiny(tiny_config):
    """The tiny run with every kind of learner: ``tiny(experiment, learners=TINY_LEARNERS, ...)``."""
    def build(experiment="serial-position", learners=TINY_LEARNERS, **overrides):
        return tiny_config(experiment, learners=list(learners), **overrides)
    return build


# --------------------------------------------------------------------------- the two-weight network
# One network (B = 1) with two weights w and the loss 1/2 (w . x - t)^2, or 1/2 sum h w^2.


def two_weights(values):
    return torch.tensor([values], dtype=torch.float64, requires_grad=True)      # [1, 2]


def test_ewc_penalty_gradient_and_step_by_hand():
    w = two_weights([1.0, -2.0])
    trainer = EWCTrainer([w], lr=0.1, learner=EWC(lam=3.0, decay=0.5))
    fisher = torch.tensor([[0.5, 2.0]], dtype=torch.float64)
    trainer.consolidate([fisher])                          # anchor theta* = (1, -2)
    with torch.no_grad():
        w.copy_(torch.tensor([[1.2, -1.0]], dtype=torch.float64))
    stiffness, anchor = trainer.penalty()
    # d/dw of lam/2 sum F (w - w*)^2 = lam F (w - w*) = 3 * (0.5 * 0.2, 2 * 1.0) = (0.3, 6.0)
    grad = penalty_grad([w], stiffness, anchor)[0]
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
    fisher = stacked_fisher(model, x, y, chunk=3)
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
    trainer = SITrainer([w], lr=0.1, learner=SI(c=2.0, xi=0.01))
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
    trainer = SITrainer([w], lr=0.1, learner=SI(c=1.0, xi=0.5))
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
    trainer = ReplayTrainer([], lr=0.1, learner=Replay(buffer=4, replay_batch=3),
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
    torch.testing.assert_close(meta_adam_update(w, update, m=2.0),
                               torch.tensor([meta, 1.0, -1.0, -meta]))

    # The trainer's first step: Adam's update is g / (|g| + eps), i.e. sign(g), for the loss w . c.
    weights = two_weights([0.5, -0.5])
    bias = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    trainer = MetaAdamTrainer([weights], [bias], learner=MetaAdam(m=2.0, lr=0.01))
    trainer.step(weights.sum(dim=1) + bias.sum(dim=1))  # g = (1, 1) for both
    torch.testing.assert_close(weights.detach(), torch.tensor([[0.5 - 0.01 * meta, -0.51]],
                                                              dtype=torch.float64))
    torch.testing.assert_close(bias.detach(), torch.full((1, 2), -0.01, dtype=torch.float64))  # plain


# --------------------------------------------------------------------------- names and settings


def test_learner_names_and_settings():
    assert learners.parse("ewc:lam=10,decay=1") == EWC(lam=10.0, decay=1.0)
    assert learners.parse("replay:buffer=50").buffer == 50
    assert isinstance(learners.parse("replay:buffer=50").buffer, int)
    assert learners.parse("si") == learners.FAMILIES["si"]() == SI(c=1e4, xi=1e-3)
    assert learner_object("serial-position", "ewc:lam=10") == EWC(lam=10.0)
    for bad, message in [("ewc:lamb=1", "lamb"), ("ewc:lam", "key=value"), ("si:c=x", "number"),
                         ("adam", "unknown learner")]:
        with pytest.raises(ValueError, match=message):
            learner_object("serial-position", bad)
    config = make_config("poisoning", learners="baselines,sgd")
    assert config.learner_names == BASELINES + ("sgd",)
    assert all(isinstance(learner, Learner) for learner in config.learners)
    assert [learner.family for learner in config.learners] == [
        "profile", "profile", "ewc", "si", "replay", "meta-adam", "profile"]
    assert [p.name for p in config.profile_learners] == ["hybrid", "conventional", "sgd"]
    assert [s.split(" = ")[0] for s in config.learner_settings] == ["ewc", "si", "replay", "meta-adam"]
    assert config.learner_settings[0] == "ewc = ewc:lam=100,decay=0.9"
    identity = config.identity()
    assert identity["profiles"] == config.learner_names and "learners" not in identity
    assert identity["learner_settings"] == config.learner_settings
    assert "learner_settings" not in make_config("poisoning").identity()    # folder names kept
    assert make_config("poisoning", learners="hybrid,ewc:lam=1,decay=1,si").learner_names == (
        "hybrid", "ewc:lam=1,decay=1", "si")
    with pytest.raises(ValueError, match="more than once"):
        make_config("poisoning", learners="hybrid,baselines")


def test_learners_replaced_on_a_config_keep_its_run_identity_rules():
    config = make_config("poisoning")
    replaced = dataclasses.replace(config, learners=resolve_learners("poisoning", ["hybrid"]))
    assert replaced.learner_names == ("hybrid",)
    assert replaced == make_config("poisoning", learners="hybrid")
    assert replaced.run_hash({}) == make_config("poisoning", learners="hybrid").run_hash({})
    assert replaced.run_hash({}) != config.run_hash({})
    assert resolve_learner("poisoning", "sgd") == Learner("sgd", learner_object("poisoning", "sgd"))


def test_every_method_describes_every_setting_and_parses_back():
    assert set(learners.FAMILIES) == {"ewc", "si", "replay", "meta-adam"}
    for family, cls in learners.FAMILIES.items():
        method = cls()
        assert method.family == family and learners.is_baseline(f"{family}:x=1")
        assert set(cls.ranges) == {f.name for f in dataclasses.fields(cls)}
        for field in dataclasses.fields(cls):
            assert getattr(method, field.name) in cls.ranges[field.name], (family, field.name)
        text = method.describe()
        assert text.startswith(f"{family}:") and learners.parse(text) == method, text
        assert cls.colour.startswith("#") and len(cls.colour) == 7 and cls.summary
    assert len({cls.colour for cls in learners.FAMILIES.values()}) == len(learners.FAMILIES)
    assert resolve_learner("poisoning", "ewc:lam=0.5").describe() == "ewc:lam=0.5 = ewc:lam=0.5,decay=0.9"


def test_describe_spells_out_large_and_precise_settings_exactly():
    for name in ("replay:buffer=1234567", "ewc:lam=123.4567891"):
        method = learners.parse(name)
        assert learners.parse(method.describe()) == method, method.describe()


def test_registering_checks_the_ranges_and_the_family_name():
    before = dict(learners.FAMILIES)

    @dataclasses.dataclass(frozen=True)
    class Unranged(learners.Method):
        strength: float = 1.0
        family: ClassVar[str] = "unranged"
        ranges: ClassVar[dict] = {}

    with pytest.raises(TypeError, match="must name exactly its settings .*strength"):
        learners.register(Unranged)
    with pytest.raises(ValueError, match="two baseline methods are registered as 'ewc'"):
        learners.register(EWC)
    assert learners.FAMILIES == before


#: Every setting is range-checked when a name is parsed; the message names the learner, the
#: setting, its valid values and the value given.
OUT_OF_RANGE = {
    "ewc:decay=2": "learner 'ewc:decay=2': decay must be a number in [0, 1], got 2",
    "ewc:decay=-0.1": "learner 'ewc:decay=-0.1': decay must be a number in [0, 1], got -0.1",
    "ewc:lam=nan": "learner 'ewc:lam=nan': lam must be a number >= 0, got nan",
    "ewc:lam=inf": "learner 'ewc:lam=inf': lam must be a number >= 0, got inf",
    "ewc:lam=-1": "learner 'ewc:lam=-1': lam must be a number >= 0, got -1",
    "si:xi=0": "learner 'si:xi=0': xi must be a number > 0, got 0",
    "si:c=-1": "learner 'si:c=-1': c must be a number >= 0, got -1",
    "replay:buffer=2.5": "learner 'replay:buffer=2.5': buffer must be an integer >= 1, got 2.5",
    "replay:buffer=0": "learner 'replay:buffer=0': buffer must be an integer >= 1, got 0",
    "replay:replay_batch=-1":
        "learner 'replay:replay_batch=-1': replay_batch must be an integer >= 0, got -1",
    "meta-adam:beta1=1": "learner 'meta-adam:beta1=1': beta1 must be a number in [0, 1), got 1",
    "meta-adam:beta2=1.5": "learner 'meta-adam:beta2=1.5': beta2 must be a number in [0, 1), got 1.5",
    "meta-adam:lr=0": "learner 'meta-adam:lr=0': lr must be a number > 0, got 0",
    "meta-adam:eps=0": "learner 'meta-adam:eps=0': eps must be a number > 0, got 0",
    "meta-adam:m=-1": "learner 'meta-adam:m=-1': m must be a number >= 0, got -1",
    "ewc:decay=x": "learner 'ewc:decay=x': decay must be a number in [0, 1], got 'x'",
}


@pytest.mark.parametrize("name, message", OUT_OF_RANGE.items(), ids=OUT_OF_RANGE.keys())
def test_a_setting_out_of_its_range_is_refused_where_the_name_is_parsed(name, message):
    with pytest.raises(ValueError) as parsed:
        learners.parse(name)
    assert str(parsed.value) == message
    with pytest.raises(ValueError) as configured:
        make_config("serial-position", learners=f"hybrid,{name}")
    assert str(configured.value) == message


@pytest.mark.parametrize("name", ["ewc:decay=2", "replay:buffer=2.5", "si:xi=0", "meta-adam:beta1=1",
                                  "ewc:lam=nan"])
def test_the_cli_refuses_a_setting_out_of_range_in_one_line(name, capsys):
    from metaplastic.cli import main

    assert main(["run", "serial-position", "--learners", f"hybrid,{name}", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"metaplastic: error: {OUT_OF_RANGE[name]}"


def test_the_ends_of_every_range_are_accepted():
    assert learners.parse("ewc:decay=0,lam=0") == EWC(lam=0.0, decay=0.0)
    assert learners.parse("ewc:decay=1").decay == 1.0
    assert learners.parse("si:xi=1e-12,c=0") == SI(c=0.0, xi=1e-12)
    assert learners.parse("replay:buffer=1,replay_batch=0") == Replay(buffer=1, replay_batch=0)
    assert learners.parse("replay:buffer=3.0").buffer == 3 and isinstance(learners.parse(
        "replay:buffer=3.0").buffer, int)
    assert learners.parse("meta-adam:beta1=0,beta2=0,m=0").beta1 == 0.0
    with pytest.raises(ValueError, match="learner 'ewc': decay must be a number in"):
        EWC(decay=1.5)                               # the settings class checks itself too


def test_cli_refuses_an_unknown_learner(capsys):
    from metaplastic.cli import main

    assert main(["run", "poisoning", "--learners", "hybrid,ewc,lwf"]) == 2
    err = capsys.readouterr().err
    assert "unknown learner 'lwf'" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- through the engine


def test_stacked_networks_of_different_learners_stay_independent(tiny, synthetic_features):
    config = tiny()
    together = engine.run_trials(config, synthetic_features, [0, 1])
    assert list(together["learner"].unique()) == list(TINY_LEARNERS)
    for name in TINY_LEARNERS:
        for trial in (0, 1):
            alone = engine.run_trials(tiny(learners=(name,)), synthetic_features, [trial])
            mine = together[(together.learner == name) & (together.trial == trial)]
            assert len(mine) == len(alone) > 0
            np.testing.assert_allclose(mine["performance"].to_numpy(),
                                       alone["performance"].to_numpy(), atol=1e-12)


def test_profiles_are_bit_identical_with_baselines_beside_them(tiny_config, synthetic_features):
    key = ["trial", "learner", "presentation", "item"]
    for name in ("serial-position", "poisoning"):
        spec = EXPERIMENTS[name]
        settings = dict(seed=1, epochs=1, items=3)    # poisoning: 3 items, 30 presentations
        plain = engine.run_trials(tiny_config(name, **settings), synthetic_features, [0, 1])
        mixed = engine.run_trials(tiny_config(name, learners=list(spec.profiles) + list(TINY_BASELINES),
                                              **settings), synthetic_features, [0, 1])
        mine = mixed[mixed.learner.isin(spec.profiles)].sort_values(key).reset_index(drop=True)
        assert set(mixed.learner) - set(mine.learner) == set(TINY_BASELINES)
        pd.testing.assert_frame_equal(mine, plain.sort_values(key).reset_index(drop=True),
                                      check_exact=True)


def test_sgd_is_the_conventional_network_and_baselines_differ_from_it(tiny, synthetic_features):
    table = engine.run_trials(tiny(), synthetic_features, [0])
    perf = {name: rows["performance"].to_numpy() for name, rows in table.groupby("learner")}
    assert set(perf) == set(TINY_LEARNERS)
    assert np.array_equal(perf["sgd"], perf["conventional"])
    for name in TINY_BASELINES:
        assert not np.array_equal(perf[name], perf["sgd"]), name
    before = table[table.presentation == 0].groupby("learner")["performance"].apply(tuple)
    assert len(before) == len(TINY_LEARNERS) and before.nunique() == 1   # same weights, same first test


def _check_costs(costs):
    """What each tiny learner costs, as measured while it trained."""
    assert set(costs) == set(TINY_LEARNERS)
    assert costs["ewc:lam=0.5"]["state_bytes_per_weight"] == 8.0        # Fisher and anchor, fp32
    assert costs["si:c=0.05"]["state_bytes_per_weight"] == 16.0         # omega, Omega, start, anchor
    assert costs["meta-adam:lr=1e-3,m=3"]["state_bytes_per_weight"] == 8.0   # Adam's two moments
    assert costs["replay:buffer=8"]["stored_examples"] == 8             # its buffer
    assert costs["replay:buffer=8"]["stored_bytes"] == 8 * (FEATURE_DIM * 4 + 8)
    assert costs["replay:buffer=8"]["state_bytes_per_weight"] == 0.0
    for name in TINY_PROFILES:                   # one stacked model, one optimizer: one figure
        assert costs[name]["state_bytes_per_weight"] == costs["hybrid"]["state_bytes_per_weight"] > 4
    for name in set(TINY_LEARNERS) - {"replay:buffer=8"}:
        assert costs[name]["stored_examples"] == costs[name]["stored_bytes"] == 0, name
    assert all(0 < c["seconds_per_presentation"] < 60 for c in costs.values())


def test_run_trials_measures_what_every_learner_costs(tiny, synthetic_features):
    costs = {}
    engine.run_trials(tiny(trials=1), synthetic_features, [0], costs=costs)
    _check_costs(costs)


def test_the_trial_notes_hold_the_costs_of_every_learner(tiny, fake_lab, tmp_path):
    folder = run_experiment(tiny(trials=2, epochs=1), fake_lab, tmp_path, progress=False).store.path
    notes = trial_notes(folder / "trials")
    assert sorted(notes) == [0, 1]
    for note in notes.values():
        _check_costs(note["costs"])
    run = read_run(folder)
    _check_costs(run.costs)
    assert run.costs["replay:buffer=8"]["seconds_per_presentation"] == pytest.approx(np.mean(
        [n["costs"]["replay:buffer=8"]["seconds_per_presentation"] for n in notes.values()]))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny, fake_lab):
    out = tmp_path_factory.mktemp("runs")
    return {name: run_experiment(tiny(name, trials=3, epochs=1), fake_lab, out, progress=False).store.path
            for name in ("serial-position", "sequence-length", "poisoning", "frequency")}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["serial-position", "sequence-length", "poisoning", "frequency"])
def test_every_learner_through_stats_plots_and_report(runs, name, tmp_path):
    run = read_run(runs[name])
    table = run.records
    assert set(table["learner"]) == set(TINY_LEARNERS) and run.learners == list(TINY_LEARNERS)
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
    # The claims read their profiles only: with the baselines' rows taken out, every claim gets
    # the same verdict from the same statistic.
    profiles_only = table[table.learner.isin(TINY_PROFILES)]
    evaluated = evaluate(runs[name]).rows
    assert [claim.statement for claim, _ in evaluated] == [c.statement for c in EXPERIMENTS[name].claims]
    for claim, measured in evaluated:
        alone = claim.check(profiles_only)
        assert (measured.verdict, measured.statistic) == (alone.verdict, alone.statistic), claim.statement
        if measured.verdict == INCONCLUSIVE and measured.statistic.endswith(" not in this run"):
            absent = measured.statistic.removeprefix("profile(s) ").removesuffix(" not in this run")
            assert not set(absent.split(", ")) & set(TINY_LEARNERS), measured.statistic
    for learner in TINY_LEARNERS:
        assert (tmp_path / "figures" / name / f"over-time-{plots.file_stem(learner)}.png").exists()


@pytest.mark.slow
def test_every_learner_has_its_own_colour(runs):
    table = read_run(runs["serial-position"]).records
    figure = plots.serial_position(table)
    colours = [line.get_color() for line in figure.axes[0].lines if line.get_label() in TINY_LEARNERS]
    assert len(colours) == len(TINY_LEARNERS)
    # sgd is the conventional network under another name, yet drawn apart from it
    assert len(set(colours)) == len(TINY_LEARNERS)


def test_a_baseline_is_drawn_in_its_family_colour_whatever_its_settings():
    for family, cls in learners.FAMILIES.items():
        assert plots.colour(family) == plots.colour(f"{family}:x=1") == cls.colour
    assert plots.colour("ewc:lam=10") == plots.colour("ewc") != plots.colour("si")


def test_report_without_baselines_has_no_comparison(tmp_path, tiny_config, fake_lab):
    store = run_experiment(tiny_config(trials=1, epochs=1), fake_lab, tmp_path / "runs",
                           progress=False).store
    md, _ = write_report([store.path], tmp_path / "report")
    text = md.read_text()
    assert "Learners compared" not in text and "| serial-position |" in text
