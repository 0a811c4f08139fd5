import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from metaplastic import engine, trials
from metaplastic.classifier import StackedMLP
from metaplastic.data.two_digit import CLASSES
from metaplastic.experiments import EXPERIMENTS
from metaplastic.optim import MetaplasticSGD
from metaplastic.records import RECORD_COLUMNS


def test_records_have_the_documented_columns(tiny_config, synthetic_features):
    table = engine.run_trials(tiny_config(), synthetic_features, [0])
    # The documented schema (metaplastic.records), in its order: columns are added, never dropped.
    assert list(table.columns) == RECORD_COLUMNS == [
        "experiment", "learner", "trial", "seed", "presentation", "item", "item_class", "performance",
        "p_value", "memorized", "presented_item", "poisoned", "n_items", "schedule"]
    assert list(table["learner"].unique()) == ["conventional", "stable", "hybrid"]
    assert len(table) == 3 * (4 + 1) * 4             # profiles x (presentations + before) x items
    assert set(table["presentation"]) == {0, 1, 2, 3, 4}
    assert table["item"].between(1, 4).all() and table["item_class"].isin(CLASSES).all()
    assert table["performance"].between(0, 1).all() and table["p_value"].between(0, 1).all()
    assert (table["memorized"] == (table["p_value"] < 0.05)).all()


def test_networks_learn_the_current_item(tiny_config, synthetic_features):
    table = engine.run_trials(tiny_config(), synthetic_features, [0])
    after = table[(table.presentation == table.item) & (table.learner == "conventional")]
    assert len(after) == 4 and after["performance"].mean() > 0.5          # chance is 0.25


def test_stacked_training_equals_training_each_network_alone(tiny_config, synthetic_features):
    config = tiny_config()
    stacked = engine.run_trials(config, synthetic_features, [0, 1])
    for trial in (0, 1):
        for learner in config.learners:
            alone = engine.run_trials(dataclasses.replace(config, learners=(learner,)),
                                      synthetic_features, [trial])
            mine = stacked[(stacked.trial == trial) & (stacked.learner == learner.name)]
            assert len(mine) == len(alone) > 0
            np.testing.assert_allclose(mine["performance"].to_numpy(),
                                       alone["performance"].to_numpy(), atol=1e-12)


def test_trial_reruns_alone_identically(tiny_config, synthetic_features):
    a = engine.run_trials(tiny_config(), synthetic_features, [1])
    b = engine.run_trials(tiny_config(), synthetic_features, [0, 1])
    pd.testing.assert_frame_equal(a.reset_index(drop=True),
                                  b[b.trial == 1].reset_index(drop=True))


def test_consolidate_called_once_per_presentation(monkeypatch, tiny_config, synthetic_features):
    calls = []
    original = MetaplasticSGD.consolidate
    monkeypatch.setattr(MetaplasticSGD, "consolidate",
                        lambda self: calls.append(1) or original(self))
    engine.run_trials(tiny_config(), synthetic_features, [0])
    assert len(calls) == 4


def test_networks_of_a_trial_share_initial_weights(tiny_config, synthetic_features):
    config = tiny_config()
    assert config.learner_names == ("conventional", "stable", "hybrid")
    prepared = [trials.prepare_trial(config, synthetic_features, t) for t in (0, 1)]
    model, optimizer = engine.build_networks(config, prepared)
    w = model.weights[0].detach()
    assert torch.equal(w[0], w[1]) and torch.equal(w[1], w[2])     # trial 0's three profiles
    assert not torch.equal(w[0], w[3])                              # trial 1 starts elsewhere
    flex = optimizer.state[model.weights[0]]["flexibility"]
    assert torch.all(flex[0] == 1.0) and torch.all(flex[1] == 0.3)
    assert 0 < flex[2].mean() < 1 and "scale" not in optimizer.state[model.biases[0]]


def test_glorot_init_and_zero_biases():
    g = [torch.Generator().manual_seed(0)]
    model = StackedMLP([300, 200, 200, 10], g, [0])
    assert model.weights[0].std().item() == pytest.approx((2 / 500) ** 0.5, rel=0.02)
    assert all(torch.count_nonzero(b) == 0 for b in model.biases)
    out = model(torch.randn(1, 7, 300))
    assert out.shape == (1, 7, 10)


def test_diverging_loss_stops_with_a_clear_message(tiny_config, synthetic_features):
    config = tiny_config(lr=1e30, feature_scale=1e6)
    with pytest.raises(engine.TrainingDiverged,
                       match=r"for learner '(conventional|stable|hybrid)', trial 0, presentation \d"):
        engine.run_trials(config, synthetic_features, [0])


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_registry_entry_runs_through_the_engine(name, tiny_config, synthetic_features):
    spec = EXPERIMENTS[name]
    config = tiny_config(name, trials=1, seed=1, epochs=1, batch_size=6)
    table = engine.run_trials(config, synthetic_features, [0])
    n_presentations = table["presentation"].max()
    times = getattr(spec.sequence, "times", 1)
    expected = {"serial": 4, "repetition": 4 * times, "poisoning": 4 * (times + 1),
                "frequency": 10}[spec.kind]
    assert n_presentations == expected
    assert set(table["learner"]) == set(spec.profiles)
    assert table["poisoned"].any() == (spec.kind == "poisoning")


def test_keep_freed_memory_applies_on_glibc():
    import platform

    from metaplastic._memory import keep_freed_memory

    if platform.libc_ver()[0] != "glibc":
        pytest.fail("this project's machines run glibc; the tuning must apply there")
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True          # idempotent
    assert keep_freed_memory(False) is True     # and back to glibc's defaults


def test_a_kept_heap_is_trimmed_only_while_kept_and_above_the_bound():
    from metaplastic._memory import keep_freed_memory, release_freed_memory

    keep_freed_memory(False)
    assert release_freed_memory(above=0) is False      # glibc's defaults trim by themselves
    assert keep_freed_memory() is True
    try:
        assert release_freed_memory(above=0) is True
        assert release_freed_memory(above=2**62) is False
    finally:
        keep_freed_memory(False)


def test_the_engine_offers_the_heap_back_after_every_presentation(monkeypatch, tiny_config,
                                                                  synthetic_features):
    """A kept heap fragments across presentations (metaplastic._memory): the engine asks for a
    trim after each one, not once per run."""
    calls = []
    monkeypatch.setattr(engine, "release_freed_memory", lambda: calls.append(1))
    engine.run_trials(tiny_config(), synthetic_features, [0])
    assert len(calls) == tiny_config().items


def test_the_heap_is_kept_for_every_cpu_run_baselines_included(tmp_path, monkeypatch, tiny_config,
                                                               fake_lab):
    """Baselines allocate many sizes that live across items: a kept heap fragmented without
    bound until the engine trimmed it (metaplastic._memory); with the trim every CPU run keeps it."""
    from metaplastic import lab

    asked = []
    monkeypatch.setattr(lab, "keep_freed_memory", lambda enabled=True: asked.append(enabled))
    for name, learners in [("a", None), ("b", "hybrid,ewc")]:
        asked.clear()
        lab.run_experiment(tiny_config(trials=1, learners=learners), fake_lab, tmp_path / name,
                           progress=False)
        assert asked and all(asked), learners


def test_frequency_trials_use_the_published_schedule_they_name(shared_data, tiny_config,
                                                               synthetic_features):
    from metaplastic import protocol

    published = protocol.published_frequency_schedules(
        protocol.load_frequency_profiles(shared_data / protocol.FREQUENCY_SCHEDULES_FILE), 10)
    rows = dict(published)
    config = tiny_config("frequency", trials=1, seed=2, items=10, train_per_class=9,
                         test_per_class=2, epochs=1, batch_size=32, learners="hybrid")
    indices = [0, 1, len(published) + 1]            # the last wraps around to the second schedule
    table = engine.run_trials(config, synthetic_features, indices, schedules=tuple(published))
    for trial, expected_row in zip(indices, (1, 2, 2)):
        rows_of_trial = table[(table.trial == trial) & (table.learner == "hybrid")]
        assert set(rows_of_trial["schedule"]) == {f"published row {expected_row}"}
        shown = rows_of_trial[rows_of_trial.presentation > 0].drop_duplicates("presentation")
        assert shown.sort_values("presentation")["presented_item"].tolist() == rows[expected_row]


def test_frequency_without_published_schedules_generates_and_records_it(tiny_config,
                                                                        synthetic_features):
    config = tiny_config("frequency", trials=1, seed=2, items=5, test_per_class=4, epochs=1,
                         batch_size=32)
    table = engine.run_trials(config, synthetic_features, [0])
    assert set(table["schedule"]) == {"generated"}
    shown = table[(table.presentation > 0) & (table.learner == "hybrid")].drop_duplicates("presentation")
    counts = shown["presented_item"].value_counts()
    assert all(counts[i] == i for i in range(1, 6))            # item i presented i times


def test_divergence_is_reported_with_the_non_finite_loss_and_its_epoch(tiny_config, synthetic_features):
    config = tiny_config(lr=1e30, feature_scale=1e6, epochs=3)
    with pytest.raises(engine.TrainingDiverged, match=r"loss became (nan|inf|-inf) .* epoch 1 "):
        engine.run_trials(config, synthetic_features, [0])
