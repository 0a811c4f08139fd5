"""A trial's numbers do not depend on which other trials share its stacked batch (CPU)."""

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from metaplastic import engine, trials
from metaplastic.resources import CPU_MAX_NETWORKS, estimate_bytes, trial_batch_size

COLUMNS = ["learner", "presentation", "item", "performance", "p_value", "memorized", "presented_item"]


@pytest.mark.parametrize("name", ["serial-position", "poisoning", "frequency"])
def test_trial_alone_equals_trial_inside_a_batch(name, tiny_config, synthetic_features):
    config = tiny_config(name, trials=4, seed=1, epochs=1)
    alone = engine.run_trials(config, synthetic_features, [3])
    batch = engine.run_trials(config, synthetic_features, [0, 1, 2, 3])
    inside = batch[batch.trial == 3].reset_index(drop=True)
    assert len(alone) > 0 and alone[COLUMNS].equals(inside[COLUMNS])
    assert set(batch["trial"]) == {0, 1, 2, 3}


# ------------------------------------------------------------------ trial batches in the lab

def test_lab_trial_batches_give_the_records_of_trials_one_by_one(tmp_path, tiny_config, fake_lab):
    from metaplastic.lab import run_experiment

    config = tiny_config(trials=5)
    one = run_experiment(config, fake_lab, tmp_path / "one", progress=False, trial_batch=1)
    three = run_experiment(config, fake_lab, tmp_path / "three", progress=False, trial_batch=3)
    assert one.trained == three.trained == [0, 1, 2, 3, 4]
    pd.testing.assert_frame_equal(one.table, three.table)


def test_a_kill_mid_batch_loses_that_batch_only_and_the_rerun_completes_it(tmp_path, monkeypatch,
                                                                           tiny_config, fake_lab):
    from metaplastic import lab

    config = tiny_config(trials=4)
    real = lab.run_trials

    def killed_in_second_batch(config, source, trials, **kwargs):
        if trials[0] == 2:
            raise KeyboardInterrupt   # as if killed while the batch of trials 2 and 3 trained
        return real(config, source, trials, **kwargs)

    monkeypatch.setattr(lab, "run_trials", killed_in_second_batch)
    with pytest.raises(KeyboardInterrupt):
        lab.run_experiment(config, fake_lab, tmp_path / "killed", progress=False, trial_batch=2)
    (folder,) = (tmp_path / "killed").iterdir()
    assert sorted(p.name for p in (folder / "trials").glob("*.parquet")) == [
        "trial-000000.parquet", "trial-000001.parquet"]          # the first batch was saved
    monkeypatch.setattr(lab, "run_trials", real)
    resumed = lab.run_experiment(config, fake_lab, tmp_path / "killed", progress=False, trial_batch=2)
    assert resumed.trained == [2, 3]
    whole = lab.run_experiment(config, fake_lab, tmp_path / "whole", progress=False, trial_batch=4)
    pd.testing.assert_frame_equal(resumed.table, whole.table)


def test_trial_batch_size_follows_the_memory_budget(tiny_config):
    config = tiny_config(trials=50, learners="hybrid")            # one network per trial
    per_trial = estimate_bytes(config)["memory"]
    assert trial_batch_size(config, memory_budget=3.5 * per_trial) == 3
    with pytest.warns(UserWarning, match="less than one trial of serial-position needs"):
        assert trial_batch_size(config, memory_budget=0.1 * per_trial) == 1      # at least one
    assert trial_batch_size(config, memory_budget=1e6 * per_trial) == CPU_MAX_NETWORKS
    assert trial_batch_size(tiny_config(trials=2), memory_budget=1e6 * per_trial) == 2   # the run's
    cuda = dataclasses.replace(config, device="cuda")             # no CPU cap on a GPU
    assert trial_batch_size(cuda, memory_budget=20.5 * per_trial) == 20
    assert estimate_bytes(config, trials=4)["memory"] == 4 * per_trial


def test_a_memory_budget_below_one_trial_warns_and_trains_one_trial_at_a_time(tmp_path, monkeypatch,
                                                                             tiny_config, fake_lab):
    from metaplastic import lab

    batches = []
    real = lab.run_trials
    monkeypatch.setattr(lab, "run_trials", lambda c, s, trials, **kw: batches.append(list(trials))
                        or real(c, s, trials, **kw))
    config = tiny_config(trials=3)
    budget = estimate_bytes(config)["memory"] / 4
    assert trial_batch_size(config, memory_budget=4 * budget) == 1         # exactly one trial fits
    with pytest.warns(UserWarning) as warned:
        result = lab.run_experiment(config, fake_lab, tmp_path, progress=False, memory_budget=budget)
    (message,) = [str(w.message) for w in warned if "--memory-budget" in str(w.message)]
    assert message.startswith(f"--memory-budget {budget / 2**30:.3g} GiB is less than one trial of "
                              "serial-position needs (about ")
    assert message.endswith("GiB): training one trial at a time")
    assert batches == [[0], [1], [2]] and result.trained == [0, 1, 2]
    # Two trials' worth of budget stacks two trials, silently.
    batches.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lab.run_experiment(config, fake_lab, tmp_path / "two", progress=False, memory_budget=8 * budget)
    assert batches == [[0, 1], [2]]


def test_runs_with_dropout_train_one_trial_at_a_time(tmp_path, monkeypatch, tiny_config, fake_lab):
    from metaplastic import lab

    batches = []
    real = lab.run_trials
    monkeypatch.setattr(lab, "run_trials", lambda c, s, trials, **kw: batches.append(list(trials))
                        or real(c, s, trials, **kw))
    config = dataclasses.replace(tiny_config(trials=2), dropout=0.2)
    lab.run_experiment(config, fake_lab, tmp_path, progress=False, trial_batch=2)
    assert batches == [[0], [1]]


# ------------------------------------------------------------------ features on the device

def test_features_stay_float16_on_the_device_and_give_the_float32_records(tiny_config,
                                                                          synthetic_features):
    config = tiny_config(center_features=True)
    trial = trials.prepare_trial(config, synthetic_features, 0)
    assert trial.train.dtype == trial.test.dtype == torch.float16   # the cache's precision
    assert trial.mean.dtype == torch.float32
    as_float32 = lambda name, split, n: synthetic_features(name, split, n).astype(np.float32)  # noqa: E731
    assert trials.prepare_trial(config, as_float32, 0).train.dtype == torch.float32
    for centred in (True, False):
        config = tiny_config(center_features=centred)
        half = engine.run_trials(config, synthetic_features, [0, 1])
        full = engine.run_trials(config, as_float32, [0, 1])
        pd.testing.assert_frame_equal(half, full)    # casting per mini-batch = casting up front


def test_normalisation_is_measured_on_the_reference_images(tiny_config, synthetic_features):
    config = tiny_config(center_features=True, feature_scale=7.0)
    trial = trials.prepare_trial(config, synthetic_features, 1)
    reference = np.concatenate([synthetic_features(*key) for key in trials.reference_features()])
    reference = reference.astype(np.float32)
    mean = reference.mean(axis=0)
    expected = (trial.train.float().numpy() - mean) * (7.0 / float((reference - mean).std()))
    assert np.array_equal(trial.normalise(trial.train).numpy(), expected)


def test_an_items_input_does_not_depend_on_the_items_after_it(tiny_config, synthetic_features,
                                                              monkeypatch):
    """No look-ahead: with the same seed and the same first k items, the features item k is
    trained on are the same whatever items follow."""
    config = tiny_config(center_features=True)
    k = 2
    first = trials.trial_classes(config, 0)
    inputs = []
    for later in (first[k:], ["89", "78", "67", "56"][:len(first) - k]):
        monkeypatch.setattr(trials, "trial_classes", lambda c, i, later=later: first[:k] + list(later))
        trial = trials.prepare_trial(config, synthetic_features, 0)
        assert trial.classes[k:] == list(later)
        inputs.append(trial.normalise(trial.train[:k]))
    assert first[k:] != ["89", "78", "67", "56"][:len(first) - k]
    assert torch.equal(inputs[0], inputs[1])


# ------------------------------------------------------------------ precision

def test_float64_runs_train_float64_networks_and_agree_with_float32(tiny_config, synthetic_features):
    config = tiny_config(precision="float64")
    prepared = [trials.prepare_trial(config, synthetic_features, t) for t in (0, 1)]
    (group,) = engine.build_groups(config, prepared)
    assert all(w.dtype == torch.float64 for w in group.model.weights)
    double = engine.run_trials(config, synthetic_features, [0, 1])
    single = engine.run_trials(tiny_config(), synthetic_features, [0, 1])
    # Tiny networks on well-separated classes: the same predictions, up to a rare tie.
    assert (double.performance - single.performance).abs().mean() < 0.02


def test_bfloat16_runs_the_products_in_bfloat16_on_float32_weights(monkeypatch, tiny_config,
                                                                   synthetic_features):
    from metaplastic import learners

    seen = []
    losses = learners.stacked_losses

    def spy(model, x, y):
        hidden = torch.baddbmm(model.biases[0].unsqueeze(1), x, model.weights[0])
        assert hidden.dtype == torch.bfloat16               # the products run in bfloat16
        seen.append((model(x).dtype, model.weights[0].dtype))
        return losses(model, x, y)

    monkeypatch.setattr(learners, "stacked_losses", spy)
    config = tiny_config(precision="bfloat16")
    half = engine.run_trials(config, synthetic_features, [0, 1])
    # Logits in float32 (the readout layer leaves autocast: bfloat16 logits would tie).
    assert seen and set(seen) == {(torch.float32, torch.float32)}
    with engine.forward_precision(config):       # autocast only inside one forward pass
        assert torch.is_autocast_enabled("cpu")
    assert not torch.is_autocast_enabled("cpu")
    # Still learning (a stale bfloat16 copy of the weights would not): the item just shown is
    # known well above chance (0.25), by every profile.
    shown = half[half.presentation == half.item]
    assert (shown.groupby("learner")["performance"].mean() > 0.5).all()


def test_precision_is_checked_and_enters_the_identity_only_when_not_the_default(tiny_config):
    assert "precision" not in tiny_config().identity()           # earlier run folders keep names
    assert tiny_config(precision="float64").identity()["precision"] == "float64"
    with pytest.raises(ValueError, match="tf32 changes only the matrix products of a CUDA device"):
        tiny_config(precision="tf32")
    with pytest.raises(ValueError, match="--precision must be one of"):
        tiny_config(precision="half")
    assert tiny_config(precision="tf32", device="cuda").precision == "tf32"
    assert tiny_config(precision="bfloat16").identity()["precision"] == "bfloat16"   # CPU or GPU
