import pytest

from metaplastic.experiments import EXPERIMENTS, make_config
from metaplastic.plasticity import FlexibilityProfile


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_registry_entries_hold_objects_not_strings(name):
    spec = EXPERIMENTS[name]
    assert all(isinstance(p, FlexibilityProfile) for p in spec.profiles.values())
    assert spec.kind in ("serial", "repetition", "poisoning", "frequency") and spec.claims
    config = make_config(name)
    assert config.learner_names == tuple(spec.profiles)
    assert [learner.method for learner in config.learners] == list(spec.profiles.values())
    assert all(learner.family == "profile" for learner in config.learners)


def test_frequency_needs_four_items():
    make_config("frequency", items=4)
    with pytest.raises(ValueError, match="at least 4 for 'frequency', got 3"):
        make_config("frequency", items=3)


def test_settings_parse_from_text_by_their_field_type():
    from metaplastic.config import parse_setting
    assert parse_setting("width", "512") == 512 and isinstance(parse_setting("width", "512"), int)
    assert parse_setting("lr", "3e-4") == 3e-4
    assert parse_setting("center_features", "on") is True
    assert parse_setting("center_features", "False") is False
    for name, text in (("center_features", "maybe"), ("width", "5.5"), ("widht", "5"), ("profiles", "a"),
                       ("learners", "hybrid")):
        with pytest.raises(ValueError):
            parse_setting(name, text)
