"""A trial's numbers do not depend on which other trials share its stacked batch (CPU)."""

import pytest

from metaplastic import engine
from metaplastic.experiments import make_config
from tests.test_engine import synthetic_features

COLUMNS = ["profile", "presentation", "item", "performance", "p_value", "memorized", "presented_item"]


@pytest.mark.parametrize("name", ["serial-position", "poisoning", "frequency"])
def test_trial_alone_equals_trial_inside_a_batch(name):
    config = make_config(name, "quick", trials=4, seed=1, items=5, width=16, train_per_class=20,
                         test_per_class=6, epochs=1, batch_size=8, lr=0.05, alpha=20.0,
                         feature_scale=1.0)
    alone = engine.run_trials(config, synthetic_features, [3])
    batch = engine.run_trials(config, synthetic_features, [0, 1, 2, 3])
    inside = batch[batch.trial == 3].reset_index(drop=True)
    assert alone[COLUMNS].equals(inside[COLUMNS])
    assert set(batch["trial"]) == {0, 1, 2, 3}
