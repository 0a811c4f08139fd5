import pytest

from metaplastic.experiments import EXPERIMENTS, make_config
from metaplastic.plasticity import FlexibilityProfile


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_registry_entries_hold_objects_not_strings(name):
    spec = EXPERIMENTS[name]
    assert all(isinstance(p, FlexibilityProfile) for p in spec.profiles.values())
    assert spec.kind in ("serial", "repetition", "poisoning", "frequency") and spec.claims
    assert make_config(name).profiles == tuple(spec.profiles)


def test_frequency_needs_four_items():
    make_config("frequency", items=4)
    with pytest.raises(ValueError, match="at least 4 for 'frequency', got 3"):
        make_config("frequency", items=3)
