"""metaplastic: neuromimetic metaplasticity for continual learning.

The public API is what this module re-exports.
"""

from metaplastic.optim import METAPLASTIC_STATE_KEYS, MetaplasticSGD, metaplastic_sgd
from metaplastic.plasticity import (
    NAMED_PROFILES,
    Beta,
    Biased,
    Constant,
    Explicit,
    FlexibilityProfile,
    Uniform,
    beta,
    biased,
    constant,
    describe_profile,
    plasticity_scale,
    resolve_profile,
    suggest_alpha,
    uniform,
)

__version__ = "0.1.0"

__all__ = [
    "MetaplasticSGD",
    "metaplastic_sgd",
    "METAPLASTIC_STATE_KEYS",
    "plasticity_scale",
    "FlexibilityProfile",
    "Constant",
    "Uniform",
    "Biased",
    "Beta",
    "Explicit",
    "constant",
    "uniform",
    "biased",
    "beta",
    "resolve_profile",
    "describe_profile",
    "suggest_alpha",
    "NAMED_PROFILES",
    "__version__",
]
