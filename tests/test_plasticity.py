import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from metaplastic import plasticity as pl
from metaplastic.plasticity import plasticity_scale


def by_hand(f: float, dw: float, alpha: float) -> float:
    """Eq. 2 written out with the math module, the independent reference."""
    if f == 0:
        return 0.0
    return 1.0 - math.tanh(alpha * (1 - f) / f * dw) ** 2


@pytest.mark.parametrize(
    "f, dw, alpha",
    [
        (0.5, 1e-6, 4e5),
        (0.3, -1e-6, 4e5),
        (0.3, 2.5e-6, 4e5),
        (0.9, 1e-5, 1e5),
        (0.1, 3e-7, 2e5),
        (0.72, -4e-6, 4e5),
        (1.0, 5.0, 4e5),
        (0.5, 0.0, 4e5),
        (0.0, 0.0, 4e5),
        (0.0, 1e-3, 4e5),
        (0.2, 1e3, 1e9),    # a huge argument: S underflows to 0
    ],
)
def test_matches_values_by_hand(f, dw, alpha):
    got = plasticity_scale(torch.tensor(f, dtype=torch.float64), torch.tensor(dw, dtype=torch.float64),
                           alpha)
    assert got.item() == pytest.approx(by_hand(f, dw, alpha), rel=1e-12, abs=1e-300)


def test_edge_cases_exact():
    f = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.4, 1e-30])
    dw = torch.tensor([0.0, 1.0, 0.0, 123.0, 0.0, 0.0])
    s = plasticity_scale(f, dw, 4e5)
    assert s.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    assert not torch.isnan(s).any()


def test_huge_arguments_give_zero_not_nan():
    f = torch.tensor([1e-30, 0.01, 0.5])
    dw = torch.tensor([1e30, -1e30, float("inf")])
    s = plasticity_scale(f, dw, 1e20)
    assert s.tolist() == [0.0, 0.0, 0.0]


def test_sign_of_dw_does_not_matter():
    f = torch.rand(100, dtype=torch.float64)
    dw = torch.randn(100, dtype=torch.float64) * 1e-6
    assert torch.equal(plasticity_scale(f, dw, 4e5), plasticity_scale(f, -dw, 4e5))


def test_broadcasting_and_dtype():
    f = torch.tensor([[0.2], [0.8]], dtype=torch.float16)
    dw = torch.linspace(-1e-5, 1e-5, 5, dtype=torch.float16)
    s = plasticity_scale(f, dw, 1e5)
    assert s.shape == (2, 5) and s.dtype == torch.float16
    assert plasticity_scale(torch.tensor(0.5, dtype=torch.float64), 1e-6, 4e5).dtype == torch.float64


finite_f = st.floats(0, 1, allow_nan=False)
finite_dw = st.floats(-1e-3, 1e-3, allow_nan=False)
alphas = st.floats(0, 1e7, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(finite_f, finite_dw, alphas)
def test_scale_in_unit_interval(f, dw, alpha):
    s = plasticity_scale(torch.tensor(f, dtype=torch.float64), torch.tensor(dw, dtype=torch.float64),
                         alpha).item()
    assert 0.0 <= s <= 1.0


@settings(max_examples=300, deadline=None)
@given(finite_f, finite_dw, finite_dw, alphas)
def test_scale_non_increasing_in_abs_dw(f, dw1, dw2, alpha):
    small, large = sorted([abs(dw1), abs(dw2)])
    f_t = torch.tensor(f, dtype=torch.float64)
    s_small = plasticity_scale(f_t, torch.tensor(small, dtype=torch.float64), alpha).item()
    s_large = plasticity_scale(f_t, torch.tensor(-large, dtype=torch.float64), alpha).item()
    assert s_large <= s_small + 1e-12


@settings(max_examples=300, deadline=None)
@given(finite_f, finite_f, finite_dw, alphas)
def test_scale_non_decreasing_in_f(f1, f2, dw, alpha):
    low, high = sorted([f1, f2])
    dw_t = torch.tensor(dw, dtype=torch.float64)
    s_low = plasticity_scale(torch.tensor(low, dtype=torch.float64), dw_t, alpha).item()
    s_high = plasticity_scale(torch.tensor(high, dtype=torch.float64), dw_t, alpha).item()
    assert s_low <= s_high + 1e-12


# ----------------------------------------------------------------- profiles

PROFILES = [pl.constant(0.3), pl.uniform(), pl.uniform(0.2, 0.6), pl.biased(0.5),
            pl.biased(0.1, toward="stable"), pl.biased(0.0), pl.biased(1.0), pl.beta(2.0, 5.0)]


@pytest.mark.parametrize("profile", PROFILES, ids=repr)
def test_profiles_sample_in_unit_interval_and_are_seeded(profile):
    a = profile.sample((50, 40), torch.Generator().manual_seed(3))
    b = profile.sample((50, 40), torch.Generator().manual_seed(3))
    assert a.shape == (50, 40)
    assert torch.equal(a, b)
    assert bool(((a >= 0) & (a <= 1)).all())
    assert eval(repr(profile), vars(pl)) == profile     # the repr names every setting


def test_uniform_respects_bounds():
    x = pl.uniform(0.2, 0.6).sample((10000,), torch.Generator().manual_seed(0))
    assert x.min() >= 0.2 and x.max() <= 0.6
    assert abs(x.mean().item() - 0.4) < 0.01


@pytest.mark.parametrize("a", [0.0, 0.25, 0.5, 1.0])
def test_biased_matches_its_cdf(a):
    # Empirical CDF against F(x) = (1-a) x^2 + a x (protocol.md section 2).
    x = pl.biased(a).sample((200_000,), torch.Generator().manual_seed(1)).double()
    for q in (0.1, 0.3, 0.5, 0.7, 0.9):
        expected = (1 - a) * q**2 + a * q
        assert (x <= q).double().mean().item() == pytest.approx(expected, abs=0.005)
    # The stable mirror: P(1 - X <= q) = 1 - F(1 - q).
    y = pl.biased(a, toward="stable").sample((200_000,), torch.Generator().manual_seed(1)).double()
    assert torch.allclose(y, 1 - x)


def test_beta_mean():
    x = pl.beta(2.0, 6.0).sample((100_000,), torch.Generator().manual_seed(0))
    assert x.mean().item() == pytest.approx(2 / 8, abs=0.005)


def test_named_profiles():
    assert pl.resolve_profile("conventional") == pl.Constant(1.0)
    assert pl.resolve_profile("stable") == pl.Constant(0.3)
    assert pl.resolve_profile("hybrid") == pl.Uniform(0.0, 1.0)
    assert pl.resolve_profile(0.8) == pl.Constant(0.8)
    assert isinstance(pl.resolve_profile(torch.full((2, 2), 0.5)), pl.Explicit)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: pl.resolve_profile("bogus"), "unknown flexibility profile 'bogus'"),
        (lambda: pl.constant(1.5), "in [0, 1]"),
        (lambda: pl.constant(float("nan")), "finite"),
        (lambda: pl.uniform(0.7, 0.2), "uniform high"),
        (lambda: pl.biased(0.5, toward="sideways"), "'flexible' or 'stable'"),
        (lambda: pl.beta(0.0, 1.0), "beta a"),
        (lambda: pl.resolve_profile(torch.tensor([0.5, -0.1])), "[0, 1]"),
        (lambda: pl.resolve_profile(torch.tensor([float("nan")])), "[0, 1]"),
        (lambda: pl.resolve_profile(object()), "flexibility must be"),
    ],
)
def test_bad_profiles_raise_clear_errors(build, message):
    with pytest.raises(ValueError, match=_escape(message)):
        build()


def test_explicit_shape_must_match():
    profile = pl.resolve_profile(torch.full((2, 3), 0.5))
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*shape \(3, 2\)"):
        profile.sample((3, 2))


def _escape(text):
    import re

    return re.escape(text)


@pytest.mark.parametrize("profile", PROFILES, ids=repr)
def test_description_is_plain_data_and_rebuilds_the_profile(profile):
    import json

    description = pl.describe_profile(profile)
    assert json.loads(json.dumps(description)) == description
    assert pl.resolve_profile(description) == profile


def test_explicit_and_custom_profiles_are_described_but_not_rebuilt():
    class Halves:
        def sample(self, shape, generator=None):
            return torch.full(tuple(shape), 0.5)

    explicit = pl.describe_profile(pl.resolve_profile(torch.full((2, 3), 0.5)))
    custom = pl.describe_profile(Halves())
    assert explicit == {"profile": "explicit", "shape": [2, 3]}
    assert custom["profile"] == "custom" and "Halves" in custom["repr"]
    for description in (explicit, custom):
        with pytest.raises(ValueError, match="cannot be rebuilt"):
            pl.resolve_profile(description)
    with pytest.raises(ValueError, match="unknown profile description"):
        pl.resolve_profile({"profile": "gaussian"})


def test_suggest_alpha_gives_the_asked_scale_at_the_typical_drift():
    drifts = [torch.randn(300, 200, generator=torch.Generator().manual_seed(0)) * 1e-6,
              torch.zeros(50)]                                   # frozen weights are ignored
    alpha = pl.suggest_alpha(drifts, flexibility=0.3, scale=0.7, quantile=0.5)
    typical = torch.cat([d.abs().flatten() for d in drifts[:1]]).double().quantile(0.5)
    s = plasticity_scale(torch.tensor(0.3, dtype=torch.float64), typical, alpha).item()
    assert s == pytest.approx(0.7, rel=1e-9)
    # Twice the drift, half the alpha: alpha scales with 1 / |dw|.
    assert pl.suggest_alpha(drifts[0] * 2) == pytest.approx(pl.suggest_alpha(drifts[0]) / 2, rel=1e-9)


def test_suggest_alpha_refuses_untrained_drifts_and_bad_arguments():
    with pytest.raises(ValueError, match="every drift is 0"):
        pl.suggest_alpha([torch.zeros(4, 4)])
    with pytest.raises(ValueError, match=r"scale must be in \(0, 1\)"):
        pl.suggest_alpha(torch.ones(3), scale=1.0)
